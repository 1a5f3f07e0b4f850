// The fidelity measurements (kv_trace.h, agreement.h, needle.h) and the
// exact-boundary cache (split_kv_cache.h) on a small random model written by
// the test (synthetic_model.h): no data file needed.
#include <cmath>
#include <filesystem>
#include <memory>
#include <random>

#include "common/testing.h"
#include "gtest/gtest.h"
#include "index/codec/format.h"
#include "llm/agreement.h"
#include "llm/checkpoint.h"
#include "llm/exact_kv_cache.h"
#include "llm/kv_spec.h"
#include "llm/kv_trace.h"
#include "llm/needle.h"
#include "llm/split_kv_cache.h"
#include "llm/store_kv_cache.h"
#include "llm/transformer.h"
#include "storage/store.h"
#include "tests/llm/synthetic_model.h"

namespace tqdb::llm {
namespace {

using ::tqdb::llm::testing::SmallConfig;
using ::tqdb::llm::testing::SyntheticCheckpoint;

// SmallConfig with 3 layers, so one exact boundary layer at each end leaves
// a middle one.
ModelConfig ThreeLayers() {
  ModelConfig c = SmallConfig();
  c.n_layers = 3;
  return c;
}

class FidelityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ckpt = Checkpoint::FromBytes(SyntheticCheckpoint(ThreeLayers(), 42));
    ASSERT_OK(ckpt);
    ckpt_ = *std::move(ckpt);
    model_ = std::make_unique<Transformer>(ckpt_.get());
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> token(0, SmallConfig().vocab_size - 1);
    for (int i = 0; i < 181; ++i) tokens_.push_back(token(rng));
  }

  KvTrace Capture(int window = 90, int max_windows = 0) {
    auto trace = CaptureKvTrace(model_.get(), tokens_, window, max_windows);
    EXPECT_OK(trace);
    return trace.ok() ? *std::move(trace) : KvTrace{};
  }

  std::unique_ptr<Checkpoint> ckpt_;
  std::unique_ptr<Transformer> model_;
  std::vector<int> tokens_;
};

TEST_F(FidelityTest, TraceSplitsLikeTeacherForcingAndHoldsWhatTheModelAttends) {
  const KvTrace trace = Capture();
  // 180 inputs in windows of 90.
  ASSERT_EQ(trace.windows.size(), 2u);
  EXPECT_EQ(trace.windows[0].tokens, 90);
  EXPECT_EQ(trace.windows[1].tokens, 90);
  EXPECT_EQ(trace.TotalTokens(), 180u);
  const KvShape& s = trace.shape;
  EXPECT_EQ(trace.windows[0].queries.size(), 3u * 90 * s.num_heads * s.head_dim);
  EXPECT_EQ(trace.windows[0].keys.size(), 3u * 90 * s.num_kv_heads * s.head_dim);

  // The first window alone is the same capture: windows start from an empty
  // cache.
  const KvTrace first = Capture(90, 1);
  ASSERT_EQ(first.windows.size(), 1u);
  EXPECT_EQ(first.windows[0].queries, trace.windows[0].queries);
  EXPECT_EQ(first.windows[0].keys, trace.windows[0].keys);
  EXPECT_EQ(first.windows[0].values, trace.windows[0].values);

  EXPECT_STATUS_CODE(CaptureKvTrace(model_.get(), tokens_, 0, 0), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(CaptureKvTrace(model_.get(), tokens_, 97, 0),
                     absl::StatusCode::kInvalidArgument);
}

TEST_F(FidelityTest, ExactKeysAgreeCompletely) {
  const KvTrace trace = Capture();
  auto r = MeasureAgreement(trace, "fp32", "fp32", {});
  ASSERT_OK(r);
  // 2 windows × 32 positions × 3 layers × 4 query heads.
  EXPECT_EQ(r->all.samples, 2 * 32 * 3 * 4);
  EXPECT_EQ(r->all.pearson, 1.0);
  EXPECT_EQ(r->all.top1, 1.0);
  EXPECT_EQ(r->all.top5, 1.0);
  EXPECT_NEAR(r->all.cosine, 1.0, 1e-12);
  ASSERT_EQ(r->per_layer.size(), 3u);
  EXPECT_EQ(r->key_bytes, 4u * 16);

  // An exact window covering every position leaves nothing to the codes.
  AgreementOptions all_exact;
  all_exact.exact_window = 96;
  auto w = MeasureAgreement(trace, "tq2", "tq2", all_exact);
  ASSERT_OK(w);
  EXPECT_EQ(w->all.pearson, 1.0);
  EXPECT_EQ(w->all.top1, 1.0);
  EXPECT_NEAR(w->all.cosine, 1.0, 1e-12);
}

TEST_F(FidelityTest, AgreementFallsWithBits) {
  const KvTrace trace = Capture();
  auto k4 = MeasureAgreement(trace, "tq4", "tq4", {});
  auto k2 = MeasureAgreement(trace, "tq2", "tq2", {});
  ASSERT_OK(k4);
  ASSERT_OK(k2);
  // tq4's relative MSE is ≈ 0.009 and tq2's ≈ 0.12 (the paper's table): the
  // logit correlation is near 1 at 4 bits and clearly lower at 2. 512
  // samples put the standard error of each mean far below the gaps.
  EXPECT_GT(k4->all.pearson, 0.95);
  EXPECT_LT(k4->all.pearson, 1.0);
  EXPECT_GT(k4->all.pearson, k2->all.pearson + 0.02);
  EXPECT_GT(k4->all.cosine, k2->all.cosine);
  EXPECT_GE(k4->all.top5, k4->all.top1);
  // A recent exact window only helps.
  AgreementOptions windowed;
  windowed.exact_window = 32;
  auto k2w = MeasureAgreement(trace, "tq2", "tq2", windowed);
  ASSERT_OK(k2w);
  EXPECT_GT(k2w->all.pearson, k2->all.pearson);
}

TEST_F(FidelityTest, AgreementRejectsWhatTheStoreRejects) {
  const KvTrace trace = Capture(90, 1);
  // QJL values cannot be attended, and exact keys with coded values are not a
  // cache configuration.
  EXPECT_STATUS_CODE(MeasureAgreement(trace, "tq4", "tq4p", {}),
                     absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(MeasureAgreement(trace, "fp32", "tq4", {}),
                     absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(MeasureAgreement(trace, "tq9", "tq4", {}),
                     absl::StatusCode::kInvalidArgument);
  AgreementOptions too_late;
  too_late.min_position = 200;
  EXPECT_STATUS_CODE(MeasureAgreement(trace, "tq4", "tq4", too_late),
                     absl::StatusCode::kInvalidArgument);
  // QJL keys and wide formats are fine.
  EXPECT_OK(MeasureAgreement(trace, "tq4p", "tq4", {}));
  EXPECT_OK(MeasureAgreement(trace, "tq8", "tq5", {}));
}

TEST_F(FidelityTest, ExactNeedleIsAlwaysFound) {
  const KvTrace trace = Capture();
  NeedleOptions options;
  options.haystack_sizes = {4096, 256};
  options.trials = 40;
  auto r = MeasureNeedle(trace, {"fp32", "tq4", "tq1"}, options);
  ASSERT_OK(r);
  ASSERT_EQ(r->size(), 6u);
  // Formats in order, sizes ascending.
  EXPECT_EQ((*r)[0].format, "fp32");
  EXPECT_EQ((*r)[0].haystack, 256u);
  EXPECT_EQ((*r)[1].haystack, 4096u);
  for (int i = 0; i < 2; ++i) {
    // The needle leads every exact logit by half a standard deviation.
    EXPECT_EQ((*r)[i].trials, 40);
    EXPECT_EQ((*r)[i].first, 40);
    EXPECT_EQ((*r)[i].top10, 40);
    EXPECT_EQ((*r)[i].mean_rank, 1.0);
  }
  // Fewer bits lose the needle more often; with the same trials for every
  // format, tq4 is found at least as often as tq1 (here by a wide margin).
  EXPECT_GE((*r)[3].first, (*r)[5].first);
  EXPECT_LE((*r)[3].mean_rank, (*r)[5].mean_rank);
  EXPECT_EQ((*r)[2].code_bytes, index::ParseFormat("tq4", 16)->CodeBytes());

  NeedleOptions bad = options;
  bad.margin = 0;
  EXPECT_STATUS_CODE(MeasureNeedle(trace, {"fp32"}, bad), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(MeasureNeedle(trace, {"nope"}, options), absl::StatusCode::kInvalidArgument);
}

TEST_F(FidelityTest, SplitCacheWithAnExactMiddleIsTheExactCache) {
  const KvShape shape = model_->kv_shape();
  ExactKvCache exact(shape);
  auto split = SplitKvCache::Create(shape, 1, std::make_unique<ExactKvCache>(MiddleShape(shape, 1)));
  ASSERT_OK(split);
  for (int i = 0; i < 50; ++i) {
    auto a = model_->Forward(tokens_[i], &exact);
    ASSERT_OK(a);
    const std::vector<float> want(a->begin(), a->end());
    auto b = model_->Forward(tokens_[i], split->get());
    ASSERT_OK(b);
    EXPECT_EQ(std::vector<float>(b->begin(), b->end()), want) << i;
  }
  EXPECT_EQ((*split)->Length(), 50u);
  ASSERT_OK((*split)->Truncate(10));
  EXPECT_EQ((*split)->Length(), 10u);

  EXPECT_STATUS_CODE(
      SplitKvCache::Create(shape, 0, std::make_unique<ExactKvCache>(MiddleShape(shape, 1))),
      absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(
      SplitKvCache::Create(shape, 1, std::make_unique<ExactKvCache>(shape)),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(FidelityTest, SplitCacheOverTheStoreKeepsBoundaryLayersExact) {
  const std::string dir = tqdb::testing::UniqueTempDir("tqdb_llm_fidelity_test");
  ASSERT_FALSE(dir.empty());
  {
    storage::StoreOptions options;
    options.sync = storage::SyncPolicy::kNone;
    auto store = storage::Store::Open(options, dir);
    ASSERT_OK(store);
    const KvShape shape = model_->kv_shape();
    auto spec = ParseKvSpec("K2V2");
    ASSERT_OK(spec);
    spec->boundary_layers = 1;
    spec->exact_boundary = true;
    EXPECT_EQ(spec->Name(), "K2V2+b1:fp32");
    const storage::KvCollectionConfig config = CollectionConfig(*spec, shape);
    EXPECT_EQ(config.num_layers, 1);
    EXPECT_EQ(config.boundary_layers, 0);
    auto collection = OpenKvCollection(store->get(), "split", config);
    ASSERT_OK(collection);
    auto middle = StoreKvCache::Open(*collection, 1, MiddleShape(shape, 1));
    ASSERT_OK(middle);
    auto split = SplitKvCache::Create(shape, 1, *std::move(middle));
    ASSERT_OK(split);
    for (int i = 0; i < 70; ++i) ASSERT_OK(model_->Forward(tokens_[i], split->get()));
    auto stored = (*collection)->Length(1);
    ASSERT_OK(stored);
    EXPECT_EQ(*stored, 70u);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tqdb::llm
