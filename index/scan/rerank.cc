// Exact rescoring with FAISS's distance kernels (the scan layer's only FAISS
// dependency; FAISS throws only on allocation failure here).
#include "faiss/utils/distances.h"
#include "index/scan/searcher.h"

namespace tqdb::index::internal {

void ExactDistances(Metric metric, const float* query, const float* raw, int dim,
                    const int64_t* ids, size_t n, float* out) {
  if (metric == Metric::kL2) {
    faiss::fvec_L2sqr_by_idx(out, query, raw, ids, dim, 1, n);
  } else {
    faiss::fvec_inner_products_by_idx(out, query, raw, ids, dim, 1, n);
  }
}

}  // namespace tqdb::index::internal
