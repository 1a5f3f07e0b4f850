// tqdb-bench recall: recall of every tqdb format on a real vector set, with
// FAISS baselines on the same data in the same run.
//
//   tqdb-bench recall --dataset DIR [--metric ip|l2|cosine] [--formats a,b,…]
//                     [--queries Q] [--center 0|1] [--faiss 0|1]
//
// DIR is in the ../shared/data layout: base.{fvecs,bvecs,npy},
// query.{fvecs,bvecs,npy} (the first that exists, read as floats) and, when
// available, gt_<metric>.ivecs. --queries Q: the first Q queries (default
// all). One JSON line per (system, format, rerank_oversample):
//   {"suite":"recall","system":"tqdb"|"faiss","dataset":…,"metric":…,
//    "format":…,"d":…,"n":…,"nq":…,"bytes_per_vector":…,"recall_1_at_1":…,
//    "recall_10_at_10":…,"recall_1_at_10":…,"recall_100_at_100":…,
//    "queries_per_s":…,"rerank_oversample":R,"centered":0|1}
//
// Recall, in FAISS's conventions (recall_util.h), averaged over the queries:
//   recall_1_at_1      1-R@1: fraction of queries whose true nearest neighbour
//                      is ranked first.
//   recall_1_at_10     1-R@10: fraction whose true nearest neighbour is among
//                      the top 10.
//   recall_10_at_10    10-R@10: |top 10 ∩ true top 10| / 10.
//   recall_100_at_100  100-R@100: |top 100 ∩ true top 100| / 100 (null when
//                      the ground truth has fewer than 100 columns).
// "True" neighbours are those of the ground truth (exact, best first, ties as
// the exact search broke them). The first three come from a search with
// k = 10, recall_100_at_100 from a second search with k = 100.
//
// rerank_oversample R: 0 ranks by code scores alone; R ≥ 1 rescores the best
// k·R candidates by code score exactly against the raw vectors and keeps k
// (index::Search for tqdb, IndexRefineFlat with k_factor R for FAISS): 100
// candidates for the k = 10 search at R = 10, 1000 for the k = 100 one.
// queries_per_s: nq / wall time of the k = 10 search over all queries as one
// batch, one thread (FAISS's OpenMP is set to one thread), best of 3.
// bytes_per_vector: tqdb, the stored code (Codec::code_bytes: indices and
// scales); FAISS, the index's code size.
//
// Metrics and ground truth:
//   ip, l2   index::Metric kInnerProduct / kL2, FAISS METRIC_INNER_PRODUCT /
//            METRIC_L2; gt_<metric>.ivecs, or the exact top 100 by brute
//            force (FAISS IndexFlat) when the file is absent.
//   cosine   base and queries are normalized to unit length; tqdb stores the
//            normalized vectors (Metric::kCosine), FAISS indexes them with
//            METRIC_INNER_PRODUCT. Ground truth: gt_cosine.ivecs if present;
//            else gt_ip.ivecs if every base and query vector already has unit
//            norm (|‖x‖ − 1| ≤ 1e-3, so ip = cosine: minilm-fiori); else the
//            exact top 100 of the normalized vectors by brute force.
// --center 1: tqdb's CodeBlocks center on the mean of the stored base vectors
// (code_blocks.h); FAISS indexes are the same either way ("centered":0).
//
// FAISS baselines (bytes per vector at d = 128, where tq4 takes 68 bytes,
// tq2 36 and tq1 20); sub-quantizer counts that do not divide d are skipped:
//   Flat           exact search, 4d bytes: a sanity line (recall 1 up to ties)
//   SQ8, SQ4       IndexScalarQuantizer, 8 / 4 bits per coordinate: d, d/2
//                  (64 bytes ≈ tq4)
//   PQFS<M>x4      IndexPQFastScan, M 4-bit sub-quantizers, M/2 bytes:
//                  M = d (64 ≈ tq4), d/2 (32 ≈ tq2), d/4 (16 ≈ tq1)
//   PQ<M>x8        IndexPQ, M 8-bit sub-quantizers, M bytes: M = d/2 (64 ≈
//                  tq4), d/4 (32 ≈ tq2)
//   LSH<b>         IndexLSH, b = 4d bits (random rotation, trained
//                  thresholds), d/2 bytes: as many bits as tq4's indices
//   SQ4 and PQFS<d>x4 also with R = 4 and 10 (IndexRefineFlat), comparable
//   to tqdb's rerank lines.
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "bench/bench_util.h"
#include "bench/recall_util.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexFlatCodes.h"
#include "faiss/IndexLSH.h"
#include "faiss/IndexPQ.h"
#include "faiss/IndexPQFastScan.h"
#include "faiss/IndexRefine.h"
#include "faiss/IndexScalarQuantizer.h"
#include "index/codec/codec.h"
#include "index/codec/format.h"
#include "index/scan/code_blocks.h"
#include "index/scan/searcher.h"

namespace tqdb::bench {
namespace {

constexpr int kSmallK = 10;   // the search behind the @1 and @10 recalls
constexpr int kLargeK = 100;  // the search behind recall_100_at_100
constexpr int kOversamples[] = {0, 4, 10};  // rerank_oversample values; 0 first
constexpr char kDefaultFormats[] =
    "tq1,tq2,tq3,tq4,tq2.5,tq3.5,tq3p,tq4p,turbo2,turbo3,turbo4,tq4-ipc";

// Everything one run measures against, ready to search.
struct Setup {
  std::string dataset, metric;
  index::Metric tqdb_metric = index::Metric::kInnerProduct;
  faiss::MetricType faiss_metric = faiss::METRIC_INNER_PRODUCT;
  int d = 0;
  size_t n = 0, nq = 0;
  std::vector<float> base;     // n × d, as stored (normalized for cosine)
  std::vector<float> queries;  // nq × d
  std::vector<int64_t> gt;     // nq × gt_k true ids, best first
  int gt_k = 0;
  std::vector<float> center;   // empty, or d floats (tqdb only)
};

struct Recalls {
  double r1_at_1 = NAN, r10_at_10 = NAN, r1_at_10 = NAN, r100_at_100 = NAN;
};

// Recalls from the k = 10 labels (nq × 10) and, if not empty, the k = 100
// labels (nq × 100).
Recalls Score(const Setup& s, const std::vector<int64_t>& small,
              const std::vector<int64_t>& large) {
  Recalls r;
  r.r1_at_1 = NearestRecall(small.data(), kSmallK, s.gt.data(), s.gt_k, s.nq, 1);
  r.r1_at_10 = NearestRecall(small.data(), kSmallK, s.gt.data(), s.gt_k, s.nq, kSmallK);
  if (s.gt_k >= kSmallK) {
    r.r10_at_10 = IntersectionRecall(small.data(), kSmallK, s.gt.data(), s.gt_k, s.nq, kSmallK);
  }
  if (!large.empty()) {
    r.r100_at_100 = IntersectionRecall(large.data(), kLargeK, s.gt.data(), s.gt_k, s.nq, kLargeK);
  }
  return r;
}

void PrintLine(const Setup& s, const std::string& system, const std::string& format,
               double bytes_per_vector, const Recalls& r, double queries_per_s, int oversample,
               bool centered) {
  JsonLine()
      .Add("suite", "recall").Add("system", system).Add("dataset", s.dataset)
      .Add("metric", s.metric).Add("format", format).Add("d", s.d).Add("n", s.n)
      .Add("nq", s.nq).Add("bytes_per_vector", bytes_per_vector)
      .Add("recall_1_at_1", r.r1_at_1).Add("recall_10_at_10", r.r10_at_10)
      .Add("recall_1_at_10", r.r1_at_10).Add("recall_100_at_100", r.r100_at_100)
      .Add("queries_per_s", queries_per_s).Add("rerank_oversample", oversample)
      .Add("centered", centered ? 1 : 0)
      .Print();
}

void Warn(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "tqdb-bench recall: %s: %s\n", what.c_str(), status.ToString().c_str());
}

// One tqdb format: encode the base, then for each oversample a timed k = 10
// search and a k = 100 search, one line each R.
void BenchTqdb(const Setup& s, const std::string& name) {
  absl::StatusOr<index::Format> format = index::ParseFormat(name, s.d, 42);
  if (!format.ok()) return Warn(name, format.status());
  absl::StatusOr<std::shared_ptr<const index::Codec>> codec = index::Codec::Create(*format);
  if (!codec.ok()) return Warn(name, codec.status());
  absl::StatusOr<std::unique_ptr<index::CodeBlocks>> blocks =
      index::CodeBlocks::Create(*codec, s.center);
  if (!blocks.ok()) return Warn(name, blocks.status());
  constexpr size_t kAppendBatch = 65536;  // bounds Append's centered copy
  for (size_t i = 0; i < s.n; i += kAppendBatch) {
    const absl::Status appended =
        (*blocks)->Append(&s.base[i * s.d], std::min(kAppendBatch, s.n - i));
    if (!appended.ok()) return Warn(name, appended);
  }
  const auto queries = absl::MakeConstSpan(s.queries);
  for (int oversample : kOversamples) {
    const auto search = [&](int k, std::vector<int64_t>* labels) {
      labels->resize(s.nq * k);
      std::vector<float> dist(s.nq * k);
      return index::Search(**blocks, queries,
                           {.k = k, .oversample = oversample, .metric = s.tqdb_metric},
                           s.base.data(), labels->data(), dist.data());
    };
    std::vector<int64_t> small, large;
    absl::Status status;
    const double seconds = BestSeconds(3, [&] { status.Update(search(kSmallK, &small)); });
    if (s.gt_k >= kLargeK) status.Update(search(kLargeK, &large));
    if (!status.ok()) return Warn(name, status);
    PrintLine(s, "tqdb", name, static_cast<double>((*codec)->code_bytes()),
              Score(s, small, large), s.nq / seconds, oversample, !s.center.empty());
  }
}

// Bytes per vector of a FAISS index's codes; 0 if the kind is unknown.
double FaissCodeBytes(const faiss::Index& index) {
  if (const auto* flat = dynamic_cast<const faiss::IndexFlatCodes*>(&index)) {
    return static_cast<double>(flat->code_size);
  }
  if (const auto* fast = dynamic_cast<const faiss::IndexFastScan*>(&index)) {
    return static_cast<double>(fast->code_size);
  }
  return 0;
}

// One FAISS baseline: train and add the base, then lines for R = 0 and for
// each R in `refine_oversamples` (IndexRefineFlat over the same index).
// FAISS exceptions (e.g. too few training points for 8-bit PQ) become a
// warning and no lines.
void BenchFaiss(const Setup& s, const std::string& name, std::unique_ptr<faiss::Index> index,
                const std::vector<int>& refine_oversamples) {
  try {
    const auto n = static_cast<faiss::Index::idx_t>(s.n);
    const auto nq = static_cast<faiss::Index::idx_t>(s.nq);
    index->train(n, s.base.data());
    index->add(n, s.base.data());
    const double bytes = FaissCodeBytes(*index);
    const auto run = [&](faiss::Index& searched, int oversample) {
      const auto search = [&](int k, std::vector<int64_t>* labels) {
        std::vector<faiss::Index::idx_t> ids(s.nq * k);
        std::vector<float> dist(s.nq * k);
        searched.search(nq, s.queries.data(), k, dist.data(), ids.data());
        labels->assign(ids.begin(), ids.end());
      };
      std::vector<int64_t> small, large;
      const double seconds = BestSeconds(3, [&] { search(kSmallK, &small); });
      if (s.gt_k >= kLargeK) search(kLargeK, &large);
      PrintLine(s, "faiss", name, bytes, Score(s, small, large), s.nq / seconds, oversample,
                false);
    };
    run(*index, 0);
    for (int oversample : refine_oversamples) {
      faiss::IndexRefineFlat refine(index.get(), s.base.data());
      refine.k_factor = static_cast<float>(oversample);
      run(refine, oversample);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tqdb-bench recall: faiss %s: %s\n", name.c_str(), e.what());
  }
}

void RunFaissBaselines(const Setup& s) {
  const int d = s.d;
  const faiss::MetricType m = s.faiss_metric;
  const std::vector<int> refine(std::begin(kOversamples) + 1, std::end(kOversamples));  // R ≥ 1
  BenchFaiss(s, "Flat", std::make_unique<faiss::IndexFlat>(d, m), {});
  BenchFaiss(s, "SQ8",
             std::make_unique<faiss::IndexScalarQuantizer>(d, faiss::ScalarQuantizer::QT_8bit, m),
             {});
  BenchFaiss(s, "SQ4",
             std::make_unique<faiss::IndexScalarQuantizer>(d, faiss::ScalarQuantizer::QT_4bit, m),
             refine);
  for (int div : {1, 2, 4}) {
    if (d % div != 0) continue;
    const int sub = d / div;
    BenchFaiss(s, "PQFS" + std::to_string(sub) + "x4",
               std::make_unique<faiss::IndexPQFastScan>(d, sub, 4, m),
               div == 1 ? refine : std::vector<int>{});
  }
  for (int div : {2, 4}) {
    if (d % div != 0) continue;
    const int sub = d / div;
    BenchFaiss(s, "PQ" + std::to_string(sub) + "x8", std::make_unique<faiss::IndexPQ>(d, sub, 8, m),
               {});
  }
  BenchFaiss(s, "LSH" + std::to_string(4 * d),
             std::make_unique<faiss::IndexLSH>(d, 4 * d, /*rotate_data=*/true,
                                               /*train_thresholds=*/true),
             {});
}

// Largest |‖x‖ − 1| over the rows of x.
double MaxNormDeviation(const std::vector<float>& x, int d) {
  double worst = 0;
  for (size_t i = 0; i < x.size() / d; ++i) {
    double norm2 = 0;
    for (int j = 0; j < d; ++j) norm2 += double{x[i * d + j]} * x[i * d + j];
    worst = std::max(worst, std::abs(std::sqrt(norm2) - 1.0));
  }
  return worst;
}

// Scales every row of x (rows × d) to unit norm; zero rows stay zero.
void NormalizeRows(std::vector<float>* x, int d) {
  for (size_t i = 0; i < x->size() / d; ++i) {
    float* row = x->data() + i * d;
    double norm2 = 0;
    for (int j = 0; j < d; ++j) norm2 += double{row[j]} * row[j];
    if (norm2 == 0) continue;
    const double inv = 1.0 / std::sqrt(norm2);
    for (int j = 0; j < d; ++j) row[j] = static_cast<float>(row[j] * inv);
  }
}

// Loads DIR for `metric` and settles the ground truth as the header says.
absl::StatusOr<Setup> MakeSetup(const std::string& dir, const std::string& metric,
                                size_t max_queries) {
  Setup s;
  s.metric = metric;
  if (metric == "ip") {
    s.tqdb_metric = index::Metric::kInnerProduct;
    s.faiss_metric = faiss::METRIC_INNER_PRODUCT;
  } else if (metric == "l2") {
    s.tqdb_metric = index::Metric::kL2;
    s.faiss_metric = faiss::METRIC_L2;
  } else if (metric == "cosine") {
    s.tqdb_metric = index::Metric::kCosine;
    s.faiss_metric = faiss::METRIC_INNER_PRODUCT;
  } else {
    return absl::InvalidArgumentError("--metric must be ip, l2 or cosine, got " + metric);
  }
  absl::StatusOr<EvalSet> set = LoadEvalSet(dir, metric, max_queries);
  if (!set.ok()) return set.status();
  std::string gt_source = set->gt_path;
  if (metric == "cosine" && set->gt.empty()) {
    const double deviation =
        std::max(MaxNormDeviation(set->base, set->d), MaxNormDeviation(set->queries, set->d));
    if (deviation <= 1e-3) {
      absl::StatusOr<EvalSet> ip = LoadEvalSet(dir, "ip", max_queries);
      if (!ip.ok()) return ip.status();
      set->gt = std::move(ip->gt);
      set->gt_k = ip->gt_k;
      gt_source = ip->gt_path.empty() ? "" : ip->gt_path + " (unit-norm set: ip = cosine)";
    }
  }
  if (metric == "cosine") {
    NormalizeRows(&set->base, set->d);
    NormalizeRows(&set->queries, set->d);
  }
  if (set->gt.empty()) {
    set->gt = ExactTopK(set->base, set->queries, set->d, kLargeK, metric == "l2");
    set->gt_k = static_cast<int>(set->gt.size() / set->nq);
    gt_source = "brute force (exact top " + std::to_string(set->gt_k) + ")";
  }
  std::fprintf(stderr,
               "tqdb-bench recall: %s: base %s (%zu x %d), queries %s (%zu), ground truth %s\n",
               set->name.c_str(), set->base_path.c_str(), set->n, set->d,
               set->query_path.c_str(), set->nq, gt_source.c_str());
  s.dataset = set->name;
  s.d = set->d;
  s.n = set->n;
  s.nq = set->nq;
  s.base = std::move(set->base);
  s.queries = std::move(set->queries);
  s.gt = std::move(set->gt);
  s.gt_k = set->gt_k;
  return s;
}

}  // namespace

int RunRecall(int argc, char** argv) {
  const Flags flags(argc, argv);
  const std::string dir = flags.Str("dataset", "");
  if (dir.empty()) {
    std::fprintf(stderr, "tqdb-bench recall: --dataset DIR is required\n");
    return 2;
  }
  omp_set_num_threads(1);
  const long max_queries = flags.Int("queries", 0);
  absl::StatusOr<Setup> setup =
      MakeSetup(dir, flags.Str("metric", "ip"),
                max_queries > 0 ? static_cast<size_t>(max_queries) : ~size_t{0});
  if (!setup.ok()) {
    Warn(dir, setup.status());
    return 1;
  }
  if (flags.Int("center", 0) != 0) setup->center = MeanRow(setup->base, setup->d);
  std::stringstream formats(flags.Str("formats", kDefaultFormats));
  for (std::string f; std::getline(formats, f, ',');) {
    if (!f.empty()) BenchTqdb(*setup, f);
  }
  if (flags.Int("faiss", 1) != 0) RunFaissBaselines(*setup);
  return 0;
}

}  // namespace tqdb::bench
