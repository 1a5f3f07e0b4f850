// KvCache: the attention keys and values of one sequence, as a decoder needs
// them token by token.
//
// A decoder computes a token's key and value at layer l just before it needs
// attention at layer l, and the attention output feeds layer l + 1. So a token
// is not cached in one piece: for each layer in order, Attend takes the
// current token's query, key and value, returns attention over the committed
// tokens plus the current one, and keeps the key and value; Commit then
// appends the token (every layer) to the cache. Positions are implicit: the
// current token is at position Length().
//
// Shapes: queries n_heads · head_dim floats, keys and values
// n_kv_heads · head_dim floats (head-major, RoPE already applied), output
// n_heads · head_dim floats. GQA: query head i reads KV head i / (n_heads /
// n_kv_heads). The logit scale is 1/√head_dim.
//
// Thread-safety: not thread-safe; one decoder drives a cache.
#ifndef TQDB_LLM_KV_CACHE_H_
#define TQDB_LLM_KV_CACHE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tqdb::llm {

struct KvShape {
  int num_layers = 0;
  int num_heads = 0;     // query heads
  int num_kv_heads = 0;  // divides num_heads
  int head_dim = 0;
  // Positions the model supports (its seq_len); Attend past it is OutOfRange.
  int max_tokens = 0;
};

class KvCache {
 public:
  virtual ~KvCache() = default;

  virtual const KvShape& shape() const = 0;
  // Committed tokens: the position of the current token.
  virtual uint64_t Length() const = 0;

  // Attention of the current token at `layer` over the committed tokens and
  // itself; keeps `k` and `v` for Commit. REQUIRES: layers are visited in
  // order 0 … num_layers − 1 once per token; the pointers hold the sizes
  // above. OutOfRange if Length() ≥ max_tokens; storage errors otherwise.
  virtual absl::Status Attend(int layer, const float* q, const float* k, const float* v,
                              float* out) = 0;

  // Appends the current token. FailedPrecondition unless every layer was
  // attended since the last Commit.
  virtual absl::Status Commit() = 0;

  // Keeps the first `length` committed tokens and forgets the current one.
  // InvalidArgument if length > Length().
  virtual absl::Status Truncate(uint64_t length) = 0;
};

// The token protocol every KvCache enforces: Attend at `layer` when
// `next_layer` is the one expected and `length` tokens are committed
// (FailedPrecondition out of order, OutOfRange past max_tokens), and Commit
// once all layers were attended (FailedPrecondition otherwise).
inline absl::Status CheckAttend(const KvShape& shape, int next_layer, int layer, uint64_t length) {
  if (layer != next_layer) {
    return absl::FailedPreconditionError(
        absl::StrCat("attend at layer ", layer, ", expected layer ", next_layer));
  }
  if (length >= static_cast<uint64_t>(shape.max_tokens)) {
    return absl::OutOfRangeError(
        absl::StrCat("position ", length, " is past the model's ", shape.max_tokens, " tokens"));
  }
  return absl::OkStatus();
}

inline absl::Status CheckCommit(const KvShape& shape, int next_layer) {
  if (next_layer == shape.num_layers) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("commit after ", next_layer, " of ", shape.num_layers, " layers were attended"));
}

}  // namespace tqdb::llm

#endif  // TQDB_LLM_KV_CACHE_H_
