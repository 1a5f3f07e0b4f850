#include "storage/kv_collection.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "index/codec/codec.h"
#include "index/scan/attend.h"
#include "index/scan/code_blocks.h"
#include "index/scan/scorer.h"
#include "storage/catalog.pb.h"
#include "storage/disk_format.h"
#include "storage/internal/convert.h"
#include "storage/internal/exact_window.h"
#include "storage/internal/rocks.h"

namespace tqdb::storage {

using internal::Engine;
using internal::FromRocks;

namespace {

// The loaded codes of one sequence: a CodeBlocks per layer and KV head.
struct Segment {
  std::vector<std::unique_ptr<index::CodeBlocks>> keys, values;  // [layer · heads + head]
  std::unique_ptr<internal::ExactRows> exact;  // the exact window, if configured
  size_t MemoryBytes() const {
    size_t bytes = exact != nullptr ? exact->MemoryBytes() : 0;
    for (const auto& b : keys) bytes += b->MemoryBytes();
    for (const auto& b : values) bytes += b->MemoryBytes();
    return bytes;
  }
};

// One stored sequence, by internal id (disk_format.h).
struct Seq {
  uint64_t id = 0;
  // Changed under State::mu held exclusively, or (length only) under
  // State::mu shared + append_mu.
  proto::Sequence meta;
  std::shared_mutex append_mu;  // serializes appends (and loads) of this sequence
  std::shared_mutex seg_mu;
  std::unique_ptr<Segment> segment ABSL_GUARDED_BY(seg_mu);
  uint64_t visible_length ABSL_GUARDED_BY(seg_mu) = 0;  // tokens readers may see
};

// Pending catalog changes of one structural operation, applied to the
// in-memory sequences only after their WriteBatch succeeded.
struct Plan {
  std::map<Seq*, proto::Sequence> metas;  // new metadata
  std::vector<uint64_t> erased;           // internal ids removed

  proto::Sequence& Meta(Seq* seq) {
    auto it = metas.find(seq);
    if (it == metas.end()) it = metas.emplace(seq, seq->meta).first;
    return it->second;
  }
};

std::string SeqName(uint64_t user_id) { return absl::StrCat("sequence ", user_id); }

}  // namespace

struct KvCollection::State {
  Engine* engine = nullptr;
  std::string name;
  KvCollectionConfig config;
  proto::Collection catalog;
  int families = 0;  // num_layers · num_kv_heads
  std::vector<std::shared_ptr<const index::Codec>> key_codecs, value_codecs;  // per layer
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // per family
  rocksdb::ColumnFamilyHandle* tail = nullptr;        // newest tokens (disk_format.h)
  rocksdb::ColumnFamilyHandle* window = nullptr;      // exact window, if configured
  size_t token_code_bytes = 0;
  size_t token_memory_bytes = 0;  // a token's share of a loaded segment

  // Held shared by appends and reads, exclusively by structural changes
  // (create, fork, truncate, drop) and by Close/Drop of the collection.
  std::shared_mutex mu;
  absl::Status unavailable ABSL_GUARDED_BY(mu);  // set once closed or dropped
  std::map<uint64_t, std::shared_ptr<Seq>> by_user ABSL_GUARDED_BY(mu);  // live
  std::map<uint64_t, std::shared_ptr<Seq>> by_id ABSL_GUARDED_BY(mu);    // stored
  uint64_t next_id ABSL_GUARDED_BY(mu) = 1;

  int Family(int layer, int head) const { return layer * config.num_kv_heads + head; }
  size_t KeyBytes(int layer) const { return key_codecs[layer]->code_bytes(); }
  size_t ValueBytes(int layer) const { return value_codecs[layer]->code_bytes(); }
  size_t RecordBytes(int layer) const { return KeyBytes(layer) + ValueBytes(layer); }
  uint32_t P() const { return static_cast<uint32_t>(config.page_tokens); }

  absl::StatusOr<Seq*> Live(uint64_t user_id) ABSL_SHARED_LOCKS_REQUIRED(mu) {
    TQDB_RETURN_IF_ERROR(unavailable);
    auto it = by_user.find(user_id);
    if (it == by_user.end()) {
      return absl::NotFoundError(
          absl::StrCat(SeqName(user_id), " not found in collection '", name, "'"));
    }
    return it->second.get();
  }

  // The record bytes of token t of a loaded segment, family f.
  void AppendRecord(const Segment& s, int f, size_t t, std::string* out) const {
    const int layer = f / config.num_kv_heads;
    out->append(reinterpret_cast<const char*>(s.keys[f]->Code(t)), KeyBytes(layer));
    out->append(reinterpret_cast<const char*>(s.values[f]->Code(t)), ValueBytes(layer));
  }

  // Elements of one token's exact window record (exact_window.h).
  size_t WindowElements() const { return static_cast<size_t>(families) * 2 * config.head_dim; }

  // An empty segment; its exact window (if any) starts at window_begin.
  absl::StatusOr<std::unique_ptr<Segment>> NewSegment(uint64_t window_begin = 0) const {
    auto segment = std::make_unique<Segment>();
    if (config.exact_window > 0) {
      segment->exact =
          std::make_unique<internal::ExactRows>(families, config.head_dim, window_begin);
    }
    for (int f = 0; f < families; ++f) {
      const int layer = f / config.num_kv_heads;
      TQDB_ASSIGN_OR_RETURN(auto k, index::CodeBlocks::Create(key_codecs[layer]));
      TQDB_ASSIGN_OR_RETURN(auto v, index::CodeBlocks::Create(value_codecs[layer]));
      segment->keys.push_back(std::move(k));
      segment->values.push_back(std::move(v));
    }
    return segment;
  }

  absl::Status Load(Seq* seq) ABSL_SHARED_LOCKS_REQUIRED(mu);
  // Validates a Score/Attend request; *group = query heads per KV head.
  absl::Status CheckQueries(int layer, absl::Span<const float> queries, float scale,
                            size_t* group) const;
  // Codes being gathered for a segment, per family.
  struct Gathered {
    std::vector<std::vector<uint8_t>> keys, values;
  };
  // Appends `owner`'s tokens [from, to) from its pages (family f) or its tail
  // (all families) to `out`.
  absl::Status ReadPages(int f, const Seq& owner, uint64_t from, uint64_t to, Gathered* out)
      ABSL_SHARED_LOCKS_REQUIRED(mu);
  absl::Status ReadTail(const Seq& owner, uint64_t from, uint64_t to, Gathered* out)
      ABSL_SHARED_LOCKS_REQUIRED(mu);
  // Fills `rows` (starting at seq's window_begin) from the window family.
  absl::Status ReadWindow(const Seq& seq, internal::ExactRows* rows);
  // Appends to `out` the tail records (token_code_bytes each) of tokens
  // [from, to) of stored sequence `id`.
  absl::Status ReadTailRecords(uint64_t id, uint64_t from, uint64_t to, std::string* out);
  void Touch(Seq* seq, size_t bytes);
  // Removes a dropped sequence nobody needs, then its parent if that was the
  // last thing keeping it.
  void Collect(Seq* seq, Plan* plan, rocksdb::WriteBatch* batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Runs body(seq's segment) with the segment loaded and its lock held shared.
  template <typename Body>
  absl::Status WithSegment(Seq* seq, Body body) ABSL_SHARED_LOCKS_REQUIRED(mu);
};

// --- Loading ----------------------------------------------------------------

absl::Status KvCollection::State::ReadPages(int f, const Seq& owner, uint64_t from, uint64_t to,
                                            Gathered* out) {
  const int layer = f / config.num_kv_heads;
  const size_t kb = KeyBytes(layer), rb = RecordBytes(layer);
  const uint64_t base = owner.meta.base();
  rocksdb::ReadOptions read;
  read.verify_checksums = true;
  read.fill_cache = false;  // a bulk load would only evict hotter blocks
  const std::string upper = PageKey(owner.id + 1, 0);
  rocksdb::Slice upper_slice(upper);
  read.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(engine->db()->NewIterator(read, handles[f]));
  std::vector<uint8_t>& keys = out->keys[f];
  std::vector<uint8_t>& values = out->values[f];
  uint64_t next = from;
  for (it->Seek(PageKey(owner.id, static_cast<uint32_t>(from / P()))); it->Valid() && next < to;
       it->Next()) {
    uint64_t id;
    uint32_t page;
    const rocksdb::Slice k = it->key(), v = it->value();
    if (!ParsePageKey(std::string_view(k.data(), k.size()), &id, &page) || id != owner.id) {
      return absl::DataLossError(absl::StrCat("collection '", name, "': malformed page key"));
    }
    const uint64_t start = std::max<uint64_t>(uint64_t{page} * P(), base);
    if (v.size() % rb != 0 || v.size() / rb > P() || start > next) {
      return absl::DataLossError(absl::StrCat(
          "collection '", name, "' layer ", layer, " head ", f % config.num_kv_heads, ": page ",
          page, " of stored sequence ", owner.id, " holds ", v.size(),
          " bytes, not whole records of ", rb, " bytes from token ", next));
    }
    const uint64_t n_records = v.size() / rb;
    for (uint64_t r = 0; r < n_records && next < to; ++r) {
      const uint64_t pos = start + r;
      if (pos < next) continue;
      const char* rec = v.data() + r * rb;
      keys.insert(keys.end(), rec, rec + kb);
      values.insert(values.end(), rec + kb, rec + rb);
      ++next;
    }
  }
  TQDB_RETURN_IF_ERROR(FromRocks(it->status(), absl::StrCat("reading collection '", name, "'")));
  if (next != to) {
    return absl::DataLossError(absl::StrCat("collection '", name, "' layer ", layer, " head ",
                                            f % config.num_kv_heads, ": stored sequence ",
                                            owner.id, " should hold tokens [", from, ", ", to,
                                            ") but ends at ", next));
  }
  return absl::OkStatus();
}

absl::Status KvCollection::State::ReadTailRecords(uint64_t id, uint64_t from, uint64_t to,
                                                  std::string* out) {
  if (from >= to) return absl::OkStatus();
  rocksdb::ReadOptions read;
  read.verify_checksums = true;
  const std::string upper = TailKey(id, to);
  rocksdb::Slice upper_slice(upper);
  read.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(engine->db()->NewIterator(read, tail));
  uint64_t next = from;
  for (it->Seek(TailKey(id, from)); it->Valid(); it->Next(), ++next) {
    uint64_t key_id, pos;
    const rocksdb::Slice k = it->key();
    if (!ParseTailKey(std::string_view(k.data(), k.size()), &key_id, &pos) || key_id != id ||
        pos != next || it->value().size() != token_code_bytes) {
      return absl::DataLossError(absl::StrCat("collection '", name, "': tail of stored sequence ",
                                              id, " is damaged at token ", next));
    }
    out->append(it->value().data(), it->value().size());
  }
  TQDB_RETURN_IF_ERROR(FromRocks(it->status(), absl::StrCat("reading collection '", name, "'")));
  if (next != to) {
    return absl::DataLossError(absl::StrCat("collection '", name, "': tail of stored sequence ",
                                            id, " should hold tokens [", from, ", ", to,
                                            ") but ends at ", next));
  }
  return absl::OkStatus();
}

absl::Status KvCollection::State::ReadWindow(const Seq& seq, internal::ExactRows* rows) {
  if (rows == nullptr || seq.meta.window_begin() >= seq.meta.length()) return absl::OkStatus();
  rocksdb::ReadOptions read;
  read.verify_checksums = true;
  const std::string upper = TailKey(seq.id, seq.meta.length());
  rocksdb::Slice upper_slice(upper);
  read.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(engine->db()->NewIterator(read, window));
  std::vector<float> record(WindowElements());
  uint64_t next = seq.meta.window_begin();
  for (it->Seek(TailKey(seq.id, next)); it->Valid(); it->Next(), ++next) {
    uint64_t id, pos;
    const rocksdb::Slice k = it->key(), v = it->value();
    if (!ParseTailKey(std::string_view(k.data(), k.size()), &id, &pos) || id != seq.id ||
        pos != next ||
        !internal::DecodeWindowRecord(std::string_view(v.data(), v.size()), record.size(),
                                      config.exact_dtype, record.data())) {
      return absl::DataLossError(absl::StrCat("collection '", name, "': exact window of stored ",
                                              "sequence ", seq.id, " is damaged at token ", next));
    }
    rows->Push(record.data());
  }
  TQDB_RETURN_IF_ERROR(FromRocks(it->status(), absl::StrCat("reading collection '", name, "'")));
  if (next != seq.meta.length()) {
    return absl::DataLossError(absl::StrCat("collection '", name, "': exact window of stored ",
                                            "sequence ", seq.id, " ends at token ", next,
                                            ", not ", seq.meta.length()));
  }
  return absl::OkStatus();
}

absl::Status KvCollection::State::ReadTail(const Seq& owner, uint64_t from, uint64_t to,
                                           Gathered* out) {
  std::string records;
  TQDB_RETURN_IF_ERROR(ReadTailRecords(owner.id, from, to, &records));
  for (size_t at = 0; at < records.size();) {
    for (int f = 0; f < families; ++f) {
      const int layer = f / config.num_kv_heads;
      const uint8_t* rec = reinterpret_cast<const uint8_t*>(records.data() + at);
      out->keys[f].insert(out->keys[f].end(), rec, rec + KeyBytes(layer));
      out->values[f].insert(out->values[f].end(), rec + KeyBytes(layer), rec + RecordBytes(layer));
      at += RecordBytes(layer);
    }
  }
  return absl::OkStatus();
}

absl::Status KvCollection::State::Load(Seq* seq) {
  {
    std::shared_lock<std::shared_mutex> lock(seq->seg_mu);
    if (seq->segment != nullptr) return absl::OkStatus();
  }
  std::unique_lock<std::shared_mutex> append_lock(seq->append_mu);
  std::unique_lock<std::shared_mutex> lock(seq->seg_mu);
  if (seq->segment != nullptr) return absl::OkStatus();
  // Who stores which tokens: this sequence from its base, its parent below
  // that, and so on.
  struct Range {
    const Seq* owner;
    uint64_t from, to;
  };
  std::vector<Range> ranges;
  uint64_t upto = seq->meta.length();
  for (const Seq* cur = seq; upto > 0;) {
    const uint64_t from = std::min(cur->meta.base(), upto);
    if (from < upto) ranges.push_back({cur, from, upto});
    upto = from;
    if (upto == 0) break;
    auto parent = by_id.find(cur->meta.parent());
    if (cur->meta.parent() == 0 || parent == by_id.end()) {
      return absl::DataLossError(absl::StrCat("collection '", name, "': stored sequence ",
                                              cur->id, " lacks the parent holding its first ",
                                              upto, " tokens"));
    }
    cur = parent->second.get();
  }
  std::reverse(ranges.begin(), ranges.end());
  // Gather codes in position order: each range's paged part (families are
  // independent: read in parallel), then its tail part.
  auto parallel = [&](const std::function<absl::Status(int)>& body) {
    std::vector<absl::Status> status(families);
    engine->pool().ParallelFor(families, [&](size_t f) { status[f] = body(static_cast<int>(f)); });
    for (const absl::Status& s : status) TQDB_RETURN_IF_ERROR(s);
    return absl::OkStatus();
  };
  Gathered gathered;
  gathered.keys.resize(families);
  gathered.values.resize(families);
  for (const Range& r : ranges) {
    const uint64_t paged = std::clamp<uint64_t>(r.owner->meta.paged(), r.from, r.to);
    if (r.from < paged) {
      TQDB_RETURN_IF_ERROR(
          parallel([&](int f) { return ReadPages(f, *r.owner, r.from, paged, &gathered); }));
    }
    TQDB_RETURN_IF_ERROR(ReadTail(*r.owner, paged, r.to, &gathered));
  }
  TQDB_ASSIGN_OR_RETURN(std::unique_ptr<Segment> segment, NewSegment(seq->meta.window_begin()));
  TQDB_RETURN_IF_ERROR(ReadWindow(*seq, segment->exact.get()));
  const size_t n = seq->meta.length();
  TQDB_RETURN_IF_ERROR(parallel([&](int f) {
    segment->keys[f]->AppendCodes(gathered.keys[f].data(), n);
    segment->values[f]->AppendCodes(gathered.values[f].data(), n);
    std::vector<uint8_t>().swap(gathered.keys[f]);
    std::vector<uint8_t>().swap(gathered.values[f]);
    return absl::OkStatus();
  }));
  seq->segment = std::move(segment);
  seq->visible_length = seq->meta.length();
  return absl::OkStatus();
}

void KvCollection::State::Touch(Seq* seq, size_t bytes) {
  std::weak_ptr<Seq> weak = by_id.count(seq->id) ? by_id.at(seq->id) : nullptr;
  engine->lru().Touch(reinterpret_cast<uintptr_t>(seq), bytes, [weak] {
    if (std::shared_ptr<Seq> s = weak.lock()) {
      std::unique_lock<std::shared_mutex> lock(s->seg_mu);
      s->segment.reset();
    }
  });
}

template <typename Body>
absl::Status KvCollection::State::WithSegment(Seq* seq, Body body) {
  for (;;) {
    TQDB_RETURN_IF_ERROR(Load(seq));
    size_t bytes = 0;
    {
      std::shared_lock<std::shared_mutex> lock(seq->seg_mu);
      if (seq->segment == nullptr) continue;  // evicted between load and lock
      TQDB_RETURN_IF_ERROR(body(*seq->segment, seq->visible_length));
      bytes = seq->visible_length * token_memory_bytes;
    }
    Touch(seq, bytes);
    return absl::OkStatus();
  }
}

// --- Creation and loading of the collection ---------------------------------

namespace {

absl::Status CheckFormat(const index::Format& f, const std::string& what, bool value) {
  if (!index::ScanLayout::Create(f).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " format '", f.Name(), "' is not fast-scannable: at most 4 bits per coordinate"));
  }
  if (value && f.mode != index::QuantMode::kMse) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " format '", f.Name(), "' must be an MSE format (no QJL)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<KvCollection>> KvCollection::Create(
    Engine* engine, const std::string& name, const KvCollectionConfig& config) {
  const KvCollectionConfig& c = config;
  if (c.num_layers < 1 || c.num_layers > 1000 || c.num_kv_heads < 1 || c.num_kv_heads > 1000 ||
      c.head_dim < 2 || c.head_dim > 65536) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV shape must have 1…1000 layers, 1…1000 KV heads and head_dim 2…65536, got ",
        c.num_layers, " × ", c.num_kv_heads, " × ", c.head_dim));
  }
  if (c.boundary_layers < 0 || 2 * c.boundary_layers > c.num_layers) {
    return absl::InvalidArgumentError(absl::StrCat("boundary_layers must be in 0…",
                                                   c.num_layers / 2, ", got ", c.boundary_layers));
  }
  if (c.exact_dtype != DType::kF16 && c.exact_dtype != DType::kBF16 &&
      c.exact_dtype != DType::kF32) {
    return absl::InvalidArgumentError("exact_dtype must be f16, bf16 or f32");
  }
  if (c.page_tokens < 1 || c.page_tokens > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_tokens must be in 1…65536, got ", c.page_tokens));
  }
  proto::Collection catalog;
  catalog.set_catalog_version(kCatalogVersion);
  catalog.set_name(name);
  proto::KvCollection* kv = catalog.mutable_kv();
  kv->set_num_layers(c.num_layers);
  kv->set_num_kv_heads(c.num_kv_heads);
  kv->set_head_dim(c.head_dim);
  kv->set_page_tokens(c.page_tokens);
  kv->set_key_format_name(c.key_format);
  kv->set_value_format_name(c.value_format);
  kv->set_boundary_layers(c.boundary_layers);
  kv->set_boundary_key_format_name(c.boundary_key_format);
  kv->set_boundary_value_format_name(c.boundary_value_format);
  kv->set_exact_window(c.exact_window);
  kv->set_exact_dtype(static_cast<int>(c.exact_dtype));
  for (int layer = 0; layer < c.num_layers; ++layer) {
    const bool boundary = layer < c.boundary_layers || layer >= c.num_layers - c.boundary_layers;
    TQDB_ASSIGN_OR_RETURN(
        index::Format kf,
        index::ParseFormat(boundary ? c.boundary_key_format : c.key_format, c.head_dim, c.seed));
    TQDB_ASSIGN_OR_RETURN(
        index::Format vf, index::ParseFormat(boundary ? c.boundary_value_format : c.value_format,
                                             c.head_dim, c.seed));
    TQDB_RETURN_IF_ERROR(CheckFormat(kf, "key", false));
    TQDB_RETURN_IF_ERROR(CheckFormat(vf, "value", true));
    kv->add_key_formats(kf.Serialize());
    kv->add_value_formats(vf.Serialize());
  }
  std::vector<std::string> families;
  for (int layer = 0; layer < c.num_layers; ++layer) {
    for (int head = 0; head < c.num_kv_heads; ++head) {
      families.push_back(KvColumnFamily(name, layer, head));
    }
  }
  families.push_back(TailColumnFamily(name));
  if (c.exact_window > 0) families.push_back(WindowColumnFamily(name));
  TQDB_RETURN_IF_ERROR(engine->CreateFamilies(families));
  rocksdb::WriteBatch batch;
  batch.Put(engine->catalog(), CollectionKey(name), catalog.SerializeAsString());
  TQDB_RETURN_IF_ERROR(engine->Write(&batch, absl::StrCat("creating collection '", name, "'")));
  return Load(engine, name, catalog.SerializeAsString());
}

absl::StatusOr<std::shared_ptr<KvCollection>> KvCollection::Load(Engine* engine,
                                                                  const std::string& name,
                                                                  std::string_view stored) {
  auto s = std::make_unique<State>();
  s->engine = engine;
  s->name = name;
  if (!s->catalog.ParseFromArray(stored.data(), static_cast<int>(stored.size())) ||
      !s->catalog.has_kv()) {
    return absl::DataLossError(absl::StrCat("collection '", name, "': unreadable catalog entry"));
  }
  if (s->catalog.catalog_version() > kCatalogVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "collection '", name, "' was written by a newer tqdb (catalog version ",
        s->catalog.catalog_version(), " > ", kCatalogVersion, ")"));
  }
  const proto::KvCollection& kv = s->catalog.kv();
  KvCollectionConfig& c = s->config;
  c.num_layers = kv.num_layers();
  c.num_kv_heads = kv.num_kv_heads();
  c.head_dim = kv.head_dim();
  c.page_tokens = kv.page_tokens();
  c.key_format = kv.key_format_name();
  c.value_format = kv.value_format_name();
  c.boundary_layers = kv.boundary_layers();
  c.boundary_key_format = kv.boundary_key_format_name();
  c.boundary_value_format = kv.boundary_value_format_name();
  c.exact_window = kv.exact_window();
  c.exact_dtype = static_cast<DType>(kv.exact_dtype() == 0 ? 2 : kv.exact_dtype());
  if (c.num_layers < 1 || c.num_kv_heads < 1 || c.page_tokens < 1 ||
      kv.key_formats_size() != c.num_layers || kv.value_formats_size() != c.num_layers) {
    return absl::DataLossError(absl::StrCat("collection '", name, "': inconsistent catalog entry"));
  }
  s->families = c.num_layers * c.num_kv_heads;
  {
    absl::StatusOr<index::Format> f = index::Format::Deserialize(kv.key_formats(0));
    if (f.ok()) c.seed = f->seed;  // every layer's formats share the seed
  }
  for (int layer = 0; layer < c.num_layers; ++layer) {
    for (const auto* list : {&kv.key_formats(), &kv.value_formats()}) {
      absl::StatusOr<index::Format> f = index::Format::Deserialize((*list)[layer]);
      if (!f.ok()) {
        return absl::DataLossError(absl::StrCat("collection '", name, "' layer ", layer, ": ",
                                                f.status().message()));
      }
      TQDB_ASSIGN_OR_RETURN(auto codec, index::Codec::Create(*f));
      (list == &kv.key_formats() ? s->key_codecs : s->value_codecs).push_back(std::move(codec));
    }
    s->token_code_bytes += c.num_kv_heads * s->RecordBytes(layer);
    // Per vector in CodeBlocks: nibble pairs, weights, code bytes, norm.
    for (const auto& codec : {s->key_codecs.back(), s->value_codecs.back()}) {
      const index::Format& f = codec->format();
      const size_t weights = f.NumScales() + (f.mode == index::QuantMode::kProd ? 1 : 0);
      const size_t nibble_bytes = (f.dim * std::max(f.bits, 1) + 7) / 8 + f.QjlRows() / 8 + 1;
      s->token_memory_bytes += c.num_kv_heads * (nibble_bytes + 4 * weights + codec->code_bytes() + 4);
    }
  }
  for (int layer = 0; layer < c.num_layers; ++layer) {
    for (int head = 0; head < c.num_kv_heads; ++head) {
      const std::string family = KvColumnFamily(name, layer, head);
      rocksdb::ColumnFamilyHandle* handle = engine->Family(family);
      if (handle == nullptr) {
        return absl::DataLossError(absl::StrCat("collection '", name,
                                                "': missing column family ", family));
      }
      s->handles.push_back(handle);
    }
  }
  s->tail = engine->Family(TailColumnFamily(name));
  if (c.exact_window > 0) s->window = engine->Family(WindowColumnFamily(name));
  if (s->tail == nullptr || (c.exact_window > 0 && s->window == nullptr)) {
    return absl::DataLossError(
        absl::StrCat("collection '", name, "': missing its tail or window column family"));
  }
  // Sequences.
  std::unique_lock<std::shared_mutex> lock(s->mu);
  const std::string prefix = SequenceKeyPrefix(name);
  std::unique_ptr<rocksdb::Iterator> it(
      engine->db()->NewIterator(rocksdb::ReadOptions(), engine->catalog()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto seq = std::make_shared<Seq>();
    const rocksdb::Slice k = it->key(), v = it->value();
    if (!ParseSequenceKey(name, std::string_view(k.data(), k.size()), &seq->id) ||
        !seq->meta.ParseFromArray(v.data(), static_cast<int>(v.size())) ||
        seq->meta.base() > seq->meta.paged() || seq->meta.paged() > seq->meta.length() ||
        seq->meta.window_begin() > seq->meta.length()) {
      return absl::DataLossError(absl::StrCat("collection '", name, "': unreadable sequence entry"));
    }
    {
      std::unique_lock<std::shared_mutex> seg_lock(seq->seg_mu);
      seq->visible_length = seq->meta.length();
    }
    s->next_id = std::max(s->next_id, seq->id + 1);
    if (!seq->meta.dropped()) s->by_user[seq->meta.user_id()] = seq;
    s->by_id[seq->id] = std::move(seq);
  }
  TQDB_RETURN_IF_ERROR(FromRocks(it->status(), absl::StrCat("loading collection '", name, "'")));
  return std::shared_ptr<KvCollection>(new KvCollection(std::move(s)));
}

KvCollection::KvCollection(std::unique_ptr<State> state) : s_(std::move(state)) {}
KvCollection::~KvCollection() = default;

const std::string& KvCollection::name() const { return s_->name; }
const KvCollectionConfig& KvCollection::config() const { return s_->config; }
size_t KvCollection::token_code_bytes() const { return s_->token_code_bytes; }

}  // namespace tqdb::storage

namespace tqdb::storage {

KvTokens FloatTokens(size_t n_tokens, absl::Span<const float> keys,
                     absl::Span<const float> values) {
  KvTokens t;
  t.n_tokens = n_tokens;
  t.dtype = DType::kF32;
  t.keys = absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(keys.data()),
                                     keys.size() * sizeof(float));
  t.values = absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(values.data()),
                                       values.size() * sizeof(float));
  return t;
}

// --- Writes -----------------------------------------------------------------

absl::Status KvCollection::CreateSequence(uint64_t seq) {
  State& s = *s_;
  std::unique_lock<std::shared_mutex> lock(s.mu);
  TQDB_RETURN_IF_ERROR(s.unavailable);
  if (s.by_user.count(seq)) {
    return absl::AlreadyExistsError(
        absl::StrCat(SeqName(seq), " already exists in collection '", s.name, "'"));
  }
  auto created = std::make_shared<Seq>();
  created->id = s.next_id;
  created->meta.set_user_id(seq);
  rocksdb::WriteBatch batch;
  batch.Put(s.engine->catalog(), SequenceKey(s.name, created->id),
            created->meta.SerializeAsString());
  TQDB_RETURN_IF_ERROR(s.engine->Write(&batch, absl::StrCat("creating ", SeqName(seq))));
  {
    std::unique_lock<std::shared_mutex> seg_lock(created->seg_mu);
    TQDB_ASSIGN_OR_RETURN(created->segment, s.NewSegment());
  }
  ++s.next_id;
  s.by_user[seq] = created;
  s.by_id[created->id] = created;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> KvCollection::Append(uint64_t seq_id, const KvTokens& tokens) {
  State& s = *s_;
  const KvCollectionConfig& c = s.config;
  std::shared_lock<std::shared_mutex> lock(s.mu);
  TQDB_ASSIGN_OR_RETURN(Seq * seq, s.Live(seq_id));
  const size_t n = tokens.n_tokens, d = c.head_dim;
  if (n == 0) return absl::InvalidArgumentError("append of 0 tokens");
  const size_t elements = static_cast<size_t>(s.families) * n * d;
  const size_t expected = elements * DTypeBytes(tokens.dtype);
  for (const auto* span : {&tokens.keys, &tokens.values}) {
    if (span->size() != expected) {
      return absl::InvalidArgumentError(absl::StrCat(
          span == &tokens.keys ? "keys" : "values", " hold ", span->size(),
          " bytes; expected [layers=", c.num_layers, "][kv_heads=", c.num_kv_heads,
          "][tokens=", n, "][head_dim=", d, "] elements of ", DTypeBytes(tokens.dtype),
          " bytes = ", expected));
    }
    const size_t bad = internal::FirstNonFinite(span->data(), tokens.dtype, elements);
    if (bad < elements) {
      const size_t per_layer = c.num_kv_heads * n * d;
      return absl::InvalidArgumentError(absl::StrCat(
          span == &tokens.keys ? "key" : "value", " of layer ", bad / per_layer, " head ",
          bad % per_layer / (n * d), " token ", bad % (n * d) / d, " coordinate ", bad % d,
          " is not finite"));
    }
  }
  // Encode every family's tokens.
  std::vector<std::vector<uint8_t>> key_codes(s.families), value_codes(s.families);
  std::vector<float> x(n * d);
  for (int f = 0; f < s.families; ++f) {
    const int layer = f / c.num_kv_heads;
    key_codes[f].resize(n * s.KeyBytes(layer));
    value_codes[f].resize(n * s.ValueBytes(layer));
    internal::ToFloat(tokens.keys.data(), tokens.dtype, f * n * d, n * d, x.data());
    s.key_codecs[layer]->EncodeUnchecked(x.data(), n, key_codes[f].data());
    internal::ToFloat(tokens.values.data(), tokens.dtype, f * n * d, n * d, x.data());
    s.value_codecs[layer]->EncodeUnchecked(x.data(), n, value_codes[f].data());
  }

  std::unique_lock<std::shared_mutex> append_lock(seq->append_mu);
  const uint64_t begin = seq->meta.length();
  if (begin + n > (uint64_t{1} << 32) * s.P() - 1) {
    return absl::OutOfRangeError(absl::StrCat(SeqName(seq_id), " would exceed its page range"));
  }
  // Tokens [paged, B) belong in pages once page boundary B is reached: those
  // already in the tail and the new ones below B move there in this batch;
  // new tokens from B on go to the tail, one key per token.
  const uint64_t end = begin + n, paged = seq->meta.paged();
  const uint64_t boundary = std::max(paged, end / s.P() * s.P());
  // Reserve what the batch will hold (its buffer would otherwise grow by
  // doubling, copying the records each time): the new tokens, and the moved
  // ones twice (their merges, and nothing else; deletes are one range each).
  const size_t moving = boundary - paged;
  rocksdb::WriteBatch batch((n + moving) * (s.token_code_bytes + 64) + 4096);
  // The tail tokens that move, [paged, moved_end): from the loaded segment
  // (held shared while the batch is built) or else read back from the tail.
  const uint64_t moved_end = std::min(begin, boundary);
  seq->seg_mu.lock_shared();
  const Segment* loaded = seq->segment.get();
  if (loaded == nullptr) seq->seg_mu.unlock_shared();
  std::string moved;  // their tail records, when not loaded
  if (paged < moved_end) {
    if (loaded == nullptr) {
      TQDB_RETURN_IF_ERROR(s.ReadTailRecords(seq->id, paged, moved_end, &moved));
    }
    batch.DeleteRange(s.tail, TailKey(seq->id, paged), TailKey(seq->id, moved_end));
  }
  std::vector<size_t> record_offset(s.families + 1, 0);  // of family f in a tail record
  for (int f = 0; f < s.families; ++f) {
    record_offset[f + 1] = record_offset[f] + s.RecordBytes(f / c.num_kv_heads);
  }
  // Appends token t's record of family f to *out.
  auto record = [&](int f, uint64_t t, std::string* out) {
    if (t < begin && loaded != nullptr) {
      s.AppendRecord(*loaded, f, t, out);
      return;
    }
    if (t < begin) {
      out->append(moved, (t - paged) * s.token_code_bytes + record_offset[f],
                  record_offset[f + 1] - record_offset[f]);
      return;
    }
    const size_t i = t - begin, kb = s.KeyBytes(f / c.num_kv_heads);
    const size_t vb = s.ValueBytes(f / c.num_kv_heads);
    out->append(reinterpret_cast<const char*>(&key_codes[f][i * kb]), kb);
    out->append(reinterpret_cast<const char*>(&value_codes[f][i * vb]), vb);
  };
  std::string bytes_out;
  for (int f = 0; f < s.families && paged < boundary; ++f) {
    for (uint64_t t = paged; t < boundary;) {
      const uint64_t page = t / s.P(), page_end = std::min(boundary, (page + 1) * s.P());
      bytes_out.clear();
      for (; t < page_end; ++t) record(f, t, &bytes_out);
      batch.Merge(s.handles[f], PageKey(seq->id, static_cast<uint32_t>(page)), bytes_out);
    }
  }
  for (uint64_t t = std::max(begin, boundary); t < end; ++t) {
    bytes_out.clear();
    for (int f = 0; f < s.families; ++f) record(f, t, &bytes_out);
    batch.Put(s.tail, TailKey(seq->id, t), bytes_out);
  }
  if (loaded != nullptr) seq->seg_mu.unlock_shared();
  // The exact window slides to the last exact_window tokens: the new ones
  // that stay in it are written, those that left are range-deleted.
  const uint64_t W = c.exact_window;
  const uint64_t window_begin =
      W == 0 ? end : std::max(seq->meta.window_begin(), end > W ? end - W : 0);
  std::vector<float> window_records;  // of tokens [max(begin, window_begin), end)
  if (W > 0) {
    if (window_begin > seq->meta.window_begin()) {
      batch.DeleteRange(s.window, TailKey(seq->id, seq->meta.window_begin()),
                        TailKey(seq->id, window_begin));
    }
    const size_t elements = s.WindowElements();
    for (uint64_t t = std::max(begin, window_begin); t < end; ++t) {
      const size_t i = t - begin, at = window_records.size();
      window_records.resize(at + elements);
      for (int f = 0; f < s.families; ++f) {
        float* k = &window_records[at + 2 * f * d];
        internal::ToFloat(tokens.keys.data(), tokens.dtype, (f * n + i) * d, d, k);
        internal::ToFloat(tokens.values.data(), tokens.dtype, (f * n + i) * d, d, k + d);
      }
      const std::string stored =
          internal::EncodeWindowRecord(&window_records[at], elements, c.exact_dtype);
      batch.Put(s.window, TailKey(seq->id, t), stored);
      // Memory holds what disk holds.
      internal::DecodeWindowRecord(stored, elements, c.exact_dtype, &window_records[at]);
    }
  }
  proto::Sequence meta = seq->meta;
  meta.set_length(end);
  meta.set_paged(boundary);
  meta.set_window_begin(window_begin);
  batch.Put(s.engine->catalog(), SequenceKey(s.name, seq->id), meta.SerializeAsString());
  TQDB_RETURN_IF_ERROR(s.engine->Write(&batch, absl::StrCat("appending to ", SeqName(seq_id))));
  seq->meta = std::move(meta);
  bool in_memory;
  {
    std::unique_lock<std::shared_mutex> seg_lock(seq->seg_mu);
    in_memory = seq->segment != nullptr;
    if (in_memory) {
      for (int f = 0; f < s.families; ++f) {
        seq->segment->keys[f]->AppendCodes(key_codes[f].data(), n);
        seq->segment->values[f]->AppendCodes(value_codes[f].data(), n);
      }
      if (internal::ExactRows* exact = seq->segment->exact.get()) {
        exact->DropBefore(window_begin);
        for (size_t at = 0; at < window_records.size(); at += s.WindowElements()) {
          exact->Push(&window_records[at]);
        }
      }
    }
    seq->visible_length = end;
  }
  // The LRU weight, estimated per token: exact sizes would walk every
  // CodeBlocks' chunks on every append.
  if (in_memory) s.Touch(seq, end * s.token_memory_bytes);
  return end;
}

namespace {

// Appends the first n codes of `from` to `to` (same codec).
void CopyCodes(const index::CodeBlocks& from, uint64_t n, index::CodeBlocks* to) {
  const size_t cb = from.codec().code_bytes();
  std::vector<uint8_t> codes(n * cb);
  for (uint64_t t = 0; t < n; ++t) std::memcpy(&codes[t * cb], from.Code(t), cb);
  to->AppendCodes(codes.data(), n);
}

// Deletes every page and tail token of stored sequence `id`.
void DeleteAllTokens(const std::vector<rocksdb::ColumnFamilyHandle*>& handles,
                     rocksdb::ColumnFamilyHandle* tail, rocksdb::ColumnFamilyHandle* window,
                     uint64_t id, rocksdb::WriteBatch* batch) {
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    batch->DeleteRange(h, PageKey(id, 0), PageKey(id + 1, 0));
  }
  for (rocksdb::ColumnFamilyHandle* h : {tail, window}) {
    if (h != nullptr) batch->DeleteRange(h, TailKey(id, 0), TailKey(id + 1, 0));
  }
}

}  // namespace

absl::Status KvCollection::DropSequence(uint64_t seq_id) {
  State& s = *s_;
  std::unique_lock<std::shared_mutex> lock(s.mu);
  TQDB_ASSIGN_OR_RETURN(Seq * seq, s.Live(seq_id));
  Plan plan;
  rocksdb::WriteBatch batch;
  plan.Meta(seq).set_dropped(true);
  if (seq->meta.children() > 0) {
    batch.Put(s.engine->catalog(), SequenceKey(s.name, seq->id),
              plan.Meta(seq).SerializeAsString());
  } else {
    s.Collect(seq, &plan, &batch);
  }
  TQDB_RETURN_IF_ERROR(s.engine->Write(&batch, absl::StrCat("dropping ", SeqName(seq_id))));
  s.by_user.erase(seq_id);
  for (auto& [target, meta] : plan.metas) target->meta = meta;
  {
    std::unique_lock<std::shared_mutex> seg_lock(seq->seg_mu);
    seq->segment.reset();
  }
  s.engine->lru().Forget(reinterpret_cast<uintptr_t>(seq));
  for (uint64_t id : plan.erased) s.by_id.erase(id);
  return absl::OkStatus();
}

void KvCollection::State::Collect(Seq* seq, Plan* plan, rocksdb::WriteBatch* batch) {
  batch->Delete(engine->catalog(), SequenceKey(name, seq->id));
  DeleteAllTokens(handles, tail, window, seq->id, batch);
  plan->erased.push_back(seq->id);
  const uint64_t parent_id = plan->Meta(seq).parent();
  if (parent_id == 0) return;
  Seq* parent = by_id.at(parent_id).get();
  proto::Sequence& pm = plan->Meta(parent);
  pm.set_children(pm.children() - 1);
  if (pm.dropped() && pm.children() == 0) {
    Collect(parent, plan, batch);
  } else {
    batch->Put(engine->catalog(), SequenceKey(name, parent->id), pm.SerializeAsString());
  }
}

absl::Status KvCollection::Fork(uint64_t src, uint64_t dst, uint64_t length) {
  State& s = *s_;
  std::unique_lock<std::shared_mutex> lock(s.mu);
  TQDB_ASSIGN_OR_RETURN(Seq * from, s.Live(src));
  if (s.by_user.count(dst)) {
    return absl::AlreadyExistsError(
        absl::StrCat(SeqName(dst), " already exists in collection '", s.name, "'"));
  }
  if (length == kToEnd) length = from->meta.length();
  if (length > from->meta.length()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot fork ", length, " tokens of ",
                                                   SeqName(src), ", which holds ",
                                                   from->meta.length()));
  }
  auto created = std::make_shared<Seq>();
  created->id = s.next_id;
  created->meta.set_user_id(dst);
  created->meta.set_length(length);
  created->meta.set_base(length);
  created->meta.set_paged(length);
  created->meta.set_window_begin(length);  // a fork's window starts empty
  Plan plan;
  rocksdb::WriteBatch batch;
  if (length > 0) {
    created->meta.set_parent(from->id);
    proto::Sequence& fm = plan.Meta(from);
    fm.set_children(fm.children() + 1);
    batch.Put(s.engine->catalog(), SequenceKey(s.name, from->id), fm.SerializeAsString());
  }
  batch.Put(s.engine->catalog(), SequenceKey(s.name, created->id),
            created->meta.SerializeAsString());
  TQDB_RETURN_IF_ERROR(s.engine->Write(&batch, absl::StrCat("forking ", SeqName(src))));
  for (auto& [target, meta] : plan.metas) target->meta = meta;
  {
    // Share the source's loaded codes when it has them; else load lazily.
    std::shared_lock<std::shared_mutex> src_lock(from->seg_mu);
    std::unique_lock<std::shared_mutex> seg_lock(created->seg_mu);
    created->visible_length = length;
    if (from->segment != nullptr) {
      TQDB_ASSIGN_OR_RETURN(created->segment, s.NewSegment(length));
      for (int f = 0; f < s.families; ++f) {
        CopyCodes(*from->segment->keys[f], length, created->segment->keys[f].get());
        CopyCodes(*from->segment->values[f], length, created->segment->values[f].get());
      }
    }
  }
  ++s.next_id;
  s.by_user[dst] = created;
  s.by_id[created->id] = created;
  return absl::OkStatus();
}

absl::Status KvCollection::Truncate(uint64_t seq_id, uint64_t length) {
  State& s = *s_;
  std::unique_lock<std::shared_mutex> lock(s.mu);
  TQDB_ASSIGN_OR_RETURN(Seq * seq, s.Live(seq_id));
  if (length > seq->meta.length()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot truncate ", SeqName(seq_id), " to ",
                                                   length, " tokens: it holds ",
                                                   seq->meta.length()));
  }
  if (length == seq->meta.length()) return absl::OkStatus();
  const uint32_t P = s.P();
  Plan plan;
  rocksdb::WriteBatch batch;
  std::string page;
  // Forks that read this sequence's tokens [length, base) get their own copy
  // first: their view must not change.
  for (auto& [id, child] : s.by_id) {
    if (child->meta.parent() != seq->id || child->meta.base() <= length) continue;
    TQDB_RETURN_IF_ERROR(s.Load(child.get()));
    std::shared_lock<std::shared_mutex> child_lock(child->seg_mu);
    const Segment& cs = *child->segment;
    // Its pages then hold [length, paged): rewrite those from length to the
    // page holding its old base (its tail is unchanged).
    const uint64_t old_base = child->meta.base(), child_paged = child->meta.paged();
    for (int f = 0; f < s.families; ++f) {
      for (uint64_t p = length / P; p * P < old_base; ++p) {
        page.clear();
        for (uint64_t t = std::max(p * P, length); t < std::min((p + 1) * P, child_paged); ++t) {
          s.AppendRecord(cs, f, t, &page);
        }
        batch.Put(s.handles[f], PageKey(child->id, static_cast<uint32_t>(p)), page);
      }
    }
    proto::Sequence& cm = plan.Meta(child.get());
    cm.set_base(length);
    cm.set_parent(length == 0 ? 0 : seq->id);
    batch.Put(s.engine->catalog(), SequenceKey(s.name, child->id), cm.SerializeAsString());
    if (length == 0) {
      proto::Sequence& sm = plan.Meta(seq);
      sm.set_children(sm.children() - 1);
    }
  }
  proto::Sequence& sm = plan.Meta(seq);
  if (length <= sm.base()) {
    // Nothing of its own remains: it is a prefix of its parent (or empty).
    DeleteAllTokens(s.handles, s.tail, s.window, seq->id, &batch);
    sm.set_base(length);
    sm.set_paged(length);
    if (length == 0 && sm.parent() != 0) {
      Seq* parent = s.by_id.at(sm.parent()).get();
      sm.set_parent(0);
      proto::Sequence& pm = plan.Meta(parent);
      pm.set_children(pm.children() - 1);
      if (pm.dropped() && pm.children() == 0) {
        s.Collect(parent, &plan, &batch);
      } else {
        batch.Put(s.engine->catalog(), SequenceKey(s.name, parent->id), pm.SerializeAsString());
      }
    }
  } else if (length >= sm.paged()) {
    // Only tail tokens go.
    batch.DeleteRange(s.tail, TailKey(seq->id, length), TailKey(seq->id + 1, 0));
  } else {
    // The cut page keeps its first tokens; later pages and the tail go.
    TQDB_RETURN_IF_ERROR(s.Load(seq));
    std::shared_lock<std::shared_mutex> seq_lock(seq->seg_mu);
    const uint64_t first = std::max<uint64_t>(length / P * P, sm.base());
    uint64_t delete_from = length / P;
    if (first < length) {
      for (int f = 0; f < s.families; ++f) {
        page.clear();
        for (uint64_t t = first; t < length; ++t) s.AppendRecord(*seq->segment, f, t, &page);
        batch.Put(s.handles[f], PageKey(seq->id, static_cast<uint32_t>(length / P)), page);
      }
      ++delete_from;
    }
    for (rocksdb::ColumnFamilyHandle* h : s.handles) {
      batch.DeleteRange(h, PageKey(seq->id, static_cast<uint32_t>(delete_from)),
                        PageKey(seq->id + 1, 0));
    }
    batch.DeleteRange(s.tail, TailKey(seq->id, 0), TailKey(seq->id + 1, 0));
    sm.set_paged(length);
  }
  if (s.window != nullptr) {  // a no-op after DeleteAllTokens
    batch.DeleteRange(s.window, TailKey(seq->id, length), TailKey(seq->id + 1, 0));
  }
  sm.set_window_begin(std::min<uint64_t>(sm.window_begin(), length));
  sm.set_length(length);
  batch.Put(s.engine->catalog(), SequenceKey(s.name, seq->id), sm.SerializeAsString());
  TQDB_RETURN_IF_ERROR(s.engine->Write(&batch, absl::StrCat("truncating ", SeqName(seq_id))));
  for (auto& [target, meta] : plan.metas) target->meta = meta;
  for (uint64_t id : plan.erased) s.by_id.erase(id);
  std::unique_lock<std::shared_mutex> seg_lock(seq->seg_mu);
  if (seq->segment != nullptr) {
    for (int f = 0; f < s.families; ++f) {
      seq->segment->keys[f]->Truncate(length);
      seq->segment->values[f]->Truncate(length);
    }
    if (seq->segment->exact != nullptr) seq->segment->exact->TruncateTo(length);
  }
  seq->visible_length = length;
  return absl::OkStatus();
}

// --- Reads ------------------------------------------------------------------

namespace {

// Clamps [begin, end) to [0, length).
std::pair<uint64_t, uint64_t> Clamp(uint64_t begin, uint64_t end, uint64_t length) {
  end = std::min(end, length);
  return {std::min(begin, end), end};
}

}  // namespace

absl::Status KvCollection::State::CheckQueries(int layer, absl::Span<const float> queries,
                                               float scale, size_t* group) const {
  if (layer < 0 || layer >= config.num_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer ", layer, " is out of range [0, ", config.num_layers, ")"));
  }
  const size_t d = config.head_dim, heads = config.num_kv_heads;
  if (queries.empty() || queries.size() % (d * heads) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queries hold ", queries.size(), " floats; expected [query_heads][head_dim=", d,
        "] with query_heads a positive multiple of num_kv_heads=", heads));
  }
  for (size_t i = 0; i < queries.size(); ++i) {
    if (!std::isfinite(queries[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("query head ", i / d, " coordinate ", i % d, " is not finite"));
    }
  }
  if (!std::isfinite(scale)) return absl::InvalidArgumentError("scale is not finite");
  *group = queries.size() / (d * heads);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<float>> KvCollection::Score(uint64_t seq_id, int layer,
                                                       absl::Span<const float> queries,
                                                       const KvScoreOptions& options) {
  State& s = *s_;
  std::shared_lock<std::shared_mutex> lock(s.mu);
  TQDB_ASSIGN_OR_RETURN(Seq * seq, s.Live(seq_id));
  size_t group;
  TQDB_RETURN_IF_ERROR(s.CheckQueries(layer, queries, options.scale, &group));
  const size_t d = s.config.head_dim, heads = s.config.num_kv_heads;
  std::vector<float> out;
  TQDB_RETURN_IF_ERROR(s.WithSegment(seq, [&](const Segment& segment, uint64_t length) {
    const auto [begin, end] = Clamp(options.begin, options.end, length);
    const size_t n = end - begin;
    out.assign(heads * group * n, 0.0f);
    if (n == 0) return absl::OkStatus();
    const size_t b0 = begin / 32, b1 = (end + 31) / 32, stride = (b1 - b0) * 32;
    std::vector<absl::Status> status(heads);
    s.engine->pool().ParallelFor(heads, [&](size_t h) {
      if (options.cancelled && options.cancelled()) {
        status[h] = absl::CancelledError("Score cancelled");
        return;
      }
      std::vector<index::PreparedQuery> prepared(group);
      std::vector<float> scores(group * stride);
      const index::CodeBlocks& keys = *segment.keys[s.Family(layer, static_cast<int>(h))];
      for (size_t g = 0; g < group; ++g) {
        index::PrepareQuery(keys.codec(), keys.layout(), &queries[(h * group + g) * d],
                            &prepared[g]);
      }
      index::ScoreBlocks(keys, prepared.data(), static_cast<int>(group), b0, b1, scores.data(),
                         stride);
      const int f = s.Family(layer, static_cast<int>(h));
      const internal::ExactRows* exact = segment.exact.get();
      const uint64_t exact_from = exact != nullptr ? std::max(begin, exact->begin()) : end;
      for (size_t g = 0; g < group; ++g) {
        const float* row = &scores[g * stride + (begin - b0 * 32)];
        const float* q = &queries[(h * group + g) * d];
        float* dst = &out[(h * group + g) * n];
        for (size_t t = 0; t < n; ++t) dst[t] = options.scale * row[t];
        // Tokens in the exact window: their exact logits replace the codes'.
        for (uint64_t t = exact_from; t < end; ++t) {
          const float* k = exact->Keys(f, t);
          float dot = 0.0f;
          for (size_t j = 0; j < d; ++j) dot += q[j] * k[j];
          dst[t - begin] = options.scale * dot;
        }
      }
    });
    for (const absl::Status& st : status) TQDB_RETURN_IF_ERROR(st);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<float>> KvCollection::Attend(uint64_t seq_id, int layer,
                                                        absl::Span<const float> queries,
                                                        const KvAttendOptions& options) {
  State& s = *s_;
  std::shared_lock<std::shared_mutex> lock(s.mu);
  TQDB_ASSIGN_OR_RETURN(Seq * seq, s.Live(seq_id));
  size_t group;
  TQDB_RETURN_IF_ERROR(s.CheckQueries(layer, queries, options.scale, &group));
  const size_t d = s.config.head_dim, heads = s.config.num_kv_heads;
  const size_t tail_floats = heads * options.tail_tokens * d;
  if (options.tail_keys.size() != tail_floats || options.tail_values.size() != tail_floats) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the exact tail holds ", options.tail_keys.size(), " key and ",
        options.tail_values.size(), " value floats; expected [kv_heads=", heads, "][tokens=",
        options.tail_tokens, "][head_dim=", d, "] = ", tail_floats));
  }
  for (absl::Span<const float> side : {options.tail_keys, options.tail_values}) {
    for (float v : side) {
      if (!std::isfinite(v)) return absl::InvalidArgumentError("the exact tail is not finite");
    }
  }
  std::vector<float> out(queries.size());
  TQDB_RETURN_IF_ERROR(s.WithSegment(seq, [&](const Segment& segment, uint64_t length) {
    const auto [begin, end] = Clamp(options.begin, options.end, length);
    if (begin == end && options.tail_tokens == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "attention over no token: ", SeqName(seq_id), " holds ", length,
          " tokens, range [", options.begin, ", ", options.end, ")"));
    }
    // Codes for [begin, exact_from), the exact window's rows after it, in
    // one softmax (index::Attend's exact tail).
    const internal::ExactRows* exact = segment.exact.get();
    const uint64_t exact_from =
        exact != nullptr ? std::min(end, std::max(begin, exact->begin())) : end;
    index::AttendOptions attend;
    attend.scale = options.scale;
    attend.begin = begin;
    attend.end = exact_from;
    std::vector<absl::Status> status(heads);
    s.engine->pool().ParallelFor(heads, [&](size_t h) {
      if (options.cancelled && options.cancelled()) {
        status[h] = absl::CancelledError("Attend cancelled");
        return;
      }
      const int f = s.Family(layer, static_cast<int>(h));
      index::ExactTail tail;
      if (exact_from < end) {
        tail.keys = exact->Keys(f, exact_from);
        tail.values = exact->Values(f, exact_from);
        tail.n = end - exact_from;
      }
      std::vector<float> joined_keys, joined_values;  // window rows, then the caller's
      if (options.tail_tokens > 0) {
        const size_t extra = options.tail_tokens * d;
        for (auto [rows, given, joined] :
             {std::tuple{tail.keys, options.tail_keys.data(), &joined_keys},
              std::tuple{tail.values, options.tail_values.data(), &joined_values}}) {
          joined->reserve(tail.n * d + extra);
          if (tail.n > 0) joined->assign(rows, rows + tail.n * d);
          joined->insert(joined->end(), given + h * extra, given + (h + 1) * extra);
        }
        tail = {joined_keys.data(), joined_values.data(), tail.n + options.tail_tokens};
      }
      status[h] = index::Attend(*segment.keys[f], *segment.values[f],
                                queries.subspan(h * group * d, group * d), attend, tail,
                                &out[h * group * d]);
    });
    for (const absl::Status& st : status) TQDB_RETURN_IF_ERROR(st);
    return absl::OkStatus();
  }));
  return out;
}

absl::Status KvCollection::Read(uint64_t seq_id, uint64_t begin, uint64_t end,
                                std::vector<float>* keys, std::vector<float>* values) {
  State& s = *s_;
  std::shared_lock<std::shared_mutex> lock(s.mu);
  TQDB_ASSIGN_OR_RETURN(Seq * seq, s.Live(seq_id));
  const size_t d = s.config.head_dim;
  return s.WithSegment(seq, [&](const Segment& segment, uint64_t length) {
    if (begin > end || end > length) {
      return absl::InvalidArgumentError(absl::StrCat("read range [", begin, ", ", end,
                                                     ") is not within the ", length,
                                                     " tokens of ", SeqName(seq_id)));
    }
    const size_t n = end - begin;
    keys->resize(s.families * n * d);
    values->resize(s.families * n * d);
    const internal::ExactRows* exact = segment.exact.get();
    for (int f = 0; f < s.families; ++f) {
      for (size_t t = 0; t < n; ++t) {
        float* k_out = &(*keys)[(f * n + t) * d];
        float* v_out = &(*values)[(f * n + t) * d];
        if (exact != nullptr && begin + t >= exact->begin()) {  // what is stored exactly
          std::copy_n(exact->Keys(f, begin + t), d, k_out);
          std::copy_n(exact->Values(f, begin + t), d, v_out);
          continue;
        }
        const index::CodeBlocks& k = *segment.keys[f];
        const index::CodeBlocks& v = *segment.values[f];
        k.codec().Decode(k.Code(begin + t), 1, k_out);
        v.codec().Decode(v.Code(begin + t), 1, v_out);
      }
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<uint64_t> KvCollection::Length(uint64_t seq_id) {
  State& s = *s_;
  std::shared_lock<std::shared_mutex> lock(s.mu);
  TQDB_ASSIGN_OR_RETURN(Seq * seq, s.Live(seq_id));
  std::shared_lock<std::shared_mutex> seg_lock(seq->seg_mu);
  return seq->visible_length;
}

std::vector<uint64_t> KvCollection::Sequences() {
  State& s = *s_;
  std::shared_lock<std::shared_mutex> lock(s.mu);
  std::vector<uint64_t> ids;
  if (!s.unavailable.ok()) return ids;
  for (const auto& [id, seq] : s.by_user) ids.push_back(id);
  return ids;
}

absl::StatusOr<KvStats> KvCollection::Stats() {
  State& s = *s_;
  std::shared_lock<std::shared_mutex> lock(s.mu);
  TQDB_RETURN_IF_ERROR(s.unavailable);
  KvStats stats;
  stats.sequences = s.by_user.size();
  for (const auto& [id, seq] : s.by_id) {
    std::shared_lock<std::shared_mutex> seg_lock(seq->seg_mu);
    if (!seq->meta.dropped()) stats.tokens += seq->visible_length;
    stats.stored_tokens += seq->visible_length - std::min(seq->visible_length, seq->meta.base());
    if (seq->segment != nullptr) stats.memory_bytes += seq->segment->MemoryBytes();
  }
  stats.code_bytes = stats.stored_tokens * s.token_code_bytes;
  for (rocksdb::ColumnFamilyHandle* h : s.handles) {
    uint64_t sst = 0;
    s.engine->db()->GetIntProperty(h, rocksdb::DB::Properties::kLiveSstFilesSize, &sst);
    stats.disk_bytes += sst;
  }
  const double fp16 = 2.0 * 2.0 * s.config.head_dim * s.families * stats.stored_tokens;
  stats.compression_vs_fp16 = stats.disk_bytes > 0 ? fp16 / stats.disk_bytes : 0.0;
  return stats;
}

// --- Lifecycle --------------------------------------------------------------

void KvCollection::Close(const absl::Status& why) {
  State& s = *s_;
  std::unique_lock<std::shared_mutex> lock(s.mu);
  if (!s.unavailable.ok()) return;
  s.unavailable = why;
  for (auto& [id, seq] : s.by_id) {
    s.engine->lru().Forget(reinterpret_cast<uintptr_t>(seq.get()));
    std::unique_lock<std::shared_mutex> seg_lock(seq->seg_mu);
    seq->segment.reset();
  }
  s.by_user.clear();
  s.by_id.clear();
  s.handles.clear();
  s.tail = s.window = nullptr;
}

std::vector<std::string> KvCollection::FamilyNames() const {
  std::vector<std::string> names;
  for (int layer = 0; layer < s_->config.num_layers; ++layer) {
    for (int head = 0; head < s_->config.num_kv_heads; ++head) {
      names.push_back(KvColumnFamily(s_->name, layer, head));
    }
  }
  names.push_back(TailColumnFamily(s_->name));
  if (s_->config.exact_window > 0) names.push_back(WindowColumnFamily(s_->name));
  return names;
}

}  // namespace tqdb::storage
