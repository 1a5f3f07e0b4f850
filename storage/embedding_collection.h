// EmbeddingCollection: id → vector, stored as TurboQuant codes (and
// optionally the raw vector for exact reranking), searched by top-k over the
// codes in FAISS's conventions (index/scan/searcher.h).
//
// Ids are uint64 below 2^63, so result labels are int64 with −1 padding as in
// FAISS. Cosine collections store unit vectors (Upsert normalizes) and score
// by inner product. The whole collection is kept in memory for scanning and
// rebuilt from disk on open.
//
// Durability: each Upsert/Delete is one atomic WriteBatch, acknowledged
// after the write succeeded under the store's SyncPolicy.
//
// Thread-safety: every method may be called concurrently; writes are applied
// in the order their WriteBatches commit, and reads see every write
// acknowledged before they started.
#ifndef TQDB_STORAGE_EMBEDDING_COLLECTION_H_
#define TQDB_STORAGE_EMBEDDING_COLLECTION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "storage/options.h"

namespace tqdb::storage {

namespace internal {
class Engine;
}

inline constexpr uint64_t kMaxEmbeddingId = (uint64_t{1} << 63) - 1;

struct EmbeddingSearchOptions {
  // Results per query. Default: 10.
  int k = 10;
  // Rerank the best k·oversample exactly against the raw vectors (needs
  // keep_raw); 0: code scores only. Default: 0.
  int oversample = 0;
};

struct EmbeddingStats {
  uint64_t count = 0;
  uint64_t code_bytes = 0;    // count × bytes per code
  uint64_t disk_bytes = 0;    // SST files of its families (Flush first)
  uint64_t memory_bytes = 0;  // scan segment and raw vectors in memory
};

class EmbeddingCollection {
 public:
  ~EmbeddingCollection();
  EmbeddingCollection(const EmbeddingCollection&) = delete;
  EmbeddingCollection& operator=(const EmbeddingCollection&) = delete;

  const std::string& name() const;
  const EmbeddingCollectionConfig& config() const;

  // Inserts or replaces ids.size() vectors (ids.size() · dim elements of
  // dtype, row-major). InvalidArgument, writing nothing, on a size mismatch,
  // a non-finite value, an id above kMaxEmbeddingId, an id repeated within
  // the call, or (cosine) a zero vector.
  absl::Status Upsert(absl::Span<const uint64_t> ids, absl::Span<const float> vectors);
  absl::Status Upsert(absl::Span<const uint64_t> ids, DType dtype,
                      absl::Span<const uint8_t> vectors);
  // Deletes the ids that exist; returns how many did.
  absl::StatusOr<size_t> Delete(absl::Span<const uint64_t> ids);
  // For each id: found[i], and in vectors (ids.size() · dim floats) its raw
  // vector when kept, else its decoded code (zeros when not found).
  absl::Status Get(absl::Span<const uint64_t> ids, std::vector<float>* vectors,
                   std::vector<bool>* found);
  // nq = queries.size() / dim queries; labels and distances get nq·k values
  // (index/scan/searcher.h conventions: best first, −1 padding).
  // InvalidArgument as index::Search, and for oversample > 0 without keep_raw.
  absl::Status Search(absl::Span<const float> queries, const EmbeddingSearchOptions& options,
                      std::vector<int64_t>* labels, std::vector<float>* distances);
  uint64_t Count();
  absl::StatusOr<EmbeddingStats> Stats();

 private:
  friend class Store;
  struct State;
  explicit EmbeddingCollection(std::unique_ptr<State> state);
  static absl::StatusOr<std::shared_ptr<EmbeddingCollection>> Create(
      internal::Engine* engine, const std::string& name, const EmbeddingCollectionConfig& config);
  static absl::StatusOr<std::shared_ptr<EmbeddingCollection>> Load(internal::Engine* engine,
                                                                   const std::string& name,
                                                                   std::string_view stored);
  void Close(const absl::Status& why);
  std::vector<std::string> FamilyNames() const;
  std::unique_ptr<State> s_;
};

}  // namespace tqdb::storage

#endif  // TQDB_STORAGE_EMBEDDING_COLLECTION_H_
