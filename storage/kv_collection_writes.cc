// KvCollection's writes: sequences created, appended to, forked, truncated
// and dropped (the layout they write is in disk_format.h).
#include <algorithm>
#include <cstring>
#include <utility>

#include "storage/dtype.h"
#include "storage/internal/kv_state.h"
#include "storage/kv_collection.h"

namespace tqdb::storage {

using internal::CopyCodes;
using internal::DeleteAllTokens;

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

absl::StatusOr<uint64_t> KvCollection::Append(uint64_t seq_id, const KvTokens& tokens,
                                              bool defer_sync) {
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
  }
  // Encode every family's tokens into one buffer: family f's n key codes,
  // then its n value codes, from n · record_offset[f].
  std::vector<uint8_t> codes(n * s.token_code_bytes);
  auto key_codes = [&](int f) { return &codes[n * s.record_offset[f]]; };
  auto value_codes = [&](int f) { return key_codes(f) + n * s.KeyBytes(f / c.num_kv_heads); };
  // Families are independent: the query pool checks and encodes them in
  // parallel. A family with a value that is not finite is not encoded, and
  // the append fails below, before anything is written.
  const size_t family_elements = n * d, width = DTypeBytes(tokens.dtype);
  std::vector<size_t> first_bad(2 * s.families, family_elements);  // keys', then values'
  s.engine->pool().ParallelFor(s.families, [&](size_t f) {
    const int layer = static_cast<int>(f) / c.num_kv_heads;
    const size_t at = f * family_elements;
    first_bad[f] = FirstNonFinite(&tokens.keys[at * width], tokens.dtype, family_elements);
    first_bad[s.families + f] =
        FirstNonFinite(&tokens.values[at * width], tokens.dtype, family_elements);
    if (first_bad[f] < family_elements || first_bad[s.families + f] < family_elements) return;
    thread_local std::vector<float> x;  // no allocation per family and append
    x.resize(family_elements);
    ToFloat(tokens.keys.data(), tokens.dtype, at, family_elements, x.data());
    s.key_codecs[layer]->EncodeUnchecked(x.data(), n, key_codes(static_cast<int>(f)));
    ToFloat(tokens.values.data(), tokens.dtype, at, family_elements, x.data());
    s.value_codecs[layer]->EncodeUnchecked(x.data(), n, value_codes(static_cast<int>(f)));
  });
  for (size_t i = 0; i < first_bad.size(); ++i) {
    if (first_bad[i] == family_elements) continue;
    const bool key = i < static_cast<size_t>(s.families);
    const size_t f = key ? i : i - s.families, element = first_bad[i];
    return absl::InvalidArgumentError(absl::StrCat(
        key ? "key" : "value", " of layer ", f / c.num_kv_heads, " head ", f % c.num_kv_heads,
        " token ", element / d, " coordinate ", element % d, " is not finite"));
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
  // Appends token t's record of family f to *out.
  auto record = [&](int f, uint64_t t, std::string* out) {
    if (t < begin && loaded != nullptr) {
      s.AppendRecord(*loaded, f, t, out);
      return;
    }
    if (t < begin) {
      out->append(moved, (t - paged) * s.token_code_bytes + s.record_offset[f],
                  s.RecordBytes(f / c.num_kv_heads));
      return;
    }
    const size_t i = t - begin, kb = s.KeyBytes(f / c.num_kv_heads);
    const size_t vb = s.ValueBytes(f / c.num_kv_heads);
    out->append(reinterpret_cast<const char*>(key_codes(f) + i * kb), kb);
    out->append(reinterpret_cast<const char*>(value_codes(f) + i * vb), vb);
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
        ToFloat(tokens.keys.data(), tokens.dtype, (f * n + i) * d, d, k);
        ToFloat(tokens.values.data(), tokens.dtype, (f * n + i) * d, d, k + d);
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
  TQDB_RETURN_IF_ERROR(
      s.engine->Write(&batch, absl::StrCat("appending to ", SeqName(seq_id)), !defer_sync));
  seq->meta = std::move(meta);
  bool in_memory;
  {
    std::unique_lock<std::shared_mutex> seg_lock(seq->seg_mu);
    in_memory = seq->segment != nullptr;
    if (in_memory) {
      Segment& segment = *seq->segment;
      s.engine->pool().ParallelFor(s.families, [&](size_t f) {
        segment.keys[f]->AppendCodes(key_codes(static_cast<int>(f)), n);
        segment.values[f]->AppendCodes(value_codes(static_cast<int>(f)), n);
      });
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

}  // namespace tqdb::storage
