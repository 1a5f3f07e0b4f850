#include "storage/store.h"

#include <mutex>
#include <shared_mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "rocksdb/utilities/checkpoint.h"
#include "storage/catalog.pb.h"
#include "storage/disk_format.h"
#include "storage/internal/rocks.h"

namespace tqdb::storage {

using internal::FromRocks;

size_t DTypeBytes(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

Store::Store(std::unique_ptr<internal::Engine> engine) : engine_(std::move(engine)) {}

Store::~Store() {
  const absl::Status closed = absl::FailedPreconditionError("the store is closed");
  std::unique_lock<std::shared_mutex> lock(mu_);
  for (auto& [name, c] : kv_) c->Close(closed);
  for (auto& [name, c] : embedding_) c->Close(closed);
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options,
                                                   const std::string& dir) {
  TQDB_ASSIGN_OR_RETURN(std::unique_ptr<internal::Engine> engine,
                        internal::Engine::Open(options, dir));
  std::unique_ptr<Store> store(new Store(std::move(engine)));
  TQDB_RETURN_IF_ERROR(store->LoadCatalog());
  return store;
}

absl::Status Store::LoadCatalog() {
  rocksdb::DB* db = engine_->db();
  std::string version;
  rocksdb::Status got = db->Get(rocksdb::ReadOptions(), engine_->catalog(), kVersionKey, &version);
  if (got.IsNotFound()) {
    std::string v;
    AppendBigEndian32(kCatalogVersion, &v);
    rocksdb::WriteBatch batch;
    batch.Put(engine_->catalog(), kVersionKey, v);
    TQDB_RETURN_IF_ERROR(engine_->Write(&batch, "writing the catalog version"));
  } else {
    TQDB_RETURN_IF_ERROR(FromRocks(got, "reading the catalog version"));
    if (version.size() != 4) return absl::DataLossError("unreadable catalog version");
    if (ReadBigEndian32(version.data()) > kCatalogVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("the store was written by a newer tqdb (catalog version ",
                       ReadBigEndian32(version.data()), " > ", kCatalogVersion, ")"));
    }
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), engine_->catalog()));
  for (it->Seek("C"); it->Valid() && it->key().starts_with("C"); it->Next()) {
    const std::string name = it->key().ToString().substr(1);
    proto::Collection c;
    if (!c.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("collection '", name, "': unreadable catalog entry"));
    }
    const std::string stored = it->value().ToString();
    if (c.has_kv()) {
      TQDB_ASSIGN_OR_RETURN(kv_[name], KvCollection::Load(engine_.get(), name, stored));
    } else if (c.has_embedding()) {
      TQDB_ASSIGN_OR_RETURN(embedding_[name],
                            EmbeddingCollection::Load(engine_.get(), name, stored));
    } else {
      return absl::DataLossError(absl::StrCat("collection '", name, "' has an unknown kind"));
    }
  }
  TQDB_RETURN_IF_ERROR(FromRocks(it->status(), "reading the catalog"));
  // Families of a collection whose drop was interrupted: finish the drop.
  std::vector<std::string> families;
  TQDB_RETURN_IF_ERROR(FromRocks(
      rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), db->GetName(), &families),
      "listing column families"));
  for (const std::string& family : families) {
    if (family == rocksdb::kDefaultColumnFamilyName) continue;
    const std::string owner = family.substr(0, family.find('/'));
    if (!kv_.count(owner) && !embedding_.count(owner)) {
      TQDB_RETURN_IF_ERROR(engine_->DropFamily(family));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<KvCollection>> Store::CreateKvCollection(
    const std::string& name, const KvCollectionConfig& config) {
  TQDB_RETURN_IF_ERROR(ValidateCollectionName(name));
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (kv_.count(name) || embedding_.count(name)) {
    return absl::AlreadyExistsError(absl::StrCat("collection '", name, "' already exists"));
  }
  TQDB_ASSIGN_OR_RETURN(auto c, KvCollection::Create(engine_.get(), name, config));
  kv_[name] = c;
  return c;
}

absl::StatusOr<std::shared_ptr<EmbeddingCollection>> Store::CreateEmbeddingCollection(
    const std::string& name, const EmbeddingCollectionConfig& config) {
  TQDB_RETURN_IF_ERROR(ValidateCollectionName(name));
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (kv_.count(name) || embedding_.count(name)) {
    return absl::AlreadyExistsError(absl::StrCat("collection '", name, "' already exists"));
  }
  TQDB_ASSIGN_OR_RETURN(auto c, EmbeddingCollection::Create(engine_.get(), name, config));
  embedding_[name] = c;
  return c;
}

absl::StatusOr<std::shared_ptr<KvCollection>> Store::GetKvCollection(const std::string& name) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = kv_.find(name);
  if (it == kv_.end()) {
    return absl::NotFoundError(absl::StrCat("no KV collection named '", name, "'"));
  }
  return it->second;
}

absl::StatusOr<std::shared_ptr<EmbeddingCollection>> Store::GetEmbeddingCollection(
    const std::string& name) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = embedding_.find(name);
  if (it == embedding_.end()) {
    return absl::NotFoundError(absl::StrCat("no embedding collection named '", name, "'"));
  }
  return it->second;
}

absl::Status Store::DropCollection(const std::string& name) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  std::vector<std::string> families;
  const absl::Status dropped =
      absl::NotFoundError(absl::StrCat("collection '", name, "' was dropped"));
  if (auto it = kv_.find(name); it != kv_.end()) {
    families = it->second->FamilyNames();
    it->second->Close(dropped);
    kv_.erase(it);
  } else if (auto it = embedding_.find(name); it != embedding_.end()) {
    families = it->second->FamilyNames();
    it->second->Close(dropped);
    embedding_.erase(it);
  } else {
    return absl::NotFoundError(absl::StrCat("no collection named '", name, "'"));
  }
  // The catalog first: if a crash interrupts the family drops, Open finishes
  // them (families without a collection are dropped there).
  rocksdb::WriteBatch batch;
  batch.Delete(engine_->catalog(), CollectionKey(name));
  std::string end = SequenceKeyPrefix(name);
  end.back() = '\x01';
  batch.DeleteRange(engine_->catalog(), SequenceKeyPrefix(name), end);
  TQDB_RETURN_IF_ERROR(engine_->Write(&batch, absl::StrCat("dropping collection '", name, "'")));
  for (const std::string& family : families) TQDB_RETURN_IF_ERROR(engine_->DropFamily(family));
  return absl::OkStatus();
}

std::vector<CollectionInfo> Store::ListCollections() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  std::vector<CollectionInfo> out;
  for (const auto& [name, c] : kv_) out.push_back({name, CollectionKind::kKv});
  for (const auto& [name, c] : embedding_) out.push_back({name, CollectionKind::kEmbedding});
  std::sort(out.begin(), out.end(),
            [](const CollectionInfo& a, const CollectionInfo& b) { return a.name < b.name; });
  return out;
}

absl::StatusOr<CollectionInfo> Store::GetCollectionInfo(const std::string& name) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (kv_.count(name)) return CollectionInfo{name, CollectionKind::kKv};
  if (embedding_.count(name)) return CollectionInfo{name, CollectionKind::kEmbedding};
  return absl::NotFoundError(absl::StrCat("no collection named '", name, "'"));
}

absl::Status Store::Checkpoint(const std::string& dir) {
  rocksdb::Checkpoint* raw = nullptr;
  TQDB_RETURN_IF_ERROR(
      FromRocks(rocksdb::Checkpoint::Create(engine_->db(), &raw), "creating a checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  return FromRocks(checkpoint->CreateCheckpoint(dir), absl::StrCat("checkpoint to ", dir));
}

absl::Status Store::Sync() { return engine_->SyncWal(); }

absl::Status Store::Flush(bool compact) {
  std::unique_lock<std::shared_mutex> lock(mu_);  // no family is dropped meanwhile
  rocksdb::DB* db = engine_->db();
  std::vector<rocksdb::ColumnFamilyHandle*> handles = engine_->AllFamilies();
  TQDB_RETURN_IF_ERROR(FromRocks(db->Flush(rocksdb::FlushOptions(), handles), "flushing"));
  if (!compact) return absl::OkStatus();
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    TQDB_RETURN_IF_ERROR(
        FromRocks(db->CompactRange(options, h, nullptr, nullptr), "compacting"));
  }
  return absl::OkStatus();
}

}  // namespace tqdb::storage
