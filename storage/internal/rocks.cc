#include "storage/internal/rocks.h"

#include <mutex>
#include <shared_mutex>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "rocksdb/cache.h"
#include "rocksdb/env.h"
#include "rocksdb/table.h"
#include "storage/disk_format.h"
#include "storage/internal/crc32c.h"

namespace tqdb::storage::internal {

absl::Status FromRocks(const rocksdb::Status& status, std::string_view context) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(std::string(context), ": ", status.ToString());
  if (status.IsCorruption()) return absl::DataLossError(message);
  if (status.IsNotFound()) return absl::NotFoundError(message);
  if (status.IsBusy() || status.IsTryAgain() || status.IsTimedOut()) {
    return absl::UnavailableError(message);
  }
  if (status.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  if (status.IsIOError() && status.ToString().find("lock") != std::string::npos) {
    return absl::FailedPreconditionError(
        absl::StrCat(message, " (the data directory is already open, in this or another process)"));
  }
  if (status.IsNoSpace()) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

namespace {

class AppendOperator final : public rocksdb::MergeOperator {
 public:
  const char* Name() const override { return kAppendOperatorName; }

  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    size_t bytes = in.existing_value ? in.existing_value->size() : 0;
    for (const rocksdb::Slice& op : in.operand_list) bytes += op.size();
    out->new_value.clear();
    out->new_value.reserve(bytes);
    if (in.existing_value) out->new_value.append(in.existing_value->data(), in.existing_value->size());
    for (const rocksdb::Slice& op : in.operand_list) out->new_value.append(op.data(), op.size());
    return true;
  }

  bool PartialMergeMulti(const rocksdb::Slice&, const std::deque<rocksdb::Slice>& operands,
                         std::string* new_value, rocksdb::Logger*) const override {
    new_value->clear();
    for (const rocksdb::Slice& op : operands) new_value->append(op.data(), op.size());
    return true;
  }
};

}  // namespace

std::shared_ptr<rocksdb::MergeOperator> NewAppendOperator() {
  return std::make_shared<AppendOperator>();
}

void MemoryLru::Touch(uintptr_t key, size_t bytes, Evict evict) {
  std::vector<Evict> victims;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    if (auto it = where_.find(key); it != where_.end()) {
      total_ -= it->second->bytes;
      order_.erase(it->second);
    }
    order_.push_front(Entry{key, bytes, std::move(evict)});
    where_[key] = order_.begin();
    total_ += bytes;
    while (budget_ > 0 && total_ > budget_ && order_.size() > 1) {
      Entry& coldest = order_.back();
      total_ -= coldest.bytes;
      where_.erase(coldest.key);
      victims.push_back(std::move(coldest.evict));
      order_.pop_back();
    }
  }
  for (Evict& victim : victims) victim();
}

void MemoryLru::Forget(uintptr_t key) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (auto it = where_.find(key); it != where_.end()) {
    total_ -= it->second->bytes;
    order_.erase(it->second);
    where_.erase(it);
  }
}

size_t MemoryLru::bytes() const {
  std::unique_lock<std::shared_mutex> lock(mu_);
  return total_;
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(const StoreOptions& options,
                                                     const std::string& dir) {
  std::unique_ptr<Engine> engine(new Engine(options));
  const int threads = options.query_threads > 0
                          ? options.query_threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  engine->pool_ = std::make_unique<ThreadPool>(threads - 1);
  rocksdb::DBOptions& db = engine->db_options_;
  db.create_if_missing = options.create_if_missing;
  db.create_missing_column_families = false;
  db.db_write_buffer_size = options.total_write_buffer_bytes;
  db.max_background_jobs = 2;
  db.paranoid_checks = true;
  // Codes are written once and read back in bulk: keep open every SST.
  db.max_open_files = -1;
  // A KV collection has a family per layer and head (256 for a 32 × 8
  // model): opening must not read every table's properties.
  db.skip_stats_update_on_db_open = true;
  db.skip_checking_sst_file_sizes_on_db_open = true;
  // RocksDB opens each family's tables with up to this many new threads; at
  // 16 (the default) × 258 families, thread creation was most of the open.
  db.max_file_opening_threads = 1;
  // Concurrent appends: the next write group's WAL record is written while
  // this group inserts into the memtables (a 32 x 8 token is a 35 KB record,
  // and the WAL's CRC32C is the software one in Debian's build). Measured
  // with 8 writers, periodic sync: 4,761-5,452 against 3,528-5,067 tokens/s,
  // and the idle share of the two cores fell from 28 % to 22 %.
  db.enable_pipelined_write = true;

  rocksdb::ColumnFamilyOptions& cf = engine->family_options_;
  // Codes are near-uniform random bytes after the rotation: block compression
  // would cost CPU on every read and save next to nothing.
  cf.compression = rocksdb::kNoCompression;
  cf.bottommost_compression = rocksdb::kNoCompression;
  cf.merge_operator = NewAppendOperator();
  cf.write_buffer_size = options.write_buffer_bytes;
  cf.level_compaction_dynamic_level_bytes = true;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.block_size = 16 << 10;  // a 64-token K4V4 page of d = 128 is 8.7 KiB
  table.format_version = 5;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  // Every family that exists must be opened.
  std::vector<std::string> names;
  rocksdb::Status listed = rocksdb::DB::ListColumnFamilies(db, dir, &names);
  if (!listed.ok()) names = {rocksdb::kDefaultColumnFamilyName};  // a new store
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) descriptors.emplace_back(name, engine->OptionsFor(name));
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status opened = rocksdb::DB::Open(db, dir, descriptors, &handles, &raw);
  if (!opened.ok()) return FromRocks(opened, absl::StrCat("opening ", dir));
  engine->db_.reset(raw);
  // In the store's LOG, for whoever reads an append profile: whether the WAL's
  // checksums run on the crc32 instruction (internal/crc32c.h).
  rocksdb::Log(rocksdb::InfoLogLevel::INFO_LEVEL, raw->GetOptions().info_log,
               "tqdb: WAL CRC32C %s", HardwareCrc32cInUse() ? "in hardware (SSE4.2)"
                                                            : "by librocksdb's own code");
  {
    std::unique_lock<std::shared_mutex> lock(engine->families_mu_);
    for (rocksdb::ColumnFamilyHandle* h : handles) {
      if (h->GetName() == rocksdb::kDefaultColumnFamilyName) {
        delete h;  // the DB keeps its own default handle
        continue;
      }
      engine->families_[h->GetName()] = h;
    }
  }
  if (options.sync == SyncPolicy::kPeriodic) {
    engine->sync_thread_ = std::thread([e = engine.get()] { e->SyncLoop(); });
  }
  return engine;
}

Engine::~Engine() {
  if (sync_thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(sync_mu_);
      stopping_ = true;
    }
    sync_cv_.notify_all();
    sync_thread_.join();
  }
  if (db_ == nullptr) return;
  std::unique_lock<std::shared_mutex> lock(families_mu_);
  for (auto& [name, handle] : families_) db_->DestroyColumnFamilyHandle(handle);
  families_.clear();
  db_->Close();
}

void Engine::SyncLoop() {
  std::unique_lock<std::mutex> lock(sync_mu_);
  while (!stopping_) {
    sync_cv_.wait_for(lock, options_.sync_interval);
    if (stopping_) break;
    lock.unlock();
    db_->SyncWAL();  // a failure shows up again on the next write or sync
    lock.lock();
  }
}

absl::Status Engine::Write(rocksdb::WriteBatch* batch, std::string_view context, bool sync) {
  rocksdb::WriteOptions write;
  write.sync = sync && options_.sync == SyncPolicy::kEveryWrite;
  return FromRocks(db_->Write(write, batch), context);
}

absl::Status Engine::SyncWal() { return FromRocks(db_->SyncWAL(), "syncing the WAL"); }

rocksdb::ColumnFamilyHandle* Engine::Family(const std::string& name) {
  std::unique_lock<std::shared_mutex> lock(families_mu_);
  auto it = families_.find(name);
  return it == families_.end() ? nullptr : it->second;
}

absl::StatusOr<rocksdb::ColumnFamilyHandle*> Engine::CreateFamily(const std::string& name) {
  std::unique_lock<std::shared_mutex> lock(families_mu_);
  if (auto it = families_.find(name); it != families_.end()) return it->second;
  rocksdb::ColumnFamilyHandle* handle = nullptr;
  rocksdb::Status s = db_->CreateColumnFamily(OptionsFor(name), name, &handle);
  if (!s.ok()) return FromRocks(s, absl::StrCat("creating column family ", name));
  families_[name] = handle;
  return handle;
}

rocksdb::ColumnFamilyOptions Engine::OptionsFor(const std::string& name) const {
  rocksdb::ColumnFamilyOptions options = family_options_;
  // A KV tail takes every appended token of every layer and head, and most of
  // it is range-deleted again within a page: a memtable holding many pages
  // lets flushes drop it instead of writing it out.
  if (name.size() >= 5 && name.compare(name.size() - 5, 5, "/tail") == 0) {
    options.write_buffer_size = 8 * options_.write_buffer_bytes;
    // Appends stop while a family waits on flushes of max_write_buffer_number
    // full memtables; the tail takes every append, so it gets more room.
    options.max_write_buffer_number = 4;
  }
  return options;
}

absl::Status Engine::CreateFamilies(const std::vector<std::string>& names) {
  std::unique_lock<std::shared_mutex> lock(families_mu_);
  std::vector<std::string> missing;
  for (const std::string& name : names) {
    if (!families_.count(name)) missing.push_back(name);
  }
  if (missing.empty()) return absl::OkStatus();
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : missing) descriptors.emplace_back(name, OptionsFor(name));
  rocksdb::Status s = db_->CreateColumnFamilies(descriptors, &handles);
  for (rocksdb::ColumnFamilyHandle* h : handles) families_[h->GetName()] = h;
  return FromRocks(s, absl::StrCat("creating ", missing.size(), " column families"));
}

std::vector<rocksdb::ColumnFamilyHandle*> Engine::AllFamilies() {
  std::unique_lock<std::shared_mutex> lock(families_mu_);
  std::vector<rocksdb::ColumnFamilyHandle*> out = {db_->DefaultColumnFamily()};
  for (const auto& [name, handle] : families_) out.push_back(handle);
  return out;
}

uint64_t Engine::SstBytes(const std::vector<rocksdb::ColumnFamilyHandle*>& families) {
  uint64_t bytes = 0;
  for (rocksdb::ColumnFamilyHandle* h : families) {
    uint64_t sst = 0;
    if (h != nullptr) db_->GetIntProperty(h, rocksdb::DB::Properties::kLiveSstFilesSize, &sst);
    bytes += sst;
  }
  return bytes;
}

absl::Status Engine::DropFamily(const std::string& name) {
  std::unique_lock<std::shared_mutex> lock(families_mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return absl::OkStatus();
  rocksdb::Status s = db_->DropColumnFamily(it->second);
  if (!s.ok()) return FromRocks(s, absl::StrCat("dropping column family ", name));
  db_->DestroyColumnFamilyHandle(it->second);
  families_.erase(it);
  return absl::OkStatus();
}

}  // namespace tqdb::storage::internal
