// The decoder over its KV caches on a small random model written by the test
// (synthetic_model.h): no data file needed.
#include <cmath>
#include <filesystem>
#include <memory>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "llm/checkpoint.h"
#include "llm/evaluate.h"
#include "llm/exact_kv_cache.h"
#include "llm/kv_spec.h"
#include "llm/store_kv_cache.h"
#include "llm/transformer.h"
#include "storage/store.h"
#include "tests/llm/synthetic_model.h"

namespace tqdb::llm {
namespace {

using ::tqdb::llm::testing::SmallConfig;
using ::tqdb::llm::testing::SyntheticCheckpoint;
using Logits = std::vector<std::vector<float>>;

class KvCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ckpt = Checkpoint::FromBytes(SyntheticCheckpoint(SmallConfig(), 42));
    ASSERT_OK(ckpt);
    ckpt_ = *std::move(ckpt);
    model_ = std::make_unique<Transformer>(ckpt_.get());
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> token(0, SmallConfig().vocab_size - 1);
    // 80 tokens: past the store's 64-token pages.
    for (int i = 0; i < 80; ++i) tokens_.push_back(token(rng));
    dir_ = tqdb::testing::UniqueTempDir("tqdb_llm_kv_cache_test");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Teacher-forced logits of every token of `tokens`.
  Logits Run(KvCache* cache, const std::vector<int>& tokens) {
    Logits out;
    for (int t : tokens) {
      auto logits = model_->Forward(t, cache);
      EXPECT_OK(logits);
      if (!logits.ok()) break;
      out.emplace_back(logits->begin(), logits->end());
    }
    return out;
  }

  std::unique_ptr<storage::Store> OpenStore() {
    storage::StoreOptions options;
    options.sync = storage::SyncPolicy::kNone;
    options.query_threads = 1;
    auto store = storage::Store::Open(options, dir_);
    EXPECT_OK(store);
    return store.ok() ? *std::move(store) : nullptr;
  }

  // Logits of tokens_ with a store cache of `kv` in a fresh collection.
  Logits RunStore(storage::Store* store, const std::string& kv, StoreAttention attention) {
    const std::string name = absl::StrCat("c", collections_++);
    auto collection =
        OpenKvCollection(store, name, CollectionConfig(*ParseKvSpec(kv), model_->kv_shape()));
    EXPECT_OK(collection);
    if (!collection.ok()) return {};
    auto cache = StoreKvCache::Open(*collection, 1, model_->kv_shape(), attention);
    EXPECT_OK(cache);
    if (!cache.ok()) return {};
    return Run(cache->get(), tokens_);
  }

  Logits RunExact() {
    ExactKvCache cache(model_->kv_shape());
    return Run(&cache, tokens_);
  }

  std::unique_ptr<Checkpoint> ckpt_;
  std::unique_ptr<Transformer> model_;
  std::vector<int> tokens_;
  std::string dir_;
  int collections_ = 0;
};

// max over tokens and entries of |a − b|.
float MaxAbsDiff(const Logits& a, const Logits& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t t = 0; t < std::min(a.size(), b.size()); ++t) {
    for (size_t i = 0; i < a[t].size(); ++i) m = std::max(m, std::abs(a[t][i] - b[t][i]));
  }
  return m;
}

// ‖a − b‖ / ‖b − mean(b)‖ over all tokens: the error relative to the spread
// of the logits, which is what decides the softmax.
double RelativeError(const Logits& a, const Logits& b) {
  double err = 0, spread = 0;
  for (size_t t = 0; t < b.size(); ++t) {
    double mean = 0;
    for (float x : b[t]) mean += x;
    mean /= b[t].size();
    for (size_t i = 0; i < b[t].size(); ++i) {
      err += (a[t][i] - b[t][i]) * (a[t][i] - b[t][i]);
      spread += (b[t][i] - mean) * (b[t][i] - mean);
    }
  }
  return std::sqrt(err / spread);
}

TEST_F(KvCacheTest, ExactCacheTruncatesAndRefeedsIdentically) {
  ExactKvCache cache(model_->kv_shape());
  const Logits full = Run(&cache, tokens_);
  ASSERT_OK(cache.Truncate(30));
  EXPECT_EQ(cache.Length(), 30u);
  const Logits tail = Run(&cache, std::vector<int>(tokens_.begin() + 30, tokens_.end()));
  ASSERT_EQ(tail.size(), full.size() - 30);
  for (size_t i = 0; i < tail.size(); ++i) EXPECT_EQ(tail[i], full[30 + i]) << i;
  EXPECT_STATUS_CODE(cache.Truncate(1000), absl::StatusCode::kInvalidArgument);
}

TEST_F(KvCacheTest, CachesEnforceTheProtocol) {
  ExactKvCache cache(model_->kv_shape());
  EXPECT_STATUS_CODE(cache.Commit(), absl::StatusCode::kFailedPrecondition);
  std::vector<float> q(64), kv(32), out(64);
  EXPECT_STATUS_CODE(cache.Attend(1, q.data(), kv.data(), kv.data(), out.data()),
                     absl::StatusCode::kFailedPrecondition);
  // One token alone attends to itself: the output is its value.
  for (size_t i = 0; i < kv.size(); ++i) kv[i] = static_cast<float>(i);
  ASSERT_OK(cache.Attend(0, q.data(), kv.data(), kv.data(), out.data()));
  for (int h = 0; h < 4; ++h) {
    for (int j = 0; j < 16; ++j) EXPECT_EQ(out[h * 16 + j], kv[(h / 2) * 16 + j]);
  }
  EXPECT_STATUS_CODE(model_->Forward(-1, &cache), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(model_->Forward(SmallConfig().vocab_size, &cache),
                     absl::StatusCode::kInvalidArgument);
  // A full context is OutOfRange.
  ExactKvCache full(model_->kv_shape());
  for (int i = 0; i < SmallConfig().seq_len; ++i) ASSERT_OK(model_->Forward(i % 10, &full));
  EXPECT_STATUS_CODE(model_->Forward(0, &full), absl::StatusCode::kOutOfRange);
}

// --kv fp32 in the store (every token in the float32 exact window) is exact
// attention. Read gives back the very floats appended, so attention over the
// mirror (kDecoded) is the in-process cache bit for bit. The store's own
// Attend sums in another order and uses a polynomial exp (relative error
// ≤ 4e-7), so kStore agrees to float rounding: 1e-5 relative to the logits'
// magnitude leaves a margin of ~20 float32 ulps after two layers.
TEST_F(KvCacheTest, StoreAtFp32EqualsTheExactCache) {
  const Logits exact = RunExact();
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const Logits decoded = RunStore(store.get(), "fp32", StoreAttention::kDecoded);
  EXPECT_EQ(decoded, exact);
  const Logits merged = RunStore(store.get(), "fp32", StoreAttention::kStore);
  float scale = 0;
  for (const auto& row : exact) {
    for (float x : row) scale = std::max(scale, std::abs(x));
  }
  EXPECT_LE(MaxAbsDiff(merged, exact), 1e-5f * scale);
  std::printf("fp32 kStore vs exact: max |diff| %.3g, max |logit| %.3g\n",
              MaxAbsDiff(merged, exact), scale);
}

// At K4V4 the logits move by the quantization of keys and values. A 4-bit
// TurboQuant MSE code has relative error √D₄ ≈ √0.0095 ≈ 0.1 per vector; the
// attention output averages many such errors and is half of each residual
// update, so the logits' error relative to their spread stays below that
// single-vector bound. At 2 bits (√D₂ ≈ √0.117 ≈ 0.34) it must be clearly
// larger: the store really holds quantized codes, at the bits asked for.
TEST_F(KvCacheTest, StoreAtK4V4IsCloseToExactAndK2V2Further) {
  const Logits exact = RunExact();
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const Logits k4 = RunStore(store.get(), "K4V4", StoreAttention::kStore);
  const Logits k2 = RunStore(store.get(), "K2V2", StoreAttention::kStore);
  const double e4 = RelativeError(k4, exact), e2 = RelativeError(k2, exact);
  std::printf("relative logit error: K4V4 %.4f, K2V2 %.4f\n", e4, e2);
  EXPECT_GT(e4, 0.0);
  EXPECT_LT(e4, 0.1);
  EXPECT_GT(e2, 2 * e4);
}

// The store attending (kStore: Attend plus a Score normalizer merged with the
// current token) against exact attention over the very same decoded codes
// (kDecoded). They differ only by Score's uint8 lookup tables, which shift
// the current token's weight by a factor e^{±ε} for a per-logit table error
// ε (index/scan/scorer.h). The table step is a 255th of each table's range,
// so ε is a few hundredths of a logit here; the resulting error must stay a
// minor part of the quantization error itself.
TEST_F(KvCacheTest, StoreAttentionMatchesAttentionOverDecodedCodes) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const Logits merged = RunStore(store.get(), "K4V4", StoreAttention::kStore);
  const Logits decoded = RunStore(store.get(), "K4V4", StoreAttention::kDecoded);
  const Logits exact = RunExact();
  const double gap = RelativeError(merged, decoded), quant = RelativeError(decoded, exact);
  std::printf("kStore vs kDecoded %.2e, kDecoded vs exact %.2e\n", gap, quant);
  EXPECT_LT(gap, 0.25 * quant);
}

// Generate half, destroy the Store, reopen the directory, continue: the
// tokens and logits equal an uninterrupted run's, bit for bit (the stored
// codes, or exact window, are the same in both).
TEST_F(KvCacheTest, RestartContinuesExactly) {
  const std::vector<int> prompt(tokens_.begin(), tokens_.begin() + 6);
  for (const char* kv : {"K4V4", "fp32", "turbo3/turbo3"}) {
    for (StoreAttention attention : {StoreAttention::kStore, StoreAttention::kDecoded}) {
      SCOPED_TRACE(absl::StrCat(kv, attention == StoreAttention::kStore ? " store" : " decoded"));
      std::filesystem::remove_all(dir_);
      const auto config = CollectionConfig(*ParseKvSpec(kv), model_->kv_shape());
      GenerateOptions options;
      options.stop_at_bos = false;
      Logits whole_logits, part_logits;
      std::vector<int> whole, part;
      {
        auto store = OpenStore();
        ASSERT_NE(store, nullptr);
        auto collection = OpenKvCollection(store.get(), "llm", config);
        ASSERT_OK(collection);
        auto a = StoreKvCache::Open(*collection, 1, model_->kv_shape(), attention);
        ASSERT_OK(a);
        options.steps = 70;  // crosses the 64-token page boundary
        options.logits = &whole_logits;
        auto out = GenerateGreedy(model_.get(), a->get(), prompt, options);
        ASSERT_OK(out);
        whole = *out;
        auto b = StoreKvCache::Open(*collection, 2, model_->kv_shape(), attention);
        ASSERT_OK(b);
        options.steps = 35;
        options.logits = &part_logits;
        out = GenerateGreedy(model_.get(), b->get(), prompt, options);
        ASSERT_OK(out);
        part = *out;
      }  // the Store is closed here
      auto store = OpenStore();
      ASSERT_NE(store, nullptr);
      auto collection = OpenKvCollection(store.get(), "llm", config);
      ASSERT_OK(collection);
      auto b = StoreKvCache::Open(*collection, 2, model_->kv_shape(), attention);
      ASSERT_OK(b);
      EXPECT_EQ((*b)->Length(), prompt.size() + part.size() - 1);
      options.steps = 35;
      auto rest = GenerateGreedy(model_.get(), b->get(), {part.back()}, options);
      ASSERT_OK(rest);
      part.insert(part.end(), rest->begin(), rest->end());
      EXPECT_EQ(part, whole);
      ASSERT_EQ(part_logits.size(), whole_logits.size());
      for (size_t i = 0; i < whole_logits.size(); ++i) {
        EXPECT_EQ(part_logits[i], whole_logits[i]) << "step " << i;
      }
    }
  }
}

TEST_F(KvCacheTest, StoreCacheChecksShapesAndConfigurations) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  auto collection = OpenKvCollection(store.get(), "llm",
                                     CollectionConfig(*ParseKvSpec("K4V4"), model_->kv_shape()));
  ASSERT_OK(collection);
  // Another format under the same name is refused.
  EXPECT_STATUS_CODE(OpenKvCollection(store.get(), "llm",
                                      CollectionConfig(*ParseKvSpec("K2V2"), model_->kv_shape())),
                     absl::StatusCode::kFailedPrecondition);
  KvShape other = model_->kv_shape();
  other.head_dim = 8;
  other.num_heads = 8;
  EXPECT_STATUS_CODE(StoreKvCache::Open(*collection, 1, other), absl::StatusCode::kInvalidArgument);
  auto cache = StoreKvCache::Open(*collection, 1, model_->kv_shape());
  ASSERT_OK(cache);
  EXPECT_STATUS_CODE((*cache)->Commit(), absl::StatusCode::kFailedPrecondition);
  ASSERT_OK(model_->Forward(3, cache->get()));
  ASSERT_OK(model_->Forward(4, cache->get()));
  EXPECT_EQ((*collection)->Length(1).value(), 2u);
  ASSERT_OK((*cache)->Truncate(1));
  EXPECT_EQ((*collection)->Length(1).value(), 1u);
  EXPECT_STATUS_CODE((*cache)->Truncate(5), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tqdb::llm
