// StoreKvCache: a KvCache kept in a tqdb KvCollection (storage/), one
// collection sequence per cache. Committed tokens are appended to the store
// (one atomic write per token, every layer); they survive the process, and a
// cache opened on an existing sequence continues where it ended.
//
// The current token is not in the store yet when its layers attend (Append
// takes every layer of a token at once), so its contribution is merged in
// exactly. Two ways to attend, by StoreAttention:
//
//  kStore (default): the store answers, in one call per layer: Attend over
//    the stored tokens with the current token as its exact tail
//    (KvAttendOptions::tail_*), one softmax over both (float logits over the
//    codes, exact ones over the exact window and the tail). Nothing but one
//    token's K/V lives in this process.
//  kDecoded: every committed token is read back once (KvCollection::Read,
//    the values Attend would decode) into an in-process float mirror, and
//    attention is computed here exactly over the mirror plus the current
//    token: exact float attention over what the store holds, at the memory of
//    an fp32 cache. For measuring the codecs alone, free of scoring-table
//    rounding.
//
//
// Thread-safety: not thread-safe (kv_cache.h); the collection may be shared
// with other caches on other sequences.
#ifndef TQDB_LLM_STORE_KV_CACHE_H_
#define TQDB_LLM_STORE_KV_CACHE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "llm/kv_cache.h"
#include "storage/kv_collection.h"
#include "storage/store.h"

namespace tqdb::llm {

enum class StoreAttention : uint8_t { kStore = 1, kDecoded = 2 };

// The KV collection `name` of `store` for caches of `shape`: created with
// `config` if absent. An existing collection must have the same layers, KV
// heads, head dimension, formats and window (FailedPrecondition naming the
// difference otherwise).
absl::StatusOr<std::shared_ptr<storage::KvCollection>> OpenKvCollection(
    storage::Store* store, const std::string& name, const storage::KvCollectionConfig& config);

class StoreKvCache : public KvCache {
 public:
  // Attaches to sequence `seq` of `collection`, creating it when absent; an
  // existing sequence continues at its length. InvalidArgument if the
  // collection's layers, KV heads or head dimension differ from `shape` or
  // the shape is invalid; OutOfRange if the sequence is longer than
  // shape.max_tokens; storage errors as they come.
  static absl::StatusOr<std::unique_ptr<StoreKvCache>> Open(
      std::shared_ptr<storage::KvCollection> collection, uint64_t seq, const KvShape& shape,
      StoreAttention attention = StoreAttention::kStore);

  const KvShape& shape() const override { return shape_; }
  uint64_t Length() const override { return length_; }
  absl::Status Attend(int layer, const float* q, const float* k, const float* v,
                      float* out) override;
  // One KvCollection::Append of the token (every layer).
  absl::Status Commit() override;
  absl::Status Truncate(uint64_t length) override;

  uint64_t sequence() const { return seq_; }

 private:
  StoreKvCache(std::shared_ptr<storage::KvCollection> collection, uint64_t seq,
               const KvShape& shape, StoreAttention attention);
  absl::Status AttendStore(int layer, const float* q, float* out);
  void AttendDecoded(int layer, const float* q, float* out);
  // Reads tokens [begin, end) into the mirror (kDecoded).
  absl::Status Mirror(uint64_t begin, uint64_t end);
  size_t MirrorOffset(int layer, int head, uint64_t t) const;

  std::shared_ptr<storage::KvCollection> collection_;
  uint64_t seq_;
  KvShape shape_;
  StoreAttention attention_;
  float scale_;
  uint64_t length_ = 0;
  int next_layer_ = 0;
  // The current token: [layer][kv head][head_dim], as Append takes it.
  std::vector<float> pending_k_, pending_v_;
  // kDecoded: [layer][kv head][max_tokens][head_dim].
  std::vector<float> mirror_k_, mirror_v_;
  std::vector<float> scores_;
  std::vector<float> read_k_, read_v_;
};

}  // namespace tqdb::llm

#endif  // TQDB_LLM_STORE_KV_CACHE_H_
