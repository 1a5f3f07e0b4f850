// Private to storage/: what a KvCollection holds behind its handle (the
// stored sequences, their loaded scan segments, the RocksDB families) and the
// loading and bookkeeping every KV operation shares. kv_collection.cc has the
// collection's creation and its reads, kv_collection_writes.cc its writes.
//
// Locks, in order: State::mu (shared by appends and reads, exclusive for
// structural changes), then a sequence's append_mu, then its seg_mu.
#ifndef TQDB_STORAGE_INTERNAL_KV_STATE_H_
#define TQDB_STORAGE_INTERNAL_KV_STATE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "index/codec/codec.h"
#include "index/scan/attend.h"
#include "index/scan/code_blocks.h"
#include "storage/catalog.pb.h"
#include "storage/disk_format.h"
#include "storage/internal/exact_window.h"
#include "storage/internal/rocks.h"
#include "storage/kv_collection.h"

namespace tqdb::storage {
namespace internal {

// The loaded codes of one sequence: a CodeBlocks per layer and KV head.
struct Segment {
  std::vector<std::unique_ptr<index::CodeBlocks>> keys, values;  // [layer · heads + head]
  std::unique_ptr<ExactRows> exact;  // the exact window, if configured
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

inline std::string SeqName(uint64_t user_id) { return absl::StrCat("sequence ", user_id); }

// Appends the first n codes of `from` to `to` (same codec).
void CopyCodes(const index::CodeBlocks& from, uint64_t n, index::CodeBlocks* to);
// Deletes every page, tail token and window record of stored sequence `id`.
void DeleteAllTokens(const std::vector<rocksdb::ColumnFamilyHandle*>& handles,
                     rocksdb::ColumnFamilyHandle* tail, rocksdb::ColumnFamilyHandle* window,
                     uint64_t id, rocksdb::WriteBatch* batch);
// Clamps [begin, end) to [0, length).
std::pair<uint64_t, uint64_t> Clamp(uint64_t begin, uint64_t end, uint64_t length);

}  // namespace internal

using internal::Engine;
using internal::FromRocks;
using internal::Plan;
using internal::Segment;
using internal::Seq;
using internal::SeqName;

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
  std::vector<size_t> record_offset;  // of family f's record in a tail record

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
    const size_t at = out->size();
    out->resize(at + KeyBytes(layer) + ValueBytes(layer));
    uint8_t* record = reinterpret_cast<uint8_t*>(out->data() + at);
    s.keys[f]->CopyCode(t, record);
    s.values[f]->CopyCode(t, record + KeyBytes(layer));
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
      // Keys are scanned, and their codes read only to move pages and for
      // Read: rebuilt from the nibbles where the format allows. Values are
      // only decoded: no nibble layout when Attend reads their codes. Each
      // about halves the memory of a key or value.
      using Keep = index::CodeBlocks::Keep;
      const Keep key_keep = index::CodeBlocks::CanRebuildCodes(key_codecs[layer]->format())
                                ? Keep::kNibbles
                                : Keep::kBoth;
      const Keep value_keep = index::AttendReadsValueCodes(value_codecs[layer]->format())
                                  ? Keep::kCodes
                                  : Keep::kBoth;
      TQDB_ASSIGN_OR_RETURN(auto k, index::CodeBlocks::Create(key_codecs[layer], {}, key_keep));
      TQDB_ASSIGN_OR_RETURN(auto v,
                            index::CodeBlocks::Create(value_codecs[layer], {}, value_keep));
      segment->keys.push_back(std::move(k));
      segment->values.push_back(std::move(v));
    }
    return segment;
  }

  absl::Status Load(Seq* seq) ABSL_SHARED_LOCKS_REQUIRED(mu);
  // Validates a Score/Attend request; *group = query heads per KV head.
  // The live sequence a Score/Attend request names, after CheckQueries.
  absl::StatusOr<Seq*> ForQuery(uint64_t user_id, int layer, absl::Span<const float> queries,
                                float scale, size_t* group) ABSL_SHARED_LOCKS_REQUIRED(mu) {
    TQDB_ASSIGN_OR_RETURN(Seq * seq, Live(user_id));
    TQDB_RETURN_IF_ERROR(CheckQueries(layer, queries, scale, group));
    return seq;
  }
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

}  // namespace tqdb::storage

#endif  // TQDB_STORAGE_INTERNAL_KV_STATE_H_
