#include "index/faiss/index_turboquant.h"

#include <random>
#include <vector>

#include "common/testing.h"
#include "faiss/IndexIDMap.h"
#include "faiss/IndexRefine.h"
#include "faiss/IndexShards.h"
#include "gtest/gtest.h"
#include "index/scan/searcher.h"
#include "tests/index/test_data.h"

namespace tqdb::index {
namespace {

constexpr int kDim = 64, kN = 500, kNq = 4, kK = 10;
using idx_t = faiss::Index::idx_t;

using testing::Gaussian;

class IndexTurboQuantTest : public ::testing::TestWithParam<faiss::MetricType> {
 protected:
  std::unique_ptr<IndexTurboQuant> Make() {
    auto index = IndexTurboQuant::Create(kDim, "tq4", GetParam());
    EXPECT_OK(index);
    return std::move(*index);
  }
  Metric metric() const { return GetParam() == faiss::METRIC_L2 ? Metric::kL2 : Metric::kInnerProduct; }
  // tqdb's own answer over the same data.
  void Reference(const IndexTurboQuant& index, int oversample, std::vector<int64_t>* labels,
                 std::vector<float>* dist) {
    labels->resize(kNq * kK);
    dist->resize(kNq * kK);
    ASSERT_OK(Search(index.blocks(), q_, {.k = kK, .oversample = oversample, .metric = metric()},
                     x_.data(), labels->data(), dist->data()));
  }
  std::vector<float> x_ = Gaussian(kN * kDim, 1), q_ = Gaussian(kNq * kDim, 2);
};

TEST_P(IndexTurboQuantTest, SearchIsTqdbSearch) {
  auto index = Make();
  index->train(kN, x_.data());  // a no-op, as promised
  index->add(kN, x_.data());
  EXPECT_EQ(index->ntotal, kN);
  std::vector<idx_t> labels(kNq * kK);
  std::vector<float> dist(kNq * kK);
  index->search(kNq, q_.data(), kK, dist.data(), labels.data());
  std::vector<int64_t> want;
  std::vector<float> want_dist;
  Reference(*index, 0, &want, &want_dist);
  EXPECT_EQ(std::vector<int64_t>(labels.begin(), labels.end()), want);
  EXPECT_EQ(dist, want_dist);
}

TEST_P(IndexTurboQuantTest, RefineFlatEqualsTqdbRerank) {
  auto index = Make();
  faiss::IndexRefineFlat refine(index.get());
  refine.k_factor = 4;
  refine.add(kN, x_.data());
  std::vector<idx_t> labels(kNq * kK);
  std::vector<float> dist(kNq * kK);
  refine.search(kNq, q_.data(), kK, dist.data(), labels.data());
  std::vector<int64_t> want;
  std::vector<float> want_dist;
  Reference(*index, 4, &want, &want_dist);
  EXPECT_EQ(std::vector<int64_t>(labels.begin(), labels.end()), want);
  for (size_t i = 0; i < dist.size(); ++i) EXPECT_NEAR(dist[i], want_dist[i], 1e-4 * (1 + std::fabs(dist[i])));
}

TEST_P(IndexTurboQuantTest, IdMapTranslatesLabels) {
  auto index = Make();
  faiss::IndexIDMap2 idmap(index.get());
  std::vector<idx_t> ids(kN);
  for (int i = 0; i < kN; ++i) ids[i] = 1000 + 7 * i;
  idmap.add_with_ids(kN, x_.data(), ids.data());
  std::vector<idx_t> labels(kNq * kK);
  std::vector<float> dist(kNq * kK);
  idmap.search(kNq, q_.data(), kK, dist.data(), labels.data());
  std::vector<int64_t> want;
  std::vector<float> want_dist;
  Reference(*index, 0, &want, &want_dist);
  for (size_t i = 0; i < labels.size(); ++i) EXPECT_EQ(labels[i], 1000 + 7 * want[i]);
  std::vector<float> recons(kDim), direct(kDim);
  idmap.reconstruct(1000 + 7 * 3, recons.data());
  index->reconstruct(3, direct.data());
  EXPECT_EQ(recons, direct);
}

TEST_P(IndexTurboQuantTest, ShardsEqualOneIndex) {
  auto whole = Make(), a = Make(), b = Make();
  whole->add(kN, x_.data());
  a->add(kN / 2, x_.data());
  b->add(kN - kN / 2, x_.data() + (kN / 2) * kDim);
  faiss::IndexShards shards(kDim, /*threaded=*/false, /*successive_ids=*/true);
  shards.metric_type = GetParam();
  shards.add_shard(a.get());
  shards.add_shard(b.get());
  std::vector<idx_t> got(kNq * kK), want(kNq * kK);
  std::vector<float> got_d(kNq * kK), want_d(kNq * kK);
  shards.search(kNq, q_.data(), kK, got_d.data(), got.data());
  whole->search(kNq, q_.data(), kK, want_d.data(), want.data());
  EXPECT_EQ(got, want);
  EXPECT_EQ(got_d, want_d);
}

TEST_P(IndexTurboQuantTest, StandaloneCodecAndReset) {
  auto index = Make();
  EXPECT_EQ(index->sa_code_size(), index->blocks().codec().code_bytes());
  std::vector<uint8_t> codes(3 * index->sa_code_size()), direct(codes.size());
  index->sa_encode(3, x_.data(), codes.data());
  ASSERT_OK(index->blocks().codec().Encode(x_.data(), 3, direct.data()));
  EXPECT_EQ(codes, direct);
  std::vector<float> decoded(3 * kDim), want(3 * kDim);
  index->sa_decode(3, codes.data(), decoded.data());
  index->blocks().codec().Decode(codes.data(), 3, want.data());
  EXPECT_EQ(decoded, want);
  index->add(kN, x_.data());
  index->reset();
  EXPECT_EQ(index->ntotal, 0);
  EXPECT_EQ(index->blocks().size(), 0u);
  EXPECT_THROW(index->reconstruct(0, decoded.data()), faiss::FaissException);
}

INSTANTIATE_TEST_SUITE_P(Metrics, IndexTurboQuantTest,
                         ::testing::Values(faiss::METRIC_INNER_PRODUCT, faiss::METRIC_L2));

TEST(IndexTurboQuantCreateTest, RejectsBadParameters) {
  EXPECT_STATUS_CODE(IndexTurboQuant::Create(kDim, "tq4", faiss::METRIC_L1),
                     absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(IndexTurboQuant::Create(kDim, "tq9"), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(IndexTurboQuant::Create(0, "tq4"), absl::StatusCode::kInvalidArgument);
  auto index = *IndexTurboQuant::Create(kDim, "tq4");
  std::vector<float> x = Gaussian(kDim, 3);
  x[1] = std::nanf("");
  EXPECT_THROW(index->add(1, x.data()), faiss::FaissException);
  EXPECT_EQ(index->ntotal, 0);
  EXPECT_THROW(index->add(-1, x.data()), faiss::FaissException);
  std::vector<float> dist(kK);
  std::vector<idx_t> labels(kK);
  index->search(0, nullptr, kK, dist.data(), labels.data());  // an empty batch: nothing to do
  EXPECT_THROW(index->search(-1, x.data(), kK, dist.data(), labels.data()), faiss::FaissException);
  std::vector<uint8_t> code(index->sa_code_size());
  EXPECT_THROW(index->sa_decode(-1, code.data(), x.data()), faiss::FaissException);
}

}  // namespace
}  // namespace tqdb::index
