#include "storage/internal/kv_state.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>

namespace tqdb::storage {

namespace internal {

// Appends the first n codes of `from` to `to` (same codec).
void CopyCodes(const index::CodeBlocks& from, uint64_t n, index::CodeBlocks* to) {
  const size_t cb = from.codec().code_bytes();
  std::vector<uint8_t> codes(n * cb);
  for (uint64_t t = 0; t < n; ++t) from.CopyCode(t, &codes[t * cb]);
  to->AppendCodes(codes.data(), n);
}

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

std::pair<uint64_t, uint64_t> Clamp(uint64_t begin, uint64_t end, uint64_t length) {
  end = std::min(end, length);
  return {std::min(begin, end), end};
}

}  // namespace internal

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
  auto it = by_id.find(seq->id);
  std::weak_ptr<Seq> weak = it != by_id.end() ? it->second : nullptr;
  engine->lru().Touch(reinterpret_cast<uintptr_t>(seq), bytes, [weak] {
    if (std::shared_ptr<Seq> s = weak.lock()) {
      std::unique_lock<std::shared_mutex> lock(s->seg_mu);
      s->segment.reset();
    }
  });
}

void KvCollection::State::Collect(Seq* seq, Plan* plan, rocksdb::WriteBatch* batch) {
  batch->Delete(engine->catalog(), SequenceKey(name, seq->id));
  internal::DeleteAllTokens(handles, tail, window, seq->id, batch);
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

}  // namespace tqdb::storage
