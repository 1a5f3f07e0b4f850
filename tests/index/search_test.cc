#include "index/scan/searcher.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "common/testing.h"
#include "gtest/gtest.h"
#include "index/scan/scorer.h"
#include "tests/index/test_data.h"

namespace tqdb::index {
namespace {

constexpr int kDim = 64;

using testing::Gaussian;

std::unique_ptr<CodeBlocks> Blocks(const std::vector<float>& x, const char* format = "tq4") {
  auto blocks = *CodeBlocks::Create(*Codec::Create(*ParseFormat(format, kDim, 1)));
  EXPECT_OK(blocks->Append(x.data(), x.size() / kDim));
  return blocks;
}

// Exact top-k by brute force in double, FAISS order (ties by lower label).
std::vector<int64_t> BruteForce(const std::vector<float>& x, const float* q, int k, Metric m) {
  const size_t n = x.size() / kDim;
  std::vector<double> score(n);
  for (size_t i = 0; i < n; ++i) {
    double ip = 0, l2 = 0;
    for (int j = 0; j < kDim; ++j) {
      ip += double{q[j]} * x[i * kDim + j];
      l2 += std::pow(double{q[j]} - x[i * kDim + j], 2);
    }
    score[i] = m == Metric::kL2 ? -l2 : ip;
  }
  std::vector<int64_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int64_t a, int64_t b) { return score[a] > score[b]; });
  ids.resize(std::min<size_t>(k, n));
  return ids;
}

// Queries are scored in batches sharing each pass over the codes; every
// query's results equal its own search, for every metric, with and without
// reranking, over batches of 8 and a remainder.
TEST(SearchTest, BatchedQueriesEqualOneAtATime) {
  constexpr int kQueries = 19, kK = 7;
  const std::vector<float> x = Gaussian(900 * kDim, 5), q = Gaussian(kQueries * kDim, 6);
  for (const char* format : {"tq4", "tq2", "turbo3"}) {
    auto blocks = Blocks(x, format);
    for (Metric metric : {Metric::kInnerProduct, Metric::kCosine, Metric::kL2}) {
      for (int oversample : {0, 3}) {
        SCOPED_TRACE(::testing::Message() << format << " metric " << static_cast<int>(metric)
                                          << " oversample " << oversample);
        const SearchOptions options{.k = kK, .oversample = oversample, .metric = metric};
        std::vector<int64_t> labels(kQueries * kK), one_labels(kK);
        std::vector<float> dist(kQueries * kK), one_dist(kK);
        ASSERT_OK(Search(*blocks, q, options, x.data(), labels.data(), dist.data()));
        for (int i = 0; i < kQueries; ++i) {
          ASSERT_OK(Search(*blocks, absl::MakeConstSpan(&q[i * kDim], kDim), options, x.data(),
                           one_labels.data(), one_dist.data()));
          EXPECT_TRUE(std::equal(one_labels.begin(), one_labels.end(), &labels[i * kK]))
              << "query " << i;
          EXPECT_TRUE(std::equal(one_dist.begin(), one_dist.end(), &dist[i * kK])) << "query " << i;
        }
      }
    }
  }
}

TEST(SearchTest, CodeScoresRankLikeScoreBlocks) {
  const std::vector<float> x = Gaussian(700 * kDim, 1), q = Gaussian(kDim, 2);
  auto blocks = Blocks(x);
  std::vector<int64_t> labels(20);
  std::vector<float> dist(20);
  ASSERT_OK(Search(*blocks, q, {.k = 20}, nullptr, labels.data(), dist.data()));
  PreparedQuery prepared;
  PrepareQuery(blocks->codec(), blocks->layout(), q.data(), &prepared);
  std::vector<float> scores(700);
  ScoreBlocks(*blocks, &prepared, 1, 0, blocks->num_blocks(), scores.data(), 700);
  std::vector<int64_t> want(700);
  std::iota(want.begin(), want.end(), 0);
  std::stable_sort(want.begin(), want.end(), [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(labels[i], want[i]) << i;
    EXPECT_EQ(dist[i], scores[want[i]]) << i;
  }
}

// Reranking everything (k·r ≥ n) must give the exact answer, for IP and L2.
TEST(SearchTest, FullRerankIsExact) {
  const std::vector<float> x = Gaussian(300 * kDim, 3), q = Gaussian(2 * kDim, 4);
  auto blocks = Blocks(x, "tq2");
  for (Metric m : {Metric::kInnerProduct, Metric::kL2}) {
    std::vector<int64_t> labels(2 * 10);
    std::vector<float> dist(2 * 10);
    ASSERT_OK(Search(*blocks, q, {.k = 10, .oversample = 30, .metric = m}, x.data(), labels.data(),
                     dist.data()));
    for (int qi = 0; qi < 2; ++qi) {
      const std::vector<int64_t> want = BruteForce(x, &q[qi * kDim], 10, m);
      EXPECT_EQ(std::vector<int64_t>(labels.begin() + qi * 10, labels.begin() + qi * 10 + 10), want);
      for (int i = 0; i < 10; ++i) {  // distances are FAISS's exact values
        double l2 = 0, ip = 0;
        for (int j = 0; j < kDim; ++j) {
          ip += double{q[qi * kDim + j]} * x[want[i] * kDim + j];
          l2 += std::pow(double{q[qi * kDim + j]} - x[want[i] * kDim + j], 2);
        }
        EXPECT_NEAR(dist[qi * 10 + i], m == Metric::kL2 ? l2 : ip, 1e-4 * (1 + std::fabs(l2)));
      }
    }
  }
}

// Without rerank, L2 is ‖q‖² + ‖x‖² − 2·(code score) and cosine is the code
// score of the normalised query: checked numerically, not just by order.
TEST(SearchTest, L2AndCosineOverCodesFollowTheirFormulas) {
  // More than one of Search's 8,192-vector chunks, and not whole blocks.
  constexpr size_t kN = 8192 + 407;
  const std::vector<float> x = Gaussian(kN * kDim, 12);
  std::vector<float> q = Gaussian(kDim, 13);
  for (float& v : q) v *= 2.5f;
  auto blocks = Blocks(x);
  double qq = 0;
  for (float v : q) qq += double{v} * v;
  std::vector<float> unit(q);
  for (float& v : unit) v = static_cast<float>(v / std::sqrt(qq));
  for (Metric m : {Metric::kL2, Metric::kCosine}) {
    PreparedQuery prepared;
    PrepareQuery(blocks->codec(), blocks->layout(), m == Metric::kL2 ? q.data() : unit.data(),
                 &prepared);
    std::vector<float> scores(kN);
    ScoreBlocks(*blocks, &prepared, 1, 0, blocks->num_blocks(), scores.data(), kN);
    std::vector<double> want(kN);
    for (size_t i = 0; i < kN; ++i) {
      want[i] = m == Metric::kL2 ? qq + blocks->SquaredNorm(i) - 2.0 * scores[i] : scores[i];
    }
    std::vector<int64_t> order(kN);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return m == Metric::kL2 ? want[a] < want[b] : want[a] > want[b];
    });
    std::vector<int64_t> labels(15);
    std::vector<float> dist(15);
    ASSERT_OK(Search(*blocks, q, {.k = 15, .metric = m}, nullptr, labels.data(), dist.data()));
    for (int i = 0; i < 15; ++i) {
      EXPECT_EQ(labels[i], order[i]) << i;
      EXPECT_NEAR(dist[i], want[labels[i]], 1e-5 * (qq + blocks->SquaredNorm(labels[i])));
    }
    // ‖x‖² is exact for appended floats.
    double x0 = 0;
    for (int j = 0; j < kDim; ++j) x0 += double{x[j]} * x[j];
    EXPECT_NEAR(blocks->SquaredNorm(0), x0, 1e-5 * x0);
  }
}

// Centered codes (x − μ) keep results in the original coordinates: IP adds
// ⟨q, μ⟩ back, L2 scores q − μ, and a full rerank is still exact.
TEST(SearchTest, CenteredCodesKeepOriginalCoordinates) {
  constexpr size_t kN = 300;
  std::vector<float> x = Gaussian(kN * kDim, 20);
  std::vector<float> mu(kDim);
  for (int j = 0; j < kDim; ++j) mu[j] = 5.0f + 0.1f * j;  // a large common offset
  for (size_t i = 0; i < kN; ++i) {
    for (int j = 0; j < kDim; ++j) x[i * kDim + j] += mu[j];
  }
  const std::vector<float> q = Gaussian(kDim, 21);
  auto blocks = *CodeBlocks::Create(*Codec::Create(*ParseFormat("tq4", kDim, 1)), mu);
  ASSERT_OK(blocks->Append(x.data(), kN));
  double x0 = 0, q_mu = 0, qc2 = 0;
  std::vector<float> qc(kDim);
  for (int j = 0; j < kDim; ++j) {
    x0 += std::pow(double{x[j]} - mu[j], 2);
    q_mu += double{q[j]} * mu[j];
    qc[j] = q[j] - mu[j];
    qc2 += double{qc[j]} * qc[j];
  }
  EXPECT_NEAR(blocks->SquaredNorm(0), x0, 1e-5 * x0);
  for (Metric m : {Metric::kInnerProduct, Metric::kL2}) {
    PreparedQuery prepared;
    PrepareQuery(blocks->codec(), blocks->layout(), m == Metric::kL2 ? qc.data() : q.data(),
                 &prepared);
    std::vector<float> scores(kN);
    ScoreBlocks(*blocks, &prepared, 1, 0, blocks->num_blocks(), scores.data(), kN);
    std::vector<int64_t> labels(10);
    std::vector<float> dist(10);
    ASSERT_OK(Search(*blocks, q, {.k = 10, .metric = m}, nullptr, labels.data(), dist.data()));
    for (int i = 0; i < 10; ++i) {
      const double want = m == Metric::kL2
                              ? qc2 + blocks->SquaredNorm(labels[i]) - 2.0 * scores[labels[i]]
                              : scores[labels[i]] + q_mu;
      EXPECT_NEAR(dist[i], want, 1e-5 * (std::fabs(want) + qc2));
    }
    ASSERT_OK(Search(*blocks, q, {.k = 10, .oversample = 30, .metric = m}, x.data(),
                     labels.data(), dist.data()));
    EXPECT_EQ(labels, BruteForce(x, q.data(), 10, m));
  }
  EXPECT_STATUS_CODE(CodeBlocks::Create(*Codec::Create(*ParseFormat("tq4", kDim)),
                                        std::vector<float>(kDim - 1)),
                     absl::StatusCode::kInvalidArgument);
  std::vector<float> nan_mu(kDim, 0.0f);
  nan_mu[2] = std::nanf("");
  EXPECT_STATUS_CODE(CodeBlocks::Create(*Codec::Create(*ParseFormat("tq4", kDim)), nan_mu),
                     absl::StatusCode::kInvalidArgument);
}

TEST(SearchTest, ScoreBlocksRangesAgreeWithAFullScan) {
  constexpr size_t kN = 200;  // 7 blocks, the last partial
  auto blocks = Blocks(Gaussian(kN * kDim, 14));
  PreparedQuery q;
  PrepareQuery(blocks->codec(), blocks->layout(), Gaussian(kDim, 15).data(), &q);
  std::vector<float> full(kN);
  ScoreBlocks(*blocks, &q, 1, 0, blocks->num_blocks(), full.data(), kN);
  std::vector<float> part(kN - 64);
  ScoreBlocks(*blocks, &q, 1, 2, blocks->num_blocks(), part.data(), part.size());
  EXPECT_EQ(part, std::vector<float>(full.begin() + 64, full.end()));
}

// Queries near the float limits must not reach undefined behaviour (a zero or
// infinite table step); search still answers.
TEST(SearchTest, ExtremeQueryMagnitudesAreSafe) {
  const std::vector<float> x = Gaussian(100 * kDim, 16);
  auto blocks = Blocks(x);
  for (float scale : {1e-44f, 1e-30f, 1e30f, 5e37f}) {
    std::vector<float> q = Gaussian(kDim, 17);
    for (float& v : q) v *= scale;
    std::vector<int64_t> labels(5);
    std::vector<float> dist(5);
    ASSERT_OK(Search(*blocks, q, {.k = 5}, nullptr, labels.data(), dist.data()));
    for (int64_t l : labels) EXPECT_GE(l, 0) << scale;
  }
}

TEST(SearchTest, SkippedVectorsAreLeftOut) {
  const std::vector<float> x = Gaussian(500 * kDim, 31), q = Gaussian(3 * kDim, 32);
  std::vector<uint8_t> skip(500, 0);
  std::vector<float> kept;
  std::vector<int64_t> kept_label;
  for (size_t i = 0; i < 500; ++i) {
    skip[i] = i % 3 == 0 || i < 50;
    if (skip[i]) continue;
    kept.insert(kept.end(), x.begin() + i * kDim, x.begin() + (i + 1) * kDim);
    kept_label.push_back(static_cast<int64_t>(i));
  }
  for (Metric metric : {Metric::kInnerProduct, Metric::kL2}) {
    for (int oversample : {0, 4}) {
      SearchOptions o;
      o.k = 20;
      o.metric = metric;
      o.oversample = oversample;
      std::vector<int64_t> labels(3 * 20), want(3 * 20);
      std::vector<float> dist(3 * 20), want_dist(3 * 20);
      o.skip = skip.data();
      ASSERT_OK(Search(*Blocks(x), q, o, x.data(), labels.data(), dist.data()));
      o.skip = nullptr;
      ASSERT_OK(Search(*Blocks(kept), q, o, kept.data(), want.data(), want_dist.data()));
      for (int64_t& l : want) l = kept_label[l];
      EXPECT_EQ(labels, want);
      EXPECT_EQ(dist, want_dist);
    }
  }
}

TEST(SearchTest, PadsWithMinusOneLikeFaiss) {
  const std::vector<float> x = Gaussian(5 * kDim, 5), q = Gaussian(kDim, 6);
  auto blocks = Blocks(x);
  for (Metric m : {Metric::kInnerProduct, Metric::kCosine, Metric::kL2}) {
    std::vector<int64_t> labels(8);
    std::vector<float> dist(8);
    ASSERT_OK(Search(*blocks, q, {.k = 8, .metric = m}, nullptr, labels.data(), dist.data()));
    for (int i = 0; i < 5; ++i) EXPECT_GE(labels[i], 0);
    for (int i = 5; i < 8; ++i) {
      EXPECT_EQ(labels[i], -1);
      EXPECT_EQ(dist[i], m == Metric::kL2 ? std::numeric_limits<float>::max()
                                          : std::numeric_limits<float>::lowest());
    }
    if (m == Metric::kL2) {
      EXPECT_TRUE(std::is_sorted(dist.begin(), dist.begin() + 5));
    } else {
      EXPECT_TRUE(std::is_sorted(dist.begin(), dist.begin() + 5, std::greater<float>()));
    }
  }
  auto empty = *CodeBlocks::Create(*Codec::Create(*ParseFormat("tq4", kDim)));
  std::vector<int64_t> labels(3, 7);
  std::vector<float> dist(3);
  ASSERT_OK(Search(*empty, q, {.k = 3}, nullptr, labels.data(), dist.data()));
  EXPECT_EQ(labels, std::vector<int64_t>(3, -1));
}

TEST(SearchTest, TiesGoToTheLowerLabel) {
  std::vector<float> x = Gaussian(40 * kDim, 7);
  for (int copy : {3, 17, 33}) std::copy(x.begin(), x.begin() + kDim, x.begin() + copy * kDim);
  auto blocks = Blocks(x);
  std::vector<int64_t> labels(4);
  std::vector<float> dist(4);
  ASSERT_OK(Search(*blocks, absl::MakeConstSpan(x.data(), kDim), {.k = 4}, nullptr, labels.data(),
                   dist.data()));
  EXPECT_EQ(labels, (std::vector<int64_t>{0, 3, 17, 33}));
  EXPECT_EQ(dist[0], dist[3]);
}

TEST(SearchTest, GivenIdsAreReportedAndBreakTies) {
  std::vector<float> x = Gaussian(40 * kDim, 7);
  for (int copy : {3, 17, 33}) std::copy(x.begin(), x.begin() + kDim, x.begin() + copy * kDim);
  std::vector<int64_t> ids(40);
  for (int i = 0; i < 40; ++i) ids[i] = 1000 - 10 * i;  // descending: ties flip order
  auto blocks = Blocks(x);
  for (int oversample : {0, 2}) {
    std::vector<int64_t> labels(4);
    std::vector<float> dist(4);
    SearchOptions o{.k = 4, .oversample = oversample};
    o.ids = ids.data();
    ASSERT_OK(Search(*blocks, absl::MakeConstSpan(x.data(), kDim), o, x.data(), labels.data(),
                     dist.data()));
    EXPECT_EQ(labels, (std::vector<int64_t>{670, 830, 970, 1000}));  // ids of 33, 17, 3, 0
  }
}

TEST(SearchTest, CosineIgnoresQueryScale) {
  const std::vector<float> x = Gaussian(200 * kDim, 8);
  std::vector<float> q = Gaussian(kDim, 9), q3(q);
  for (float& v : q3) v *= 3.0f;
  auto blocks = Blocks(x);
  std::vector<int64_t> a(10), b(10);
  std::vector<float> da(10), db(10);
  ASSERT_OK(Search(*blocks, q, {.k = 10, .metric = Metric::kCosine}, nullptr, a.data(), da.data()));
  ASSERT_OK(Search(*blocks, q3, {.k = 10, .metric = Metric::kCosine}, nullptr, b.data(), db.data()));
  EXPECT_EQ(a, b);
}

TEST(SearchTest, BadInputIsInvalidArgumentAndWritesNothing) {
  const std::vector<float> x = Gaussian(50 * kDim, 10);
  auto blocks = Blocks(x);
  std::vector<float> q = Gaussian(kDim, 11);
  std::vector<int64_t> labels(10, 42);
  std::vector<float> dist(10, 42.0f);
  auto bad = [&](absl::Span<const float> queries, SearchOptions o, const float* raw) {
    EXPECT_STATUS_CODE(Search(*blocks, queries, o, raw, labels.data(), dist.data()),
                       absl::StatusCode::kInvalidArgument);
  };
  bad(q, {.k = 0}, nullptr);
  bad(q, {.k = -3}, nullptr);
  bad({}, {.k = 5}, nullptr);
  bad(absl::MakeConstSpan(q.data(), kDim - 1), {.k = 5}, nullptr);  // dimension mismatch
  bad(q, {.k = 5, .oversample = 2}, nullptr);                        // rerank without raw
  bad(q, {.k = 5, .oversample = -1}, x.data());
  std::vector<float> nan_q = q;
  nan_q[5] = std::nanf("");
  bad(nan_q, {.k = 5}, nullptr);
  EXPECT_EQ(labels, std::vector<int64_t>(10, 42));
  EXPECT_EQ(dist, std::vector<float>(10, 42.0f));
}

}  // namespace
}  // namespace tqdb::index
