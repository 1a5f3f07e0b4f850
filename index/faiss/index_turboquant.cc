#include "index/faiss/index_turboquant.h"

#include <type_traits>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "faiss/impl/FaissAssert.h"
#include "index/scan/searcher.h"

namespace tqdb::index {
namespace {

// The one place a tqdb status becomes a FAISS exception.
void ThrowIfError(const absl::Status& s) {
  if (!s.ok()) FAISS_THROW_MSG(std::string(s.message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<IndexTurboQuant>> IndexTurboQuant::Create(
    int d, const std::string& format, faiss::MetricType metric) {
  if (metric != faiss::METRIC_INNER_PRODUCT && metric != faiss::METRIC_L2) {
    return absl::InvalidArgumentError(
        absl::StrCat("IndexTurboQuant supports inner product and L2, got metric ", metric));
  }
  TQDB_ASSIGN_OR_RETURN(Format f, ParseFormat(format, d));
  TQDB_ASSIGN_OR_RETURN(std::shared_ptr<const Codec> codec, Codec::Create(f));
  TQDB_ASSIGN_OR_RETURN(std::unique_ptr<CodeBlocks> blocks, CodeBlocks::Create(codec));
  return std::unique_ptr<IndexTurboQuant>(
      new IndexTurboQuant(d, metric, std::move(codec), std::move(blocks)));
}

IndexTurboQuant::IndexTurboQuant(int d, faiss::MetricType metric,
                                 std::shared_ptr<const Codec> codec,
                                 std::unique_ptr<CodeBlocks> blocks)
    : faiss::Index(d, metric), codec_(std::move(codec)), blocks_(std::move(blocks)) {
  is_trained = true;
}

void IndexTurboQuant::add(idx_t n, const float* x) {
  FAISS_THROW_IF_NOT_MSG(n >= 0, "add: n < 0");
  ThrowIfError(blocks_->Append(x, static_cast<size_t>(n)));
  ntotal = static_cast<idx_t>(blocks_->size());
}

void IndexTurboQuant::search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                             const faiss::SearchParameters* params) const {
  FAISS_THROW_IF_NOT_MSG(params == nullptr, "IndexTurboQuant takes no search parameters");
  FAISS_THROW_IF_NOT_MSG(n >= 0, "search: n < 0");
  FAISS_THROW_IF_NOT_MSG(k > 0 && k <= kMaxK, "k out of range");
  if (n == 0) return;  // as FAISS's indexes (wrappers pass empty batches through)
  SearchOptions options;
  options.k = static_cast<int>(k);
  options.metric = metric_type == faiss::METRIC_L2 ? Metric::kL2 : Metric::kInnerProduct;
  static_assert(std::is_same_v<idx_t, int64_t>);
  ThrowIfError(Search(*blocks_, absl::MakeConstSpan(x, static_cast<size_t>(n) * d), options,
                      nullptr, labels, distances));
}

void IndexTurboQuant::reset() {
  blocks_ = *CodeBlocks::Create(codec_);  // the format was accepted at Create
  ntotal = 0;
}

void IndexTurboQuant::reconstruct(idx_t key, float* recons) const {
  FAISS_THROW_IF_NOT_MSG(key >= 0 && key < ntotal, "reconstruct: key out of range");
  blocks_->codec().Decode(blocks_->Code(static_cast<size_t>(key)), 1, recons);
}

size_t IndexTurboQuant::sa_code_size() const { return blocks_->codec().code_bytes(); }

void IndexTurboQuant::sa_encode(idx_t n, const float* x, uint8_t* bytes) const {
  FAISS_THROW_IF_NOT_MSG(n >= 0, "sa_encode: n < 0");
  ThrowIfError(blocks_->codec().Encode(x, static_cast<size_t>(n), bytes));
}

void IndexTurboQuant::sa_decode(idx_t n, const uint8_t* bytes, float* x) const {
  FAISS_THROW_IF_NOT_MSG(n >= 0, "sa_decode: n < 0");
  blocks_->codec().Decode(bytes, static_cast<size_t>(n), x);
}

}  // namespace tqdb::index
