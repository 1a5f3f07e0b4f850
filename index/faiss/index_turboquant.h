// IndexTurboQuant: tqdb's TurboQuant codes behind the faiss::Index interface,
// so FAISS users can compose them with faiss::IndexRefineFlat (exact rerank),
// faiss::IndexIDMap2 (external ids) and faiss::IndexShards.
//
// add() encodes (no training: train() is a no-op and is_trained is true);
// search() is tqdb's fast-scan top-k (searcher.h) in FAISS's conventions;
// reconstruct() decodes; sa_encode/sa_decode/sa_code_size expose the codec.
// Supported metrics: METRIC_INNER_PRODUCT and METRIC_L2.
//
// Errors follow the interface it implements: the faiss::Index methods throw
// faiss::FaissException (as FAISS's own indexes do) with tqdb's status
// message; Create reports bad parameters as absl::Status instead.
// Thread-safety: as faiss::Index — concurrent const calls (search,
// reconstruct, sa_*) are safe; add/reset need exclusive access.
#ifndef TQDB_INDEX_FAISS_INDEX_TURBOQUANT_H_
#define TQDB_INDEX_FAISS_INDEX_TURBOQUANT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "faiss/Index.h"
#include "index/scan/code_blocks.h"

namespace tqdb::index {

class IndexTurboQuant : public faiss::Index {
 public:
  // `format` in the ParseFormat grammar ("tq4", "turbo3", …) for d-dimensional
  // vectors (formats of 5–8 bits scan through exact float tables, slower:
  // scorer.h); InvalidArgument for unknown formats and unsupported metrics.
  static absl::StatusOr<std::unique_ptr<IndexTurboQuant>> Create(
      int d, const std::string& format, faiss::MetricType metric = faiss::METRIC_INNER_PRODUCT);

  void add(idx_t n, const float* x) override;
  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params = nullptr) const override;
  void reset() override;
  void reconstruct(idx_t key, float* recons) const override;
  size_t sa_code_size() const override;
  void sa_encode(idx_t n, const float* x, uint8_t* bytes) const override;
  void sa_decode(idx_t n, const uint8_t* bytes, float* x) const override;

  // The codes. reset() replaces them: references taken before it dangle.
  const CodeBlocks& blocks() const { return *blocks_; }

 private:
  IndexTurboQuant(int d, faiss::MetricType metric, std::shared_ptr<const Codec> codec,
                  std::unique_ptr<CodeBlocks> blocks);

  std::shared_ptr<const Codec> codec_;
  std::unique_ptr<CodeBlocks> blocks_;
};

}  // namespace tqdb::index

#endif  // TQDB_INDEX_FAISS_INDEX_TURBOQUANT_H_
