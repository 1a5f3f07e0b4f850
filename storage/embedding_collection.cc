#include "storage/embedding_collection.h"

#include <cmath>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "index/codec/codec.h"
#include "index/scan/code_blocks.h"
#include "index/scan/searcher.h"
#include "storage/catalog.pb.h"
#include "storage/disk_format.h"
#include "storage/dtype.h"
#include "storage/internal/rocks.h"

namespace tqdb::storage {

using internal::Engine;
using internal::FromRocks;

struct EmbeddingCollection::State {
  Engine* engine = nullptr;
  std::string name;
  EmbeddingCollectionConfig config;
  std::shared_ptr<const index::Codec> codec;
  rocksdb::ColumnFamilyHandle* codes_family = nullptr;
  rocksdb::ColumnFamilyHandle* raw_family = nullptr;  // keep_raw only

  // Serializes writers so memory applies writes in their commit order.
  std::shared_mutex write_mu;
  // Shared by reads, exclusive while a write is applied to memory.
  std::shared_mutex mu;
  absl::Status unavailable ABSL_GUARDED_BY(mu);
  // Slots: positions in `blocks`. A replaced or deleted id leaves a dead slot
  // (skipped by search) until the slots are compacted.
  std::unique_ptr<index::CodeBlocks> blocks ABSL_GUARDED_BY(mu);
  std::vector<uint64_t> slot_id ABSL_GUARDED_BY(mu);
  std::vector<uint8_t> dead ABSL_GUARDED_BY(mu);
  std::vector<float> raw ABSL_GUARDED_BY(mu);  // slots × dim, keep_raw only
  std::unordered_map<uint64_t, size_t> slot_of ABSL_GUARDED_BY(mu);
  size_t n_dead ABSL_GUARDED_BY(mu) = 0;

  size_t dim() const { return static_cast<size_t>(config.dim); }
  size_t RawBytes() const { return dim() * (config.keep_raw == RawType::kF16 ? 2 : 4); }

  void AddSlot(uint64_t id, const uint8_t* code, const float* raw_vector)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (auto it = slot_of.find(id); it != slot_of.end()) Kill(it->second);
    slot_of[id] = slot_id.size();
    slot_id.push_back(id);
    dead.push_back(0);
    blocks->AppendCodes(code, 1);
    if (raw_vector != nullptr) raw.insert(raw.end(), raw_vector, raw_vector + dim());
  }
  void Kill(size_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    dead[slot] = 1;
    ++n_dead;
  }
  // Rebuilds the slots without dead ones once they are a quarter of all.
  absl::Status MaybeCompact() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
};

namespace {

absl::Status BadId(uint64_t id) {
  return absl::InvalidArgumentError(
      absl::StrCat("id ", id, " is above the largest id ", kMaxEmbeddingId));
}

}  // namespace

absl::Status EmbeddingCollection::State::MaybeCompact() {
  if (n_dead < 1024 || 4 * n_dead < slot_id.size()) return absl::OkStatus();
  TQDB_ASSIGN_OR_RETURN(auto fresh, index::CodeBlocks::Create(codec, config.center));
  std::vector<uint64_t> ids;
  std::vector<float> fresh_raw;
  std::vector<uint8_t> codes;
  const size_t cb = codec->code_bytes();
  for (size_t slot = 0; slot < slot_id.size(); ++slot) {
    if (dead[slot]) continue;
    codes.insert(codes.end(), blocks->Code(slot), blocks->Code(slot) + cb);
    ids.push_back(slot_id[slot]);
    if (!raw.empty()) fresh_raw.insert(fresh_raw.end(), &raw[slot * dim()], &raw[(slot + 1) * dim()]);
  }
  fresh->AppendCodes(codes.data(), ids.size());
  blocks = std::move(fresh);
  raw = std::move(fresh_raw);
  slot_id = std::move(ids);
  dead.assign(slot_id.size(), 0);
  n_dead = 0;
  slot_of.clear();
  for (size_t slot = 0; slot < slot_id.size(); ++slot) slot_of[slot_id[slot]] = slot;
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<EmbeddingCollection>> EmbeddingCollection::Create(
    Engine* engine, const std::string& name, const EmbeddingCollectionConfig& config) {
  if (config.dim < 2 || config.dim > 65536) {
    return absl::InvalidArgumentError(absl::StrCat("dim must be in 2…65536, got ", config.dim));
  }
  if (config.metric != index::Metric::kInnerProduct && config.metric != index::Metric::kCosine &&
      config.metric != index::Metric::kL2) {
    return absl::InvalidArgumentError("unknown metric");
  }
  if (config.keep_raw != RawType::kNone && config.keep_raw != RawType::kF16 &&
      config.keep_raw != RawType::kF32) {
    return absl::InvalidArgumentError("unknown keep_raw type");
  }
  TQDB_ASSIGN_OR_RETURN(index::Format format,
                        index::ParseFormat(config.format, config.dim, config.seed));
  TQDB_ASSIGN_OR_RETURN(auto codec, index::Codec::Create(format));
  // Validates the format's scannability and the center.
  TQDB_RETURN_IF_ERROR(index::CodeBlocks::Create(codec, config.center).status());
  proto::Collection catalog;
  catalog.set_catalog_version(kCatalogVersion);
  catalog.set_name(name);
  proto::EmbeddingCollection* e = catalog.mutable_embedding();
  e->set_dim(config.dim);
  e->set_metric(static_cast<int>(config.metric));
  e->set_format(format.Serialize());
  e->set_format_name(config.format);
  e->set_keep_raw(static_cast<int>(config.keep_raw));
  for (float c : config.center) e->add_center(c);
  TQDB_RETURN_IF_ERROR(engine->CreateFamily(CodesColumnFamily(name)).status());
  if (config.keep_raw != RawType::kNone) {
    TQDB_RETURN_IF_ERROR(engine->CreateFamily(RawColumnFamily(name)).status());
  }
  rocksdb::WriteBatch batch;
  batch.Put(engine->catalog(), CollectionKey(name), catalog.SerializeAsString());
  TQDB_RETURN_IF_ERROR(engine->Write(&batch, absl::StrCat("creating collection '", name, "'")));
  return Load(engine, name, catalog.SerializeAsString());
}

absl::StatusOr<std::shared_ptr<EmbeddingCollection>> EmbeddingCollection::Load(
    Engine* engine, const std::string& name, std::string_view stored) {
  auto s = std::make_unique<State>();
  s->engine = engine;
  s->name = name;
  proto::Collection catalog;
  if (!catalog.ParseFromArray(stored.data(), static_cast<int>(stored.size())) ||
      !catalog.has_embedding()) {
    return absl::DataLossError(absl::StrCat("collection '", name, "': unreadable catalog entry"));
  }
  if (catalog.catalog_version() > kCatalogVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "collection '", name, "' was written by a newer tqdb (catalog version ",
        catalog.catalog_version(), " > ", kCatalogVersion, ")"));
  }
  const proto::EmbeddingCollection& e = catalog.embedding();
  EmbeddingCollectionConfig& c = s->config;
  c.dim = e.dim();
  c.metric = static_cast<index::Metric>(e.metric());
  c.format = e.format_name();
  c.keep_raw = static_cast<RawType>(e.keep_raw());
  c.center.assign(e.center().begin(), e.center().end());
  absl::StatusOr<index::Format> format = index::Format::Deserialize(e.format());
  if (!format.ok() || format->dim != c.dim) {
    return absl::DataLossError(absl::StrCat("collection '", name, "': unreadable format"));
  }
  c.seed = format->seed;
  TQDB_ASSIGN_OR_RETURN(s->codec, index::Codec::Create(*format));
  s->codes_family = engine->Family(CodesColumnFamily(name));
  if (c.keep_raw != RawType::kNone) s->raw_family = engine->Family(RawColumnFamily(name));
  if (s->codes_family == nullptr ||
      (c.keep_raw != RawType::kNone && s->raw_family == nullptr)) {
    return absl::DataLossError(absl::StrCat("collection '", name, "': missing column family"));
  }

  std::unique_lock<std::shared_mutex> lock(s->mu);
  TQDB_ASSIGN_OR_RETURN(s->blocks, index::CodeBlocks::Create(s->codec, c.center));
  rocksdb::ReadOptions read;
  read.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> codes(engine->db()->NewIterator(read, s->codes_family));
  std::unique_ptr<rocksdb::Iterator> raws;
  if (s->raw_family != nullptr) {
    raws.reset(engine->db()->NewIterator(read, s->raw_family));
    raws->SeekToFirst();
  }
  const size_t cb = s->codec->code_bytes();
  std::vector<float> raw(s->dim());
  for (codes->SeekToFirst(); codes->Valid(); codes->Next()) {
    uint64_t id;
    const rocksdb::Slice k = codes->key(), v = codes->value();
    if (!ParseIdKey(std::string_view(k.data(), k.size()), &id) || v.size() != cb) {
      return absl::DataLossError(absl::StrCat("collection '", name, "': a code of ", v.size(),
                                              " bytes, expected ", cb));
    }
    const float* raw_vector = nullptr;
    if (raws != nullptr) {
      if (!raws->Valid() || raws->key() != k || raws->value().size() != s->RawBytes()) {
        TQDB_RETURN_IF_ERROR(FromRocks(raws->status(), "reading raw vectors"));
        return absl::DataLossError(absl::StrCat("collection '", name, "': raw vector of id ", id,
                                                " is missing or has the wrong size"));
      }
      const DType dtype = c.keep_raw == RawType::kF16 ? DType::kF16 : DType::kF32;
      ToFloat(reinterpret_cast<const uint8_t*>(raws->value().data()), dtype, 0, s->dim(),
              raw.data());
      raw_vector = raw.data();
      raws->Next();
    }
    s->AddSlot(id, reinterpret_cast<const uint8_t*>(v.data()), raw_vector);
  }
  TQDB_RETURN_IF_ERROR(FromRocks(codes->status(), absl::StrCat("loading collection '", name, "'")));
  if (raws != nullptr) {
    TQDB_RETURN_IF_ERROR(FromRocks(raws->status(), "reading raw vectors"));
    if (raws->Valid()) {
      return absl::DataLossError(absl::StrCat("collection '", name, "': raw vectors without codes"));
    }
  }
  return std::shared_ptr<EmbeddingCollection>(new EmbeddingCollection(std::move(s)));
}

EmbeddingCollection::EmbeddingCollection(std::unique_ptr<State> state) : s_(std::move(state)) {}
EmbeddingCollection::~EmbeddingCollection() = default;

const std::string& EmbeddingCollection::name() const { return s_->name; }
const EmbeddingCollectionConfig& EmbeddingCollection::config() const { return s_->config; }

absl::Status EmbeddingCollection::Upsert(absl::Span<const uint64_t> ids,
                                         absl::Span<const float> vectors) {
  return Upsert(ids, DType::kF32,
                absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(vectors.data()),
                                          vectors.size() * sizeof(float)));
}

absl::Status EmbeddingCollection::Upsert(absl::Span<const uint64_t> ids, DType dtype,
                                         absl::Span<const uint8_t> vectors) {
  State& s = *s_;
  const size_t n = ids.size(), d = s.dim();
  if (vectors.size() != n * d * DTypeBytes(dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vectors hold ", vectors.size(), " bytes; expected [ids=", n, "][dim=", d,
        "] elements of ", DTypeBytes(dtype), " bytes = ", n * d * DTypeBytes(dtype)));
  }
  if (const size_t bad = FirstNonFinite(vectors.data(), dtype, n * d); bad < n * d) {
    return absl::InvalidArgumentError(
        absl::StrCat("vector ", bad / d, " coordinate ", bad % d, " is not finite"));
  }
  std::unordered_set<uint64_t> seen;
  for (uint64_t id : ids) {
    if (id > kMaxEmbeddingId) return BadId(id);
    if (!seen.insert(id).second) {
      return absl::InvalidArgumentError(absl::StrCat("id ", id, " appears twice in one upsert"));
    }
  }
  // Raw (normalized for cosine) vectors, their codes of x − μ.
  std::vector<float> x(n * d);
  ToFloat(vectors.data(), dtype, 0, n * d, x.data());
  if (s.config.metric == index::Metric::kCosine) {
    for (size_t i = 0; i < n; ++i) {
      double norm = 0;
      for (size_t j = 0; j < d; ++j) norm += double{x[i * d + j]} * x[i * d + j];
      if (norm == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("vector ", i, " (id ", ids[i], ") is zero: no cosine similarity"));
      }
      const float inv = static_cast<float>(1 / std::sqrt(norm));
      for (size_t j = 0; j < d; ++j) x[i * d + j] *= inv;
    }
  }
  std::vector<float> centered = x;
  for (size_t i = 0; i < n && !s.config.center.empty(); ++i) {
    for (size_t j = 0; j < d; ++j) centered[i * d + j] -= s.config.center[j];
  }
  const size_t cb = s.codec->code_bytes();
  std::vector<uint8_t> codes(n * cb);
  s.codec->EncodeUnchecked(centered.data(), n, codes.data());
  // The raw vectors as stored (f16 rounded once, here), and as memory holds
  // them: what disk holds.
  const DType raw_dtype = s.config.keep_raw == RawType::kF16 ? DType::kF16 : DType::kF32;
  std::vector<uint8_t> raw_bytes;
  if (s.raw_family != nullptr) {
    raw_bytes.resize(n * s.RawBytes());
    FromFloat(x.data(), n * d, raw_dtype, raw_bytes.data());
    ToFloat(raw_bytes.data(), raw_dtype, 0, n * d, x.data());
  }
  rocksdb::WriteBatch batch;
  for (size_t i = 0; i < n; ++i) {
    const std::string key = IdKey(ids[i]);
    batch.Put(s.codes_family, key,
              rocksdb::Slice(reinterpret_cast<const char*>(&codes[i * cb]), cb));
    if (s.raw_family == nullptr) continue;
    batch.Put(s.raw_family, key,
              rocksdb::Slice(reinterpret_cast<const char*>(&raw_bytes[i * s.RawBytes()]),
                             s.RawBytes()));
  }
  std::unique_lock<std::shared_mutex> write_lock(s.write_mu);
  {
    std::shared_lock<std::shared_mutex> lock(s.mu);
    TQDB_RETURN_IF_ERROR(s.unavailable);
  }
  TQDB_RETURN_IF_ERROR(s.engine->Write(&batch, absl::StrCat("upserting into '", s.name, "'")));
  std::unique_lock<std::shared_mutex> lock(s.mu);
  TQDB_RETURN_IF_ERROR(s.unavailable);
  for (size_t i = 0; i < n; ++i) {
    s.AddSlot(ids[i], &codes[i * cb], s.raw_family != nullptr ? &x[i * d] : nullptr);
  }
  return s.MaybeCompact();
}

absl::StatusOr<size_t> EmbeddingCollection::Delete(absl::Span<const uint64_t> ids) {
  State& s = *s_;
  for (uint64_t id : ids) {
    if (id > kMaxEmbeddingId) return BadId(id);
  }
  std::unique_lock<std::shared_mutex> write_lock(s.write_mu);
  rocksdb::WriteBatch batch;
  std::vector<uint64_t> present;
  {
    std::shared_lock<std::shared_mutex> lock(s.mu);
    TQDB_RETURN_IF_ERROR(s.unavailable);
    std::unordered_set<uint64_t> seen;
    for (uint64_t id : ids) {
      if (!s.slot_of.count(id) || !seen.insert(id).second) continue;
      present.push_back(id);
      batch.Delete(s.codes_family, IdKey(id));
      if (s.raw_family != nullptr) batch.Delete(s.raw_family, IdKey(id));
    }
  }
  if (present.empty()) return 0;
  TQDB_RETURN_IF_ERROR(s.engine->Write(&batch, absl::StrCat("deleting from '", s.name, "'")));
  std::unique_lock<std::shared_mutex> lock(s.mu);
  TQDB_RETURN_IF_ERROR(s.unavailable);
  for (uint64_t id : present) {
    auto it = s.slot_of.find(id);
    s.Kill(it->second);
    s.slot_of.erase(it);
  }
  TQDB_RETURN_IF_ERROR(s.MaybeCompact());
  return present.size();
}

absl::Status EmbeddingCollection::Get(absl::Span<const uint64_t> ids, std::vector<float>* vectors,
                                      std::vector<bool>* found) {
  State& s = *s_;
  const size_t d = s.dim();
  std::shared_lock<std::shared_mutex> lock(s.mu);
  TQDB_RETURN_IF_ERROR(s.unavailable);
  vectors->assign(ids.size() * d, 0.0f);
  found->assign(ids.size(), false);
  for (size_t i = 0; i < ids.size(); ++i) {
    auto it = s.slot_of.find(ids[i]);
    if (it == s.slot_of.end()) continue;
    (*found)[i] = true;
    float* out = &(*vectors)[i * d];
    if (!s.raw.empty()) {
      std::memcpy(out, &s.raw[it->second * d], d * sizeof(float));
      continue;
    }
    s.codec->Decode(s.blocks->Code(it->second), 1, out);
    for (size_t j = 0; j < s.config.center.size(); ++j) out[j] += s.config.center[j];
  }
  return absl::OkStatus();
}

absl::Status EmbeddingCollection::Search(absl::Span<const float> queries,
                                         const EmbeddingSearchOptions& options,
                                         std::vector<int64_t>* labels,
                                         std::vector<float>* distances) {
  State& s = *s_;
  if (options.oversample > 0 && s.config.keep_raw == RawType::kNone) {
    return absl::InvalidArgumentError(absl::StrCat(
        "collection '", s.name, "' keeps no raw vectors: oversample must be 0"));
  }
  if (options.k < 1 || options.k > index::kMaxK) {  // before sizing the results by k
    return absl::InvalidArgumentError(
        absl::StrCat("k must be in [1, ", index::kMaxK, "], got ", options.k));
  }
  std::shared_lock<std::shared_mutex> lock(s.mu);
  TQDB_RETURN_IF_ERROR(s.unavailable);
  index::SearchOptions o;
  o.k = options.k;
  // An empty collection has nothing to rerank (and no raw vectors).
  o.oversample = s.slot_id.empty() ? 0 : options.oversample;
  o.metric = s.config.metric;
  o.skip = s.n_dead > 0 ? s.dead.data() : nullptr;
  o.ids = reinterpret_cast<const int64_t*>(s.slot_id.data());  // ids < 2^63: ties by id
  const size_t nq = queries.size() / s.dim();
  std::vector<int64_t> ids(nq * options.k);
  std::vector<float> dist(ids.size());
  TQDB_RETURN_IF_ERROR(index::Search(*s.blocks, queries, o, s.raw.data(), ids.data(),
                                     dist.data()));
  *labels = std::move(ids);
  *distances = std::move(dist);
  return absl::OkStatus();
}

uint64_t EmbeddingCollection::Count() {
  std::shared_lock<std::shared_mutex> lock(s_->mu);
  return s_->slot_of.size();
}

absl::StatusOr<EmbeddingStats> EmbeddingCollection::Stats() {
  State& s = *s_;
  std::shared_lock<std::shared_mutex> lock(s.mu);
  TQDB_RETURN_IF_ERROR(s.unavailable);
  EmbeddingStats stats;
  stats.count = s.slot_of.size();
  stats.code_bytes = stats.count * s.codec->code_bytes();
  stats.memory_bytes = s.blocks->MemoryBytes() + s.raw.size() * sizeof(float);
  stats.disk_bytes = s.engine->SstBytes({s.codes_family, s.raw_family});
  return stats;
}

void EmbeddingCollection::Close(const absl::Status& why) {
  State& s = *s_;
  std::unique_lock<std::shared_mutex> write_lock(s.write_mu);  // no write is using the families
  std::unique_lock<std::shared_mutex> lock(s.mu);
  if (!s.unavailable.ok()) return;
  s.unavailable = why;
  s.blocks.reset();
  s.raw.clear();
  s.slot_id.clear();
  s.slot_of.clear();
  s.dead.clear();
  s.codes_family = s.raw_family = nullptr;
}

std::vector<std::string> EmbeddingCollection::FamilyNames() const {
  std::vector<std::string> names = {CodesColumnFamily(s_->name)};
  if (s_->config.keep_raw != RawType::kNone) names.push_back(RawColumnFamily(s_->name));
  return names;
}

}  // namespace tqdb::storage
