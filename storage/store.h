// Store: the embedded tqdb database over one data directory (a RocksDB
// database; disk_format.h has the layout). It holds named collections:
// KV collections (kv_collection.h) for attention caches and embedding
// collections (embedding_collection.h) for similarity search.
//
//   auto store = tqdb::storage::Store::Open({}, "/var/lib/tqdb");
//   auto kv = (*store)->CreateKvCollection("llama", {.num_layers = 32, ...});
//
// Opening a directory another Store (in this or another process) holds open
// fails with FailedPrecondition. Collection handles are shared_ptrs; after
// the Store is destroyed they return FailedPrecondition from every call.
//
// Thread-safety: every method may be called concurrently.
#ifndef TQDB_STORAGE_STORE_H_
#define TQDB_STORAGE_STORE_H_

#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/embedding_collection.h"
#include "storage/kv_collection.h"
#include "storage/options.h"

namespace tqdb::storage {

enum class CollectionKind : uint8_t { kKv = 1, kEmbedding = 2 };

struct CollectionInfo {
  std::string name;
  CollectionKind kind;
};

class Store {
 public:
  // Opens (or, with create_if_missing, creates) the store in `dir`.
  // FailedPrecondition if the directory is open elsewhere or was written by a
  // newer catalog version; DataLoss if its catalog is unreadable.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options,
                                                     const std::string& dir);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // InvalidArgument for a bad name or configuration; AlreadyExists if a
  // collection of that name exists.
  absl::StatusOr<std::shared_ptr<KvCollection>> CreateKvCollection(
      const std::string& name, const KvCollectionConfig& config);
  absl::StatusOr<std::shared_ptr<EmbeddingCollection>> CreateEmbeddingCollection(
      const std::string& name, const EmbeddingCollectionConfig& config);
  // NotFound if no collection of that name and kind exists.
  absl::StatusOr<std::shared_ptr<KvCollection>> GetKvCollection(const std::string& name);
  absl::StatusOr<std::shared_ptr<EmbeddingCollection>> GetEmbeddingCollection(
      const std::string& name);
  // Deletes a collection and all its data. NotFound if it does not exist.
  absl::Status DropCollection(const std::string& name);
  // Every collection, by name.
  std::vector<CollectionInfo> ListCollections();
  // One collection's kind; NotFound if there is none of that name.
  absl::StatusOr<CollectionInfo> GetCollectionInfo(const std::string& name);

  // Writes a consistent copy of the store into `dir`, which must not exist
  // (RocksDB checkpoint: hard links where possible). Open it like any store.
  absl::Status Checkpoint(const std::string& dir);
  // Flushes every memtable to SST files, then (compact = true) compacts every
  // family fully: for measuring bytes on disk, and after bulk deletes.
  absl::Status Flush(bool compact = false);
  // fsyncs the WAL: every write made before it (including deferred-sync
  // appends) survives a power loss.
  absl::Status Sync();

 private:
  explicit Store(std::unique_ptr<internal::Engine> engine);
  absl::Status LoadCatalog();

  std::unique_ptr<internal::Engine> engine_;
  std::shared_mutex mu_;
  std::map<std::string, std::shared_ptr<KvCollection>> kv_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<EmbeddingCollection>> embedding_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tqdb::storage

#endif  // TQDB_STORAGE_STORE_H_
