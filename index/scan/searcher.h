// Top-k search over CodeBlocks in FAISS's conventions, with optional exact
// reranking against raw vectors.
//
// Results: for each query, k labels (int64 positions in the CodeBlocks, or
// the ids SearchOptions gives them) and
// distances, best first: inner product and cosine descending, L2 (squared)
// ascending; ties broken by the lower label; when fewer than k vectors exist,
// the tail is padded with label −1 and distance lowest() (IP, cosine) or max()
// (L2), as FAISS's heaps do.
//
// Scores over codes: IP is the fast-scan estimate of ⟨q, x⟩; cosine is the IP
// of the normalised query (the caller stores normalised vectors, as FAISS
// users do); L2 is ‖q‖² + ‖x‖² − 2·⟨q, x⟩ with ‖x‖² from CodeBlocks. With a
// centered CodeBlocks, IP and cosine add ⟨q, μ⟩ back and L2 scores q − μ
// against x − μ, so distances are in the original coordinates.
// With oversample r ≥ 1 and raw vectors given, the best k·r candidates by code
// score are rescored exactly (faiss::fvec_inner_products_by_idx /
// fvec_L2sqr_by_idx) and cut to k.
//
// Thread-safety: Search is const over its inputs and may run concurrently.
#ifndef TQDB_INDEX_SCAN_SEARCHER_H_
#define TQDB_INDEX_SCAN_SEARCHER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "index/scan/code_blocks.h"

namespace tqdb::index {

enum class Metric : uint8_t { kInnerProduct = 1, kCosine = 2, kL2 = 3 };

struct SearchOptions {
  // Results per query, 1 … kMaxK. Default: 10.
  int k = 10;
  // 0: rank by code scores only. r ≥ 1: rerank the best k·r exactly against
  // `raw` (required then). Default: 0.
  int oversample = 0;
  // Default: kInnerProduct.
  Metric metric = Metric::kInnerProduct;
  // Vectors to leave out (deleted ones): nullptr, or blocks.size() flags,
  // nonzero = skip. Default: nullptr.
  const uint8_t* skip = nullptr;
  // The label reported for each vector: nullptr (its position), or
  // blocks.size() labels ≥ 0 (a store's ids); ties break by these labels.
  // Default: nullptr.
  const int64_t* ids = nullptr;
};

inline constexpr int kMaxK = 100000;

// Searches nq = queries.size() / dim queries (row-major). `raw`, when not
// null, holds blocks.size() × dim floats (row i = the vector with label i).
// labels and distances receive nq × k values.
// InvalidArgument, writing nothing, if queries is empty or not a multiple of
// dim, a query value is not finite, k or oversample is out of range, or
// oversample > 0 without raw vectors.
absl::Status Search(const CodeBlocks& blocks, absl::Span<const float> queries,
                    const SearchOptions& options, const float* raw, int64_t* labels,
                    float* distances);

namespace internal {
// Exact rescoring of `ids` (n of them) against raw vectors: inner products or
// squared L2 distances of `query` (dim floats). Lives in rerank.cc, the one
// file of the scan layer that calls FAISS.
void ExactDistances(Metric metric, const float* query, const float* raw, int dim,
                    const int64_t* ids, size_t n, float* out);
}  // namespace internal

}  // namespace tqdb::index

#endif  // TQDB_INDEX_SCAN_SEARCHER_H_
