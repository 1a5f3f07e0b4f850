// RocksDB glue private to storage/: the open database and its options, status
// conversion, the page-append merge operator, and a small LRU of loaded
// sequences' memory.
//
// Thread-safety: Engine is safe for concurrent use (RocksDB is; the LRU has
// its own mutex).
#ifndef TQDB_STORAGE_INTERNAL_ROCKS_H_
#define TQDB_STORAGE_INTERNAL_ROCKS_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rocksdb/db.h"
#include "rocksdb/merge_operator.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "storage/internal/thread_pool.h"
#include "storage/options.h"

namespace tqdb::storage::internal {

// rocksdb::Status → absl::Status, `context` prefixed to the message.
// Corruption → DataLoss; NotFound → NotFound; lock held by another process or
// handle → FailedPrecondition; Busy/TryAgain/TimedOut → Unavailable.
absl::Status FromRocks(const rocksdb::Status& status, std::string_view context);

// Concatenates operands onto the existing value (disk_format.h pages).
std::shared_ptr<rocksdb::MergeOperator> NewAppendOperator();

// Tracks bytes of loaded, evictable objects in least-recently-used order;
// Touch() past the budget calls the evict callbacks of the coldest others.
class MemoryLru {
 public:
  explicit MemoryLru(size_t budget_bytes) : budget_(budget_bytes) {}
  using Evict = std::function<void()>;
  // Records `key` as just used, holding `bytes`, then evicts the coldest
  // other entries while the total exceeds the budget (0: no budget). Evict
  // callbacks run after the entry left the LRU, without its lock held.
  // Accounting is approximate under races (an entry evicted while in use is
  // re-added by the user's next Touch); it never frees what is in use, since
  // callbacks take the owner's own locks.
  void Touch(uintptr_t key, size_t bytes, Evict evict);
  void Forget(uintptr_t key);
  size_t bytes() const;

 private:
  struct Entry {
    uintptr_t key;
    size_t bytes;
    Evict evict;
  };
  const size_t budget_;
  mutable std::shared_mutex mu_;
  std::list<Entry> order_ ABSL_GUARDED_BY(mu_);  // front = most recent
  std::unordered_map<uintptr_t, std::list<Entry>::iterator> where_ ABSL_GUARDED_BY(mu_);
  size_t total_ ABSL_GUARDED_BY(mu_) = 0;
};

// The open database, shared by the store and its collections.
class Engine {
 public:
  static absl::StatusOr<std::unique_ptr<Engine>> Open(const StoreOptions& options,
                                                      const std::string& dir);
  ~Engine();  // stops the sync thread, closes every family handle and the DB

  rocksdb::DB* db() { return db_.get(); }
  rocksdb::ColumnFamilyHandle* catalog() { return db_->DefaultColumnFamily(); }
  const StoreOptions& options() const { return options_; }
  MemoryLru& lru() { return lru_; }
  ThreadPool& pool() { return *pool_; }

  // Writes a batch with the store's sync policy; sync = false writes it to
  // the WAL without an fsync even under kEveryWrite (the caller syncs later).
  absl::Status Write(rocksdb::WriteBatch* batch, std::string_view context, bool sync = true);
  // fsyncs the WAL: every write before it is durable.
  absl::Status SyncWal();

  // The handle of an existing family (nullptr if none), and creation / drop.
  rocksdb::ColumnFamilyHandle* Family(const std::string& name);
  absl::StatusOr<rocksdb::ColumnFamilyHandle*> CreateFamily(const std::string& name);
  // Creates many at once (RocksDB rewrites its OPTIONS file once, not per
  // family); existing ones are kept.
  absl::Status CreateFamilies(const std::vector<std::string>& names);
  absl::Status DropFamily(const std::string& name);
  // The default family and every open one.
  std::vector<rocksdb::ColumnFamilyHandle*> AllFamilies();
  // Bytes of the live SST files of `families` (null entries are skipped).
  uint64_t SstBytes(const std::vector<rocksdb::ColumnFamilyHandle*>& families);

 private:
  Engine(const StoreOptions& options) : options_(options), lru_(options.memory_budget_bytes) {}
  // The options of family `name` (by its kind, disk_format.h).
  rocksdb::ColumnFamilyOptions OptionsFor(const std::string& name) const;
  void SyncLoop();

  const StoreOptions options_;
  MemoryLru lru_;
  std::unique_ptr<ThreadPool> pool_;
  rocksdb::DBOptions db_options_;
  rocksdb::ColumnFamilyOptions family_options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::shared_mutex families_mu_;
  std::unordered_map<std::string, rocksdb::ColumnFamilyHandle*> families_
      ABSL_GUARDED_BY(families_mu_);
  // kPeriodic's background WAL sync.
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  bool stopping_ = false;
  std::thread sync_thread_;
};

}  // namespace tqdb::storage::internal

#endif  // TQDB_STORAGE_INTERNAL_ROCKS_H_
