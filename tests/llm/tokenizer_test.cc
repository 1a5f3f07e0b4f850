#include "llm/tokenizer.h"

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "common/testing.h"
#include "gtest/gtest.h"
#include "llm/evaluate.h"

namespace tqdb::llm {
namespace {

// A llama2.c tokenizer file: <unk>, BOS, EOS, 256 byte tokens, then `extra`
// pieces with their scores.
std::string TokenizerBytes(const std::vector<std::pair<std::string, float>>& extra) {
  std::string b;
  auto put_int = [&](int32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); };
  auto put_piece = [&](const std::string& s, float score) {
    b.append(reinterpret_cast<const char*>(&score), 4);
    put_int(static_cast<int32_t>(s.size()));
    b += s;
  };
  put_int(16);
  put_piece("<unk>", 0);
  put_piece("\n<s>\n", 0);
  put_piece("\n</s>\n", 0);
  for (int i = 0; i < 256; ++i) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", i);
    put_piece(name, 0);
  }
  for (const auto& [s, score] : extra) put_piece(s, score);
  return b;
}

constexpr int kFirstExtra = 259;

// llama2.c's encode, transcribed plainly: rescan every pair after each merge.
std::vector<int> NaiveEncode(const Tokenizer& tok, const std::string& text) {
  std::vector<int> t = {kBosToken};
  auto lookup = [&](const std::string& s) {
    for (int i = 0; i < tok.vocab_size(); ++i) {
      if (tok.piece(i) == s) return i;
    }
    return -1;
  };
  if (!text.empty()) t.push_back(lookup(" "));
  for (size_t i = 0; i < text.size();) {
    size_t end = i + 1;
    while (end < text.size() && end - i < 4 &&
           (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
      ++end;
    }
    const int id = lookup(text.substr(i, end - i));
    if (id >= 0) {
      t.push_back(id);
    } else {
      for (size_t j = i; j < end; ++j) t.push_back(static_cast<unsigned char>(text[j]) + 3);
    }
    i = end;
  }
  for (;;) {
    float best = -1e10f;
    int best_id = -1, at = -1;
    for (size_t i = 1; i + 1 < t.size(); ++i) {
      const int id = lookup(tok.piece(t[i]) + tok.piece(t[i + 1]));
      if (id >= 0 && tok.score(id) > best) {
        best = tok.score(id);
        best_id = id;
        at = static_cast<int>(i);
      }
    }
    if (best_id < 0) break;
    t[at] = best_id;
    t.erase(t.begin() + at + 1);
  }
  return t;
}

TEST(TokenizerTest, HeapMergesEqualRescanningOnRandomText) {
  // Pieces over {a, b, c} up to 3 letters with tied scores, so the leftmost
  // rule and chains of merges are exercised.
  std::vector<std::pair<std::string, float>> extra = {{" ", -1}};
  const std::string letters = "abc";
  std::vector<std::string> pieces = {"a", "b", "c"};
  for (char x : letters) {
    for (char y : letters) pieces.push_back(std::string{x, y});
  }
  for (const char* p : {"aab", "abc", "cab", "bba", " a", " ab"}) pieces.push_back(p);
  for (size_t i = 0; i < pieces.size(); ++i) {
    extra.push_back({pieces[i], -static_cast<float>(i % 4)});
  }
  const std::string bytes = TokenizerBytes(extra);
  auto tok = Tokenizer::FromBytes(bytes, kFirstExtra + static_cast<int>(extra.size()));
  ASSERT_OK(tok);
  std::mt19937 rng(3);
  for (int round = 0; round < 200; ++round) {
    std::string text;
    const int len = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < len; ++i) text += "abc d"[rng() % 5];
    ASSERT_EQ((*tok)->Encode(text, true, false), NaiveEncode(**tok, text)) << text;
  }
}

TEST(TokenizerTest, MergesTheBestScoringPairFirst) {
  // ids: 259 " ", 260 "a", 261 "b", 262 "c", 263 "ab", 264 "bc", 265 " ab"
  const std::string bytes = TokenizerBytes(
      {{" ", -1}, {"a", -2}, {"b", -3}, {"c", -4}, {"ab", -6}, {"bc", -5}, {" ab", -7}});
  auto tok = Tokenizer::FromBytes(bytes, kFirstExtra + 7);
  ASSERT_OK(tok);
  // " abc": bc (−5) beats ab (−6), leaving " " a bc; nothing else merges.
  EXPECT_EQ((*tok)->Encode("abc", /*bos=*/true, /*eos=*/false),
            (std::vector<int>{kBosToken, 259, 260, 264}));
  // " ab": ab first, then " ab".
  EXPECT_EQ((*tok)->Encode("ab", false, true), (std::vector<int>{265, kEosToken}));
  EXPECT_TRUE((*tok)->Encode("", false, false).empty());
}

TEST(TokenizerTest, FallsBackToBytesAndDecodesThem) {
  const std::string bytes = TokenizerBytes({{" ", -1}, {"a", -2}});
  auto tok = Tokenizer::FromBytes(bytes, kFirstExtra + 2);
  ASSERT_OK(tok);
  // "é" (C3 A9) is not in the vocabulary: its bytes + 3. "\n" likewise.
  const std::vector<int> ids = (*tok)->Encode("a\xC3\xA9\n", true, false);
  EXPECT_EQ(ids, (std::vector<int>{kBosToken, kFirstExtra, kFirstExtra + 1, 0xC3 + 3, 0xA9 + 3,
                                   '\n' + 3}));
  // Decoding after BOS drops the prepended space; byte tokens are bytes.
  EXPECT_EQ((*tok)->DecodeAll(std::vector<int>(ids.begin() + 1, ids.end())), "a\xC3\xA9\n");
  EXPECT_EQ((*tok)->Decode(kBosToken, kFirstExtra), "");
  EXPECT_EQ((*tok)->Decode(kFirstExtra + 1, 0xC3 + 3), "\xC3");
}

TEST(TokenizerTest, RejectsCorruptFiles) {
  const std::string bytes = TokenizerBytes({{" ", -1}});
  EXPECT_STATUS_CODE(Tokenizer::FromBytes(bytes, kFirstExtra + 2), absl::StatusCode::kDataLoss);
  EXPECT_STATUS_CODE(Tokenizer::FromBytes(bytes.substr(0, 2), kFirstExtra),
                     absl::StatusCode::kDataLoss);
  std::string negative = bytes;
  const int32_t len = -5;
  std::memcpy(negative.data() + 4 + 4, &len, 4);  // token 0's length
  EXPECT_STATUS_CODE(Tokenizer::FromBytes(negative, kFirstExtra), absl::StatusCode::kDataLoss);
  EXPECT_STATUS_CODE(Tokenizer::FromBytes(bytes, 100), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(Tokenizer::Load("/nonexistent/tok.bin", 512), absl::StatusCode::kNotFound);
}

// The real tokenizer of stories260K (data/llm/tok512.bin).
class Tok512Test : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = tqdb::testing::DataDir();
    path_ = dir + "/llm/tok512.bin";
    if (dir.empty() || !std::ifstream(path_).good()) {
      GTEST_SKIP() << "evaluation data absent: no " << path_
                   << " (set TQDB_DATA_DIR to the shared data directory)";
    }
    auto tok = Tokenizer::Load(path_, 512);
    ASSERT_OK(tok);
    tok_ = *std::move(tok);
  }
  std::string path_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(Tok512Test, RoundTripsTheReadmeSentence) {
  const std::string text = "Once upon a time, there was a little girl named Lily.";
  const std::vector<int> ids = tok_->Encode(text, true, false);
  ASSERT_GT(ids.size(), 2u);
  EXPECT_EQ(ids[0], kBosToken);
  EXPECT_LT(ids.size(), text.size() / 2);  // BPE merged well below a token per byte
  EXPECT_EQ(tok_->DecodeAll(std::vector<int>(ids.begin() + 1, ids.end())), text);
}

TEST_F(Tok512Test, EncodesTheExcerptToTheReadmeCount) {
  auto text = ReadTextFile(tqdb::testing::DataDir() + "/llm/tinystories-valid-excerpt.txt");
  if (!text.ok()) GTEST_SKIP() << text.status();
  const std::vector<int> ids = tok_->Encode(*text, true, false);
  EXPECT_EQ(ids.size(), 15537u);
  EXPECT_EQ(tok_->DecodeAll(std::vector<int>(ids.begin() + 1, ids.end())), *text);
  // The heap merge makes the same choices as llama2.c's rescans.
  const std::string head = text->substr(0, 3000);
  EXPECT_EQ(tok_->Encode(head, true, false), NaiveEncode(*tok_, head));
}

}  // namespace
}  // namespace tqdb::llm
