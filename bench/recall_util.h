// Shared by the scan and recall suites: loading an evaluation set in the
// ../shared/data layout, exact ground truth by brute force, and recall in
// FAISS's conventions.
#ifndef TQDB_BENCH_RECALL_UTIL_H_
#define TQDB_BENCH_RECALL_UTIL_H_

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "faiss/IndexFlat.h"
#include "io/vector_file.h"

namespace tqdb::bench {

// Recall of approximate results against exact ground truth, in FAISS's
// conventions, averaged over nq queries. `found` holds nq rows of found_k
// labels, best first (−1 pads a short row); `gt` nq rows of gt_k true ids,
// best first.
//   NearestRecall       1-R@at: the fraction of queries whose true nearest
//                       neighbour gt[q][0] is among found[q][0 … at) (at = 1:
//                       ranked first).
//   IntersectionRecall  at-R@at: |found[q][0 … at) ∩ gt[q][0 … at)| / at.
// REQUIRES: 1 ≤ at ≤ found_k, gt_k ≥ 1, and for IntersectionRecall at ≤ gt_k;
// labels within a row are distinct.
inline double NearestRecall(const int64_t* found, int found_k, const int64_t* gt, int gt_k,
                            size_t nq, int at) {
  size_t hits = 0;
  for (size_t q = 0; q < nq; ++q) {
    const int64_t* f = found + q * found_k;
    hits += std::find(f, f + at, gt[q * gt_k]) != f + at;
  }
  return nq ? static_cast<double>(hits) / nq : 0.0;
}

inline double IntersectionRecall(const int64_t* found, int found_k, const int64_t* gt, int gt_k,
                                 size_t nq, int at) {
  double sum = 0;
  std::vector<int64_t> truth;
  for (size_t q = 0; q < nq; ++q) {
    truth.assign(gt + q * gt_k, gt + q * gt_k + at);
    std::sort(truth.begin(), truth.end());
    int hits = 0;
    for (const int64_t* f = found + q * found_k; f != found + q * found_k + at; ++f) {
      hits += *f >= 0 && std::binary_search(truth.begin(), truth.end(), *f);
    }
    sum += static_cast<double>(hits) / at;
  }
  return nq ? sum / nq : 0.0;
}

// A vector set in the ../shared/data layout, as read.
struct EvalSet {
  std::string name;              // the directory's last path component
  int d = 0;
  size_t n = 0, nq = 0;
  std::vector<float> base;       // n × d
  std::vector<float> queries;    // nq × d
  std::vector<int64_t> gt;       // nq × gt_k ids into base, best first; empty: no file
  int gt_k = 0;
  std::string base_path, query_path, gt_path;
};

// DIR/STEM.fvecs, .bvecs or .npy, the first that exists; NotFound naming
// the three otherwise.
inline absl::StatusOr<std::string> FindVectorFile(const std::string& dir, const std::string& stem) {
  for (const char* ext : {".fvecs", ".bvecs", ".npy"}) {
    const std::string path = dir + "/" + stem + ext;
    if (std::filesystem::exists(path)) return path;
  }
  return absl::NotFoundError("no " + dir + "/" + stem + ".{fvecs,bvecs,npy}");
}

// Loads base and the first max_queries queries (io::ReadVectors), and
// DIR/gt_<gt_metric>.ivecs when it exists (gt stays empty otherwise).
// Errors: the readers'; InvalidArgument if the dimensions differ, there are
// no base vectors or queries, or the ground truth has fewer rows than there
// are queries or an id outside [0, n).
inline absl::StatusOr<EvalSet> LoadEvalSet(std::string dir, const std::string& gt_metric,
                                           size_t max_queries) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  EvalSet set;
  set.name = std::filesystem::path(dir).filename().string();
  absl::StatusOr<std::string> base_path = FindVectorFile(dir, "base");
  if (!base_path.ok()) return base_path.status();
  absl::StatusOr<std::string> query_path = FindVectorFile(dir, "query");
  if (!query_path.ok()) return query_path.status();
  absl::StatusOr<io::VectorSet<float>> base = io::ReadVectors(*base_path);
  if (!base.ok()) return base.status();
  absl::StatusOr<io::VectorSet<float>> queries = io::ReadVectors(*query_path, max_queries);
  if (!queries.ok()) return queries.status();
  if (base->n == 0 || queries->n == 0 || base->dim != queries->dim) {
    return absl::InvalidArgumentError(
        dir + ": need base and queries of one dimension, got " + std::to_string(base->n) + " × " +
        std::to_string(base->dim) + " and " + std::to_string(queries->n) + " × " +
        std::to_string(queries->dim));
  }
  set.base_path = *base_path;
  set.query_path = *query_path;
  set.d = base->dim;
  set.n = base->n;
  set.nq = queries->n;
  set.base = std::move(base->data);
  set.queries = std::move(queries->data);
  const std::string gt_path = dir + "/gt_" + gt_metric + ".ivecs";
  if (std::filesystem::exists(gt_path)) {
    absl::StatusOr<io::VectorSet<int32_t>> gt = io::ReadIvecs(gt_path, set.nq);
    if (!gt.ok()) return gt.status();
    if (gt->n < set.nq) {
      return absl::InvalidArgumentError(gt_path + ": " + std::to_string(gt->n) + " rows for " +
                                        std::to_string(set.nq) + " queries");
    }
    for (int32_t id : gt->data) {
      if (id < 0 || static_cast<size_t>(id) >= set.n) {
        return absl::InvalidArgumentError(gt_path + ": id " + std::to_string(id) +
                                          " is not in [0, " + std::to_string(set.n) + ")");
      }
    }
    set.gt.assign(gt->data.begin(), gt->data.end());
    set.gt_k = gt->dim;
    set.gt_path = gt_path;
  }
  return set;
}

// Exact top min(k, n) ids of each query by brute force (FAISS IndexFlatIP,
// or IndexFlatL2 when `l2`), best first: nq × min(k, n) ids.
inline std::vector<int64_t> ExactTopK(const std::vector<float>& base,
                                      const std::vector<float>& queries, int d, int k, bool l2) {
  const auto n = static_cast<faiss::Index::idx_t>(base.size() / d);
  const auto nq = static_cast<faiss::Index::idx_t>(queries.size() / d);
  k = static_cast<int>(std::min<faiss::Index::idx_t>(k, n));
  faiss::IndexFlat flat(d, l2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT);
  flat.add(n, base.data());
  std::vector<float> dist(static_cast<size_t>(nq) * k);
  std::vector<faiss::Index::idx_t> ids(static_cast<size_t>(nq) * k);
  flat.search(nq, queries.data(), k, dist.data(), ids.data());
  return std::vector<int64_t>(ids.begin(), ids.end());
}

// The mean of the rows of x (rows × d floats), accumulated in double.
inline std::vector<float> MeanRow(const std::vector<float>& x, int d) {
  const size_t n = x.size() / d;
  std::vector<double> mean(d, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (int j = 0; j < d; ++j) mean[j] += x[i * d + j];
  }
  std::vector<float> out(d);
  for (int j = 0; j < d; ++j) out[j] = static_cast<float>(n ? mean[j] / n : 0.0);
  return out;
}

}  // namespace tqdb::bench

#endif  // TQDB_BENCH_RECALL_UTIL_H_
