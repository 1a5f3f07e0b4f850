// ExactKvCache: a KvCache in process memory, float32, exact attention (the
// llama2.c reference: logits, a max-subtracted softmax, the weighted sum of
// values). Memory: 2 · num_layers · max_tokens · n_kv_heads · head_dim floats,
// allocated up front.
//
// Thread-safety: not thread-safe (kv_cache.h).
#ifndef TQDB_LLM_EXACT_KV_CACHE_H_
#define TQDB_LLM_EXACT_KV_CACHE_H_

#include <cstdint>
#include <vector>

#include "llm/kv_cache.h"

namespace tqdb::llm {

// Exact attention of one query head over n tokens of one KV head plus an
// optional current token (cur_k/cur_v null: none): keys and values n ×
// head_dim floats row-major, out head_dim floats. `scores` has room for n + 1.
void ExactAttention(const float* q, const float* keys, const float* values, uint64_t n,
                    const float* cur_k, const float* cur_v, int head_dim, float scale,
                    float* scores, float* out);

class ExactKvCache : public KvCache {
 public:
  // REQUIRES: a valid shape (positive sizes, num_kv_heads divides num_heads).
  explicit ExactKvCache(const KvShape& shape);

  const KvShape& shape() const override { return shape_; }
  uint64_t Length() const override { return length_; }
  absl::Status Attend(int layer, const float* q, const float* k, const float* v,
                      float* out) override;
  absl::Status Commit() override;
  absl::Status Truncate(uint64_t length) override;

 private:
  // Start of token t of (layer, kv head): [layer][kv head][token][head_dim].
  size_t Offset(int layer, int head, uint64_t t) const;

  KvShape shape_;
  uint64_t length_ = 0;
  int next_layer_ = 0;  // the layer Attend expects next for the current token
  std::vector<float> keys_;
  std::vector<float> values_;
  std::vector<float> scores_;
};

}  // namespace tqdb::llm

#endif  // TQDB_LLM_EXACT_KV_CACHE_H_
