#include "storage/kv_collection.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/testing.h"
#include "gtest/gtest.h"
#include "index/codec/codec.h"
#include "common/fp16.h"
#include "index/scan/attend.h"
#include "index/scan/code_blocks.h"
#include "index/scan/scorer.h"
#include "storage/store.h"
#include "tests/index/test_data.h"

namespace tqdb::storage {
namespace {

using index::testing::Gaussian;

constexpr int kLayers = 3, kHeads = 2, kDim = 64;

KvCollectionConfig SmallConfig() {
  KvCollectionConfig c;
  c.num_layers = kLayers;
  c.num_kv_heads = kHeads;
  c.head_dim = kDim;
  c.key_format = "tq4";
  c.value_format = "tq2";
  c.boundary_layers = 1;  // layers 0 and 2 at the boundary formats
  c.boundary_key_format = "tq8";  // wide formats: scored through float tables
  c.boundary_value_format = "tq6";
  c.page_tokens = 16;  // small pages: appends and truncates cross them often
  return c;
}

// Tokens of a sequence as the caller sends them: [layer][head][token][dim].
struct Tokens {
  size_t n;
  std::vector<float> keys, values;
};

Tokens MakeTokens(size_t n, uint64_t seed) {
  Tokens t{n, Gaussian(kLayers * kHeads * n * kDim, seed),
           Gaussian(kLayers * kHeads * n * kDim, seed + 1000, 0.5f)};
  // A large coordinate per token makes attention peaked, as in real caches.
  for (size_t i = 0; i < kLayers * kHeads * n; ++i) t.keys[i * kDim + i % kDim] += 3.0f;
  return t;
}

// Rows [begin, end) of family f of a [family][token][dim] array of n tokens.
std::vector<float> Rows(const std::vector<float>& a, size_t n, int f, size_t begin, size_t end) {
  return std::vector<float>(a.begin() + (f * n + begin) * kDim, a.begin() + (f * n + end) * kDim);
}

// Concatenates token ranges: the reference contents of a sequence.
Tokens Concat(const std::vector<const Tokens*>& parts, const std::vector<size_t>& counts) {
  size_t n = 0;
  for (size_t c : counts) n += c;
  Tokens out{n, std::vector<float>(kLayers * kHeads * n * kDim),
             std::vector<float>(kLayers * kHeads * n * kDim)};
  for (int f = 0; f < kLayers * kHeads; ++f) {
    size_t at = 0;
    for (size_t p = 0; p < parts.size(); ++p) {
      for (auto [src, dst] : {std::pair{&parts[p]->keys, &out.keys},
                              std::pair{&parts[p]->values, &out.values}}) {
        const std::vector<float> rows = Rows(*src, parts[p]->n, f, 0, counts[p]);
        std::copy(rows.begin(), rows.end(), dst->begin() + (f * n + at) * kDim);
      }
      at += counts[p];
    }
  }
  return out;
}

class KvCollectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "tqdb_kv_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen(StoreOptions options = {}) {
    kv_.reset();
    store_.reset();
    auto store = Store::Open(options, dir_);
    ASSERT_OK(store.status());
    store_ = std::move(*store);
    auto kv = store_->GetKvCollection("kv");
    if (!kv.ok()) kv = store_->CreateKvCollection("kv", SmallConfig());
    ASSERT_OK(kv.status());
    kv_ = *kv;
  }

  // The reference: per family, CodeBlocks built by the index library from
  // the same floats (what the collection must agree with bit for bit).
  struct Reference {
    std::vector<std::unique_ptr<index::CodeBlocks>> keys, values;
  };
  Reference Expected(const Tokens& t) {
    Reference r;
    const KvCollectionConfig& c = kv_->config();
    for (int f = 0; f < kLayers * kHeads; ++f) {
      const int layer = f / kHeads;
      const bool boundary = layer < c.boundary_layers || layer >= kLayers - c.boundary_layers;
      auto codec = [&](const std::string& name) {
        return *index::Codec::Create(*index::ParseFormat(name, kDim, c.seed));
      };
      r.keys.push_back(*index::CodeBlocks::Create(
          codec(boundary ? c.boundary_key_format : c.key_format)));
      r.values.push_back(*index::CodeBlocks::Create(
          codec(boundary ? c.boundary_value_format : c.value_format)));
      EXPECT_OK(r.keys.back()->Append(Rows(t.keys, t.n, f, 0, t.n).data(), t.n));
      EXPECT_OK(r.values.back()->Append(Rows(t.values, t.n, f, 0, t.n).data(), t.n));
    }
    return r;
  }

  // Checks Read, Score and Attend of `seq` against the reference contents.
  void ExpectHolds(uint64_t seq, const Tokens& t) {
    SCOPED_TRACE(::testing::Message() << "sequence " << seq);
    auto length = kv_->Length(seq);
    ASSERT_OK(length.status());
    ASSERT_EQ(*length, t.n);
    Reference ref = Expected(t);
    std::vector<float> keys, values;
    ASSERT_OK(kv_->Read(seq, 0, t.n, &keys, &values));
    std::vector<float> decoded(kDim);
    for (int f = 0; f < kLayers * kHeads; ++f) {
      for (size_t i = 0; i < t.n; ++i) {
        ref.keys[f]->codec().Decode(ref.keys[f]->Code(i), 1, decoded.data());
        ASSERT_EQ(std::vector<float>(&keys[(f * t.n + i) * kDim], &keys[(f * t.n + i + 1) * kDim]),
                  decoded) << "key, family " << f << " token " << i;
        ref.values[f]->codec().Decode(ref.values[f]->Code(i), 1, decoded.data());
        ASSERT_EQ(std::vector<float>(&values[(f * t.n + i) * kDim],
                                     &values[(f * t.n + i + 1) * kDim]),
                  decoded) << "value, family " << f << " token " << i;
      }
    }
    if (t.n == 0) return;
    constexpr int kGroup = 2;  // 4 query heads over 2 KV heads
    const std::vector<float> q = Gaussian(kHeads * kGroup * kDim, 77 + seq);
    for (int layer = 0; layer < kLayers; ++layer) {
      auto scores = kv_->Score(seq, layer, q);
      ASSERT_OK(scores.status());
      auto attended = kv_->Attend(seq, layer, q);
      ASSERT_OK(attended.status());
      for (int h = 0; h < kHeads; ++h) {
        const int f = layer * kHeads + h;
        std::vector<index::PreparedQuery> prepared(kGroup);
        for (int g = 0; g < kGroup; ++g) {
          index::PrepareQuery(ref.keys[f]->codec(), ref.keys[f]->layout(),
                              &q[(h * kGroup + g) * kDim], &prepared[g]);
        }
        const size_t stride = ref.keys[f]->num_blocks() * 32;
        std::vector<float> expected(kGroup * stride);
        index::ScoreBlocks(*ref.keys[f], prepared.data(), kGroup, 0, ref.keys[f]->num_blocks(),
                           expected.data(), stride);
        std::vector<float> expected_out(kGroup * kDim);
        ASSERT_OK(index::Attend(*ref.keys[f], *ref.values[f],
                                absl::MakeConstSpan(&q[h * kGroup * kDim], kGroup * kDim), {}, {},
                                expected_out.data()));
        for (int g = 0; g < kGroup; ++g) {
          for (size_t i = 0; i < t.n; ++i) {
            ASSERT_EQ((*scores)[(h * kGroup + g) * t.n + i], expected[g * stride + i])
                << "layer " << layer << " query head " << h * kGroup + g << " token " << i;
          }
          for (int j = 0; j < kDim; ++j) {
            ASSERT_EQ((*attended)[(h * kGroup + g) * kDim + j], expected_out[g * kDim + j]);
          }
        }
      }
    }
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  std::shared_ptr<KvCollection> kv_;
};

TEST_F(KvCollectionTest, AppendsReadScoreAndAttendLikeTheIndexLibrary) {
  const Tokens t = MakeTokens(100, 1);
  ASSERT_OK(kv_->CreateSequence(7));
  ExpectHolds(7, Concat({&t}, {0}));
  // Appends of 1, 15 (to a page end), 50 (across pages) and 34 tokens.
  size_t at = 0;
  for (size_t n : {1, 15, 50, 34}) {
    const Tokens part = Concat({&t}, {at + n});
    Tokens tail{n, {}, {}};
    for (int f = 0; f < kLayers * kHeads; ++f) {
      for (auto [src, dst] : {std::pair{&part.keys, &tail.keys}, {&part.values, &tail.values}}) {
        const std::vector<float> rows = Rows(*src, part.n, f, at, at + n);
        dst->insert(dst->end(), rows.begin(), rows.end());
      }
    }
    ASSERT_OK(kv_->Append(7, FloatTokens(n, tail.keys, tail.values)));
    at += n;
  }
  ExpectHolds(7, t);
}

TEST_F(KvCollectionTest, AppendReturnsTheLengthAndCancelledCallsStop) {
  const Tokens t = MakeTokens(7, 80);
  ASSERT_OK(kv_->CreateSequence(1));
  EXPECT_EQ(*kv_->Append(1, FloatTokens(t.n, t.keys, t.values)), 7u);
  EXPECT_EQ(*kv_->Append(1, FloatTokens(t.n, t.keys, t.values)), 14u);
  const std::vector<float> q = Gaussian(kHeads * kDim, 81);
  KvScoreOptions score;
  score.cancelled = [] { return true; };
  EXPECT_STATUS_CODE(kv_->Score(1, 0, q, score).status(), absl::StatusCode::kCancelled);
  KvAttendOptions attend;
  attend.cancelled = [] { return true; };
  EXPECT_STATUS_CODE(kv_->Attend(1, 0, q, attend).status(), absl::StatusCode::kCancelled);
  attend.cancelled = [] { return false; };
  EXPECT_OK(kv_->Attend(1, 0, q, attend).status());
}

TEST_F(KvCollectionTest, DeferredSyncAppendsAreDurableAfterSync) {
  const Tokens t = MakeTokens(20, 85);
  ASSERT_OK(kv_->CreateSequence(1));
  for (size_t i = 0; i < t.n; i += 5) {
    const Tokens part = Concat({&t}, {i + 5});
    Tokens last{5, {}, {}};
    for (int f = 0; f < kLayers * kHeads; ++f) {
      for (auto [src, dst] : {std::pair{&part.keys, &last.keys}, {&part.values, &last.values}}) {
        const std::vector<float> rows = Rows(*src, part.n, f, i, i + 5);
        dst->insert(dst->end(), rows.begin(), rows.end());
      }
    }
    EXPECT_EQ(*kv_->Append(1, FloatTokens(5, last.keys, last.values), /*defer_sync=*/true), i + 5);
  }
  ASSERT_OK(store_->Sync());
  Reopen();
  ExpectHolds(1, t);
}

TEST_F(KvCollectionTest, ScoreRangeAndScaleSelectTokens) {
  const Tokens t = MakeTokens(80, 2);
  ASSERT_OK(kv_->CreateSequence(1));
  ASSERT_OK(kv_->Append(1, FloatTokens(t.n, t.keys, t.values)));
  const std::vector<float> q = Gaussian(kHeads * kDim, 3);
  auto all = kv_->Score(1, 1, q);
  ASSERT_OK(all.status());
  KvScoreOptions o;
  o.begin = 33;
  o.end = 70;
  o.scale = 0.5f;
  auto part = kv_->Score(1, 1, q, o);
  ASSERT_OK(part.status());
  ASSERT_EQ(part->size(), kHeads * 37u);
  for (int h = 0; h < kHeads; ++h) {
    for (size_t i = 0; i < 37; ++i) {
      EXPECT_EQ((*part)[h * 37 + i], 0.5f * (*all)[h * 80 + 33 + i]);
    }
  }
  o.begin = 80;
  o.end = kToEnd;
  auto empty = kv_->Score(1, 1, q, o);
  ASSERT_OK(empty.status());
  EXPECT_TRUE(empty->empty());
}

TEST_F(KvCollectionTest, ReopenGivesIdenticalResults) {
  const Tokens a = MakeTokens(70, 4), b = MakeTokens(5, 5);
  ASSERT_OK(kv_->CreateSequence(1));
  ASSERT_OK(kv_->CreateSequence(2));
  ASSERT_OK(kv_->Append(1, FloatTokens(a.n, a.keys, a.values)));
  ASSERT_OK(kv_->Append(2, FloatTokens(b.n, b.keys, b.values)));
  const std::vector<float> q = Gaussian(kHeads * kDim, 6);
  auto before = kv_->Attend(1, 2, q);
  ASSERT_OK(before.status());
  Reopen();
  EXPECT_EQ(kv_->Sequences(), (std::vector<uint64_t>{1, 2}));
  auto after = kv_->Attend(1, 2, q);
  ASSERT_OK(after.status());
  EXPECT_EQ(*before, *after);
  ExpectHolds(1, a);
  ExpectHolds(2, b);
  ASSERT_OK(store_->Flush(/*compact=*/true));  // from SST files now, not the WAL
  Reopen();
  ExpectHolds(1, a);
  ExpectHolds(2, b);
}

TEST_F(KvCollectionTest, TruncateKeepsAPrefixAndAppendsContinue) {
  const Tokens t = MakeTokens(50, 7), more = MakeTokens(20, 8);
  ASSERT_OK(kv_->CreateSequence(3));
  ASSERT_OK(kv_->Append(3, FloatTokens(t.n, t.keys, t.values)));
  EXPECT_STATUS_CODE(kv_->Truncate(3, 51), absl::StatusCode::kInvalidArgument);
  ASSERT_OK(kv_->Truncate(3, 50));  // no-op
  ASSERT_OK(kv_->Truncate(3, 37));  // mid-page
  ExpectHolds(3, Concat({&t}, {37}));
  ASSERT_OK(kv_->Append(3, FloatTokens(more.n, more.keys, more.values)));
  ExpectHolds(3, Concat({&t, &more}, {37, 20}));
  Reopen();
  ExpectHolds(3, Concat({&t, &more}, {37, 20}));
  ASSERT_OK(kv_->Truncate(3, 32));  // page boundary
  ExpectHolds(3, Concat({&t}, {32}));
  ASSERT_OK(kv_->Truncate(3, 0));
  ExpectHolds(3, Concat({&t}, {0}));
  Reopen();
  ExpectHolds(3, Concat({&t}, {0}));
}

TEST_F(KvCollectionTest, ForksShareAPrefixThatSurvivesTheSourceChanging) {
  const Tokens t = MakeTokens(60, 9), x = MakeTokens(10, 10), y = MakeTokens(12, 11);
  ASSERT_OK(kv_->CreateSequence(1));
  ASSERT_OK(kv_->Append(1, FloatTokens(t.n, t.keys, t.values)));
  ASSERT_OK(kv_->Fork(1, 2, 45));  // mid-page fork point
  ASSERT_OK(kv_->Fork(2, 3));      // a fork of a fork: all 45 tokens
  EXPECT_STATUS_CODE(kv_->Fork(1, 3), absl::StatusCode::kAlreadyExists);
  EXPECT_STATUS_CODE(kv_->Fork(1, 9, 61), absl::StatusCode::kInvalidArgument);
  ASSERT_OK(kv_->Append(2, FloatTokens(x.n, x.keys, x.values)));
  ASSERT_OK(kv_->Append(1, FloatTokens(y.n, y.keys, y.values)));
  auto stats = kv_->Stats();
  ASSERT_OK(stats.status());
  EXPECT_EQ(stats->stored_tokens, 60u + 12 + 10);  // the shared 45 are stored once
  EXPECT_EQ(stats->tokens, 72u + 55 + 45);
  ExpectHolds(1, Concat({&t, &y}, {60, 12}));
  ExpectHolds(2, Concat({&t, &x}, {45, 10}));
  ExpectHolds(3, Concat({&t}, {45}));

  // The source rewrites tokens its forks share: they keep their view.
  ASSERT_OK(kv_->Truncate(1, 20));
  ASSERT_OK(kv_->Append(1, FloatTokens(y.n, y.keys, y.values)));
  ExpectHolds(1, Concat({&t, &y}, {20, 12}));
  ExpectHolds(2, Concat({&t, &x}, {45, 10}));
  ExpectHolds(3, Concat({&t}, {45}));
  Reopen();
  ExpectHolds(2, Concat({&t, &x}, {45, 10}));
  ExpectHolds(3, Concat({&t}, {45}));

  // Dropping the sources keeps what forks need; dropping the last frees all.
  ASSERT_OK(kv_->DropSequence(1));
  ASSERT_OK(kv_->DropSequence(2));
  EXPECT_STATUS_CODE(kv_->Length(2), absl::StatusCode::kNotFound);
  ExpectHolds(3, Concat({&t}, {45}));
  Reopen();
  ExpectHolds(3, Concat({&t}, {45}));
  ASSERT_OK(kv_->CreateSequence(2));  // a dropped id can be reused
  ExpectHolds(2, Concat({&t}, {0}));
  ASSERT_OK(kv_->DropSequence(3));
  stats = kv_->Stats();
  ASSERT_OK(stats.status());
  EXPECT_EQ(stats->stored_tokens, 0u);
  EXPECT_EQ(stats->sequences, 1u);
  ASSERT_OK(store_->Flush(/*compact=*/true));
  stats = kv_->Stats();
  ASSERT_OK(stats.status());
  EXPECT_EQ(stats->disk_bytes, 0u);  // every page deleted and compacted away
}

TEST_F(KvCollectionTest, TruncatingAForkToZeroDetachesIt) {
  const Tokens t = MakeTokens(20, 12), x = MakeTokens(3, 13);
  ASSERT_OK(kv_->CreateSequence(1));
  ASSERT_OK(kv_->Append(1, FloatTokens(t.n, t.keys, t.values)));
  ASSERT_OK(kv_->Fork(1, 2));
  ASSERT_OK(kv_->DropSequence(1));  // kept for the fork
  ASSERT_OK(kv_->Truncate(2, 0));   // now nothing needs it
  ASSERT_OK(kv_->Append(2, FloatTokens(x.n, x.keys, x.values)));
  ExpectHolds(2, x);
  auto stats = kv_->Stats();
  ASSERT_OK(stats.status());
  EXPECT_EQ(stats->stored_tokens, 3u);
  Reopen();
  ExpectHolds(2, x);
}

TEST_F(KvCollectionTest, HalfPrecisionInputsEncodeTheirFloatValues) {
  const Tokens t = MakeTokens(9, 14);
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    std::vector<uint16_t> k(t.keys.size()), v(t.values.size());
    Tokens rounded = t;
    for (auto [src, dst, r] : {std::tuple{&t.keys, &k, &rounded.keys},
                               std::tuple{&t.values, &v, &rounded.values}}) {
      for (size_t i = 0; i < src->size(); ++i) {
        uint32_t bits;
        std::memcpy(&bits, &(*src)[i], 4);
        (*dst)[i] = dtype == DType::kF16 ? FloatToHalf((*src)[i])
                                         : static_cast<uint16_t>(bits >> 16);  // truncation
        const uint32_t back = uint32_t{(*dst)[i]} << 16;
        float f;
        std::memcpy(&f, &back, 4);
        (*r)[i] = dtype == DType::kF16 ? HalfToFloat((*dst)[i]) : f;
      }
    }
    const uint64_t seq = static_cast<uint64_t>(dtype);
    ASSERT_OK(kv_->CreateSequence(seq));
    KvTokens in;
    in.n_tokens = t.n;
    in.dtype = dtype;
    in.keys = absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(k.data()), 2 * k.size());
    in.values = absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(v.data()), 2 * v.size());
    ASSERT_OK(kv_->Append(seq, in));
    ExpectHolds(seq, rounded);
  }
}

TEST_F(KvCollectionTest, BadInputIsRejectedAndChangesNothing) {
  const Tokens t = MakeTokens(4, 15);
  ASSERT_OK(kv_->CreateSequence(1));
  EXPECT_STATUS_CODE(kv_->CreateSequence(1), absl::StatusCode::kAlreadyExists);
  EXPECT_STATUS_CODE(kv_->Append(2, FloatTokens(t.n, t.keys, t.values)),
                     absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE(kv_->Append(1, FloatTokens(0, {}, {})), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(kv_->Append(1, FloatTokens(5, t.keys, t.values)),
                     absl::StatusCode::kInvalidArgument);
  const absl::Status shape = kv_->Append(1, FloatTokens(3, t.keys, t.values)).status();
  EXPECT_STATUS_CODE(shape, absl::StatusCode::kInvalidArgument);
  EXPECT_NE(shape.message().find("[layers=3][kv_heads=2][tokens=3][head_dim=64]"),
            std::string::npos) << shape;
  for (float bad : {NAN, INFINITY}) {
    Tokens b = t;
    b.values[kDim * 5 + 1] = bad;
    const absl::Status s = kv_->Append(1, FloatTokens(b.n, b.keys, b.values)).status();
    EXPECT_STATUS_CODE(s, absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("value of layer 0 head 1 token 1 coordinate 1"), std::string::npos)
        << s;
    // A bad key is named before any bad value, wherever it is: here in the
    // last family (layer 2, head 1), token 3, coordinate 5.
    b.keys[((kLayers * kHeads - 1) * t.n + 3) * kDim + 5] = bad;
    const absl::Status k = kv_->Append(1, FloatTokens(b.n, b.keys, b.values)).status();
    EXPECT_STATUS_CODE(k, absl::StatusCode::kInvalidArgument);
    EXPECT_NE(k.message().find("key of layer 2 head 1 token 3 coordinate 5"), std::string::npos)
        << k;
  }
  EXPECT_EQ(*kv_->Length(1), 0u);
  ASSERT_OK(kv_->Append(1, FloatTokens(t.n, t.keys, t.values)));
  const std::vector<float> q = Gaussian(2 * kHeads * kDim, 16);
  EXPECT_STATUS_CODE(kv_->Score(1, kLayers, q).status(), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(kv_->Score(1, -1, q).status(), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(kv_->Score(1, 0, absl::MakeConstSpan(q).subspan(0, kDim)).status(),
                     absl::StatusCode::kInvalidArgument);  // 1 query head for 2 KV heads
  EXPECT_STATUS_CODE(kv_->Score(1, 0, absl::MakeConstSpan(q).subspan(1)).status(),
                     absl::StatusCode::kInvalidArgument);
  std::vector<float> nan_q = q;
  nan_q[3] = NAN;
  EXPECT_STATUS_CODE(kv_->Attend(1, 0, nan_q).status(), absl::StatusCode::kInvalidArgument);
  KvAttendOptions empty;
  empty.begin = 2;
  empty.end = 2;
  EXPECT_STATUS_CODE(kv_->Attend(1, 0, q, empty).status(), absl::StatusCode::kInvalidArgument);
  std::vector<float> k, v;
  EXPECT_STATUS_CODE(kv_->Read(1, 3, 5, &k, &v), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(kv_->Read(1, 3, 2, &k, &v), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(kv_->Truncate(1, 5), absl::StatusCode::kInvalidArgument);
  ASSERT_OK(kv_->DropSequence(1));
  EXPECT_STATUS_CODE(kv_->Append(1, FloatTokens(t.n, t.keys, t.values)),
                     absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE(kv_->DropSequence(1), absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE(kv_->Truncate(1, 0), absl::StatusCode::kNotFound);
}

TEST_F(KvCollectionTest, EvictedSequencesReloadFromDisk) {
  StoreOptions tiny;
  tiny.memory_budget_bytes = 1;  // every use evicts every other sequence
  Reopen(tiny);
  std::vector<Tokens> data;
  for (uint64_t s = 0; s < 4; ++s) {
    data.push_back(MakeTokens(20 + 10 * s, 20 + s));
    ASSERT_OK(kv_->CreateSequence(s));
    ASSERT_OK(kv_->Append(s, FloatTokens(data[s].n, data[s].keys, data[s].values)));
  }
  for (int round = 0; round < 2; ++round) {
    for (uint64_t s = 0; s < 4; ++s) ExpectHolds(s, data[s]);
  }
  auto stats = kv_->Stats();
  ASSERT_OK(stats.status());
  // What the last sequence used holds in memory.
  const Reference ref = Expected(data[3]);
  size_t one_sequence = 0;
  for (int f = 0; f < kLayers * kHeads; ++f) {
    one_sequence += ref.keys[f]->MemoryBytes() + ref.values[f]->MemoryBytes();
  }
  // Only the most recently used sequence stays loaded.
  EXPECT_GT(stats->memory_bytes, 0u);
  EXPECT_LE(stats->memory_bytes, one_sequence);
}

TEST_F(KvCollectionTest, CorruptedPagesReadAsDataLossNeverAsData) {
  const Tokens t = MakeTokens(64, 30);
  ASSERT_OK(kv_->CreateSequence(1));
  ASSERT_OK(kv_->Append(1, FloatTokens(t.n, t.keys, t.values)));
  ASSERT_OK(store_->Flush(/*compact=*/true));
  kv_.reset();
  store_.reset();
  // Flip one byte in the middle of every table file.
  int flipped = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    if (entry.path().extension() != ".sst") continue;
    std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    const auto size = static_cast<std::streamoff>(std::filesystem::file_size(entry.path()));
    f.seekg(size / 3);
    char c;
    f.get(c);
    f.seekp(size / 3);
    f.put(static_cast<char>(c ^ 0x5a));
    ++flipped;
  }
  ASSERT_GT(flipped, 0);
  auto store = Store::Open({}, dir_);
  if (!store.ok()) {
    EXPECT_STATUS_CODE(store.status(), absl::StatusCode::kDataLoss);
    return;
  }
  auto kv = (*store)->GetKvCollection("kv");
  if (!kv.ok()) {
    EXPECT_STATUS_CODE(kv.status(), absl::StatusCode::kDataLoss);
    return;
  }
  std::vector<float> k, v;
  EXPECT_STATUS_CODE((*kv)->Read(1, 0, 64, &k, &v), absl::StatusCode::kDataLoss);
}

// A collection whose newest `window` tokens are kept exactly (f32).
std::shared_ptr<KvCollection> WindowCollection(Store& store, const std::string& name,
                                               uint64_t window, DType dtype = DType::kF32) {
  KvCollectionConfig c = SmallConfig();
  c.exact_window = window;
  c.exact_dtype = dtype;
  auto kv = store.GetKvCollection(name);
  if (!kv.ok()) kv = store.CreateKvCollection(name, c);
  EXPECT_OK(kv.status());
  return *kv;
}

// Checks `seq` of a windowed collection: tokens before `exact_from` read,
// score and attend from their codes, later ones exactly (t's floats).
void ExpectWindow(KvCollection& kv, uint64_t seq, const Tokens& t, uint64_t exact_from) {
  SCOPED_TRACE(::testing::Message() << "exact from " << exact_from);
  ASSERT_EQ(*kv.Length(seq), t.n);
  std::vector<float> keys, values;
  ASSERT_OK(kv.Read(seq, 0, t.n, &keys, &values));
  for (int f = 0; f < kLayers * kHeads; ++f) {
    for (size_t i = exact_from; i < t.n; ++i) {
      ASSERT_EQ(Rows(keys, t.n, f, i, i + 1), Rows(t.keys, t.n, f, i, i + 1)) << i;
      ASSERT_EQ(Rows(values, t.n, f, i, i + 1), Rows(t.values, t.n, f, i, i + 1)) << i;
    }
  }
  const std::vector<float> q = Gaussian(kHeads * kDim, 90 + seq);
  for (int layer = 0; layer < kLayers; ++layer) {
    auto scores = kv.Score(seq, layer, q);
    ASSERT_OK(scores.status());
    auto out = kv.Attend(seq, layer, q);
    ASSERT_OK(out.status());
    for (int h = 0; h < kHeads; ++h) {
      const int f = layer * kHeads + h;
      const float* qh = &q[h * kDim];
      for (size_t i = exact_from; i < t.n; ++i) {
        float dot = 0.0f;
        for (int j = 0; j < kDim; ++j) dot += qh[j] * t.keys[(f * t.n + i) * kDim + j];
        ASSERT_EQ((*scores)[h * t.n + i], dot) << "exact logit, token " << i;
      }
      // Attention: the codes' part through index::Attend with the window as
      // its exact tail, rebuilt from the same floats.
      const bool boundary = layer != 1;  // SmallConfig's formats
      const std::string key_format = boundary ? "tq8" : "tq4";
      const std::string value_format = boundary ? "tq6" : "tq2";
      auto kb = *index::CodeBlocks::Create(
          *index::Codec::Create(*index::ParseFormat(key_format, kDim, 0)));
      auto vb = *index::CodeBlocks::Create(
          *index::Codec::Create(*index::ParseFormat(value_format, kDim, 0)));
      ASSERT_OK(kb->Append(Rows(t.keys, t.n, f, 0, t.n).data(), t.n));
      ASSERT_OK(vb->Append(Rows(t.values, t.n, f, 0, t.n).data(), t.n));
      const std::vector<float> tk = Rows(t.keys, t.n, f, exact_from, t.n);
      const std::vector<float> tv = Rows(t.values, t.n, f, exact_from, t.n);
      index::AttendOptions o;
      o.end = exact_from;
      std::vector<float> want(kDim);
      ASSERT_OK(index::Attend(*kb, *vb, absl::MakeConstSpan(qh, kDim), o,
                              {tk.data(), tv.data(), t.n - exact_from}, want.data()));
      ASSERT_EQ(std::vector<float>(out->begin() + h * kDim, out->begin() + (h + 1) * kDim), want)
          << "layer " << layer << " head " << h;
    }
  }
}

TEST_F(KvCollectionTest, ExactWindowKeepsTheNewestTokensExact) {
  auto kv = WindowCollection(*store_, "win", 10);
  const Tokens t = MakeTokens(60, 50);
  ASSERT_OK(kv->CreateSequence(1));
  EXPECT_STATUS_CODE(kv->Append(1, FloatTokens(5, {}, {})), absl::StatusCode::kInvalidArgument);
  // 50 tokens in appends of 1 and 49: the window is [40, 50).
  const Tokens first = Concat({&t}, {50});
  for (auto [from, to] : {std::pair<size_t, size_t>{0, 1}, {1, 50}}) {
    Tokens part{to - from, {}, {}};
    for (int f = 0; f < kLayers * kHeads; ++f) {
      for (auto [src, dst] : {std::pair{&first.keys, &part.keys}, {&first.values, &part.values}}) {
        const std::vector<float> rows = Rows(*src, 50, f, from, to);
        dst->insert(dst->end(), rows.begin(), rows.end());
      }
    }
    ASSERT_OK(kv->Append(1, FloatTokens(part.n, part.keys, part.values)));
  }
  ExpectWindow(*kv, 1, first, 40);
  ASSERT_OK(kv->Truncate(1, 45));  // the window keeps [40, 45)
  ExpectWindow(*kv, 1, Concat({&t}, {45}), 40);
  ASSERT_OK(kv->Truncate(1, 35));  // below the window: it restarts at 35
  ExpectWindow(*kv, 1, Concat({&t}, {35}), 35);
  kv.reset();
  Reopen();
  kv = WindowCollection(*store_, "win", 10);
  ExpectWindow(*kv, 1, Concat({&t}, {35}), 35);
  ASSERT_OK(kv->Fork(1, 2));  // a fork's window starts empty at the fork point
  ExpectWindow(*kv, 2, Concat({&t}, {35}), 35);
}

TEST_F(KvCollectionTest, AWholeSequenceWindowIsPlainFloatAttention) {
  auto kv = WindowCollection(*store_, "all", 1000);
  const Tokens t = MakeTokens(40, 60);
  ASSERT_OK(kv->CreateSequence(1));
  ASSERT_OK(kv->Append(1, FloatTokens(t.n, t.keys, t.values)));
  ExpectWindow(*kv, 1, t, 0);
  // Against attention in double over the given floats.
  const std::vector<float> q = Gaussian(kHeads * kDim, 61);
  auto out = kv->Attend(1, 0, q);
  ASSERT_OK(out.status());
  for (int h = 0; h < kHeads; ++h) {
    std::vector<double> logit(t.n), want(kDim, 0.0);
    double max = -1e300, sum = 0;
    for (size_t i = 0; i < t.n; ++i) {
      double dot = 0;
      for (int j = 0; j < kDim; ++j) dot += double{q[h * kDim + j]} * t.keys[(h * t.n + i) * kDim + j];
      logit[i] = dot / std::sqrt(double{kDim});
      max = std::max(max, logit[i]);
    }
    for (double& l : logit) sum += (l = std::exp(l - max));
    for (size_t i = 0; i < t.n; ++i) {
      for (int j = 0; j < kDim; ++j) want[j] += logit[i] / sum * t.values[(h * t.n + i) * kDim + j];
    }
    for (int j = 0; j < kDim; ++j) {
      EXPECT_NEAR((*out)[h * kDim + j], want[j], 1e-5 * (1 + std::abs(want[j])));
    }
  }
}

TEST_F(KvCollectionTest, AnExactTailAttendsLikeAppendedExactTokens) {
  // Attending with tokens given as a tail equals attending after appending
  // them into a whole-sequence f32 window.
  auto kv = WindowCollection(*store_, "tailed", 1000);
  const Tokens t = MakeTokens(30, 100);
  ASSERT_OK(kv->CreateSequence(1));
  ASSERT_OK(kv->CreateSequence(2));
  const Tokens head = Concat({&t}, {27});
  ASSERT_OK(kv->Append(1, FloatTokens(head.n, head.keys, head.values)));
  ASSERT_OK(kv->Append(2, FloatTokens(t.n, t.keys, t.values)));
  const std::vector<float> q = Gaussian(kHeads * 2 * kDim, 101);
  for (int layer = 0; layer < kLayers; ++layer) {
    std::vector<float> tail_keys, tail_values;  // layer's [head][3 tokens][dim]
    for (int h = 0; h < kHeads; ++h) {
      const int f = layer * kHeads + h;
      for (auto [src, dst] : {std::pair{&t.keys, &tail_keys}, {&t.values, &tail_values}}) {
        const std::vector<float> rows = Rows(*src, t.n, f, 27, 30);
        dst->insert(dst->end(), rows.begin(), rows.end());
      }
    }
    KvAttendOptions o;
    o.tail_tokens = 3;
    o.tail_keys = tail_keys;
    o.tail_values = tail_values;
    auto with_tail = kv->Attend(1, layer, q, o);
    ASSERT_OK(with_tail.status());
    auto appended = kv->Attend(2, layer, q);
    ASSERT_OK(appended.status());
    EXPECT_EQ(*with_tail, *appended) << "layer " << layer;
    o.begin = o.end = 27;  // the tail alone
    EXPECT_OK(kv->Attend(1, layer, q, o).status());
  }
  KvAttendOptions bad;
  bad.tail_tokens = 2;
  bad.tail_keys = absl::MakeConstSpan(t.keys).subspan(0, kHeads * 2 * kDim);
  bad.tail_values = absl::MakeConstSpan(t.values).subspan(0, kHeads * 2 * kDim - 1);
  EXPECT_STATUS_CODE(kv->Attend(1, 0, q, bad).status(), absl::StatusCode::kInvalidArgument);
}

TEST_F(KvCollectionTest, HalfPrecisionWindowsHoldRoundedValues) {
  auto kv = WindowCollection(*store_, "half", 4, DType::kF16);
  const Tokens t = MakeTokens(6, 70);
  ASSERT_OK(kv->CreateSequence(1));
  ASSERT_OK(kv->Append(1, FloatTokens(t.n, t.keys, t.values)));
  std::vector<float> keys, values;
  ASSERT_OK(kv->Read(1, 2, 6, &keys, &values));
  for (int f = 0; f < kLayers * kHeads; ++f) {
    for (size_t i = 2; i < 6; ++i) {
      for (int j = 0; j < kDim; ++j) {
        const float x = t.keys[(f * t.n + i) * kDim + j];
        ASSERT_EQ(keys[(f * 4 + i - 2) * kDim + j], HalfToFloat(FloatToHalf(x)));
      }
    }
  }
}

TEST_F(KvCollectionTest, ConcurrentAppendsAndReads) {
  constexpr int kWriters = 4, kReaders = 4, kAppends = 20;
  for (int w = 0; w < kWriters; ++w) ASSERT_OK(kv_->CreateSequence(w));
  const Tokens one = MakeTokens(1, 40);
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kAppends; ++i) {
        if (!kv_->Append(w, FloatTokens(1, one.keys, one.values)).ok()) failed = true;
      }
    });
  }
  const std::vector<float> q = Gaussian(kHeads * kDim, 41);
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&, r] {
      for (int i = 0; i < kAppends; ++i) {
        const uint64_t seq = (r + i) % kWriters;
        auto before = kv_->Length(seq);
        auto scores = kv_->Score(seq, i % kLayers, q);
        // A reader sees at least what was acknowledged before it started.
        if (!before.ok() || !scores.ok() || scores->size() < kHeads * *before) failed = true;
        if (*before > 0 && !kv_->Attend(seq, 0, q).ok()) failed = true;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_FALSE(failed);
  for (int w = 0; w < kWriters; ++w) EXPECT_EQ(*kv_->Length(w), uint64_t{kAppends});
}

}  // namespace
}  // namespace tqdb::storage
