// The real model of the evaluation data (data/llm/stories260K.bin): the
// forward pass against the README's reference perplexity and greedy text.
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/testing.h"
#include "gtest/gtest.h"
#include "llm/checkpoint.h"
#include "llm/evaluate.h"
#include "llm/exact_kv_cache.h"
#include "llm/kv_spec.h"
#include "llm/store_kv_cache.h"
#include "llm/tokenizer.h"
#include "llm/transformer.h"
#include "storage/store.h"

namespace tqdb::llm {
namespace {

class StoriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string data = tqdb::testing::DataDir();
    dir_ = data + "/llm";
    if (data.empty() || !std::filesystem::exists(dir_ + "/stories260K.bin") ||
        !std::filesystem::exists(dir_ + "/tok512.bin")) {
      GTEST_SKIP() << "evaluation data absent: no " << dir_
                   << "/stories260K.bin or tok512.bin (set TQDB_DATA_DIR)";
    }
    auto ckpt = Checkpoint::Open(dir_ + "/stories260K.bin");
    ASSERT_OK(ckpt);
    ckpt_ = *std::move(ckpt);
    auto tok = Tokenizer::Load(dir_ + "/tok512.bin", ckpt_->config().vocab_size);
    ASSERT_OK(tok);
    tok_ = *std::move(tok);
    model_ = std::make_unique<Transformer>(ckpt_.get());
  }

  std::string Generate(KvCache* cache, int steps) {
    const std::vector<int> prompt =
        tok_->Encode("Once upon a time, there was a little girl named Lily.", true, false);
    GenerateOptions options;
    options.steps = steps;
    auto out = GenerateGreedy(model_.get(), cache, prompt, options);
    EXPECT_OK(out);
    return out.ok() ? tok_->DecodeAll(*out, prompt.back()) : "";
  }

  std::string dir_;
  std::unique_ptr<Checkpoint> ckpt_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Transformer> model_;
};

constexpr char kContinuation[] =
    " She loved to play outside in the park. One day, she saw a big, red ball.";

TEST_F(StoriesTest, ConfigIsTheReadmes) {
  const ModelConfig& c = ckpt_->config();
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.head_dim(), 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.seq_len, 512);
  EXPECT_TRUE(c.shared_classifier);
}

TEST_F(StoriesTest, GreedyContinuationAtFp32) {
  ExactKvCache cache(model_->kv_shape());
  const std::string text = Generate(&cache, 40);
  EXPECT_EQ(text.substr(0, std::strlen(kContinuation)), kContinuation) << text;
}

TEST_F(StoriesTest, GreedyContinuationInTheStoreAtFp32) {
  const std::string dir = tqdb::testing::UniqueTempDir("tqdb_llm_stories_fp32");
  ASSERT_FALSE(dir.empty());
  {
    storage::StoreOptions options;
    options.sync = storage::SyncPolicy::kNone;
    options.query_threads = 1;
    auto store = storage::Store::Open(options, dir);
    ASSERT_OK(store);
    auto kv = OpenKvCollection(store->get(), "llm",
                               CollectionConfig(*ParseKvSpec("fp32"), model_->kv_shape()));
    ASSERT_OK(kv);
    auto cache = StoreKvCache::Open(*kv, 7, model_->kv_shape());
    ASSERT_OK(cache);
    const std::string text = Generate(cache->get(), 40);
    EXPECT_EQ(text.substr(0, std::strlen(kContinuation)), kContinuation) << text;
  }
  std::filesystem::remove_all(dir);
}

// The README's reference: mean NLL 1.7116 over 15,536 predicted tokens,
// teacher-forced in non-overlapping 512-token windows, fp32 (±0.001).
TEST_F(StoriesTest, ReferencePerplexityAtFp32) {
  auto text = ReadTextFile(dir_ + "/tinystories-valid-excerpt.txt");
  if (!text.ok()) GTEST_SKIP() << text.status();
  const std::vector<int> tokens = tok_->Encode(*text, true, false);
  ExactKvCache cache(model_->kv_shape());
  auto r = TeacherForcedNll(model_.get(), &cache, tokens, 512);
  ASSERT_OK(r);
  EXPECT_EQ(r->tokens, 15536u);
  EXPECT_EQ(r->windows, 31);
  EXPECT_NEAR(r->mean_nll(), 1.7116, 0.001);
  EXPECT_NEAR(r->ppl(), 5.538, 0.006);
  std::printf("fp32 mean NLL %.5f, ppl %.4f over %llu tokens in %.2f s\n", r->mean_nll(), r->ppl(),
              static_cast<unsigned long long>(r->tokens), r->seconds);
}

}  // namespace
}  // namespace tqdb::llm
