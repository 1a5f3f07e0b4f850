#include "llm/exact_kv_cache.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace tqdb::llm {

void ExactAttention(const float* q, const float* keys, const float* values, uint64_t n,
                    const float* cur_k, const float* cur_v, int head_dim, float scale,
                    float* scores, float* out) {
  const uint64_t total = n + (cur_k != nullptr ? 1 : 0);
  assert(total > 0);
  auto dot = [&](const float* k) {
    float s = 0.0f;
    for (int i = 0; i < head_dim; ++i) s += q[i] * k[i];
    return s * scale;
  };
  for (uint64_t t = 0; t < n; ++t) scores[t] = dot(keys + t * head_dim);
  if (cur_k != nullptr) scores[n] = dot(cur_k);
  const float max = *std::max_element(scores, scores + total);
  float sum = 0.0f;
  for (uint64_t t = 0; t < total; ++t) {
    scores[t] = std::exp(scores[t] - max);
    sum += scores[t];
  }
  const float inv = 1.0f / sum;
  std::fill(out, out + head_dim, 0.0f);
  for (uint64_t t = 0; t < total; ++t) {
    const float w = scores[t] * inv;
    const float* v = t < n ? values + t * head_dim : cur_v;
    for (int i = 0; i < head_dim; ++i) out[i] += w * v[i];
  }
}

ExactKvCache::ExactKvCache(const KvShape& shape)
    : shape_(shape),
      keys_(static_cast<size_t>(shape.num_layers) * shape.num_kv_heads * shape.max_tokens *
            shape.head_dim),
      values_(keys_.size()),
      scores_(static_cast<size_t>(shape.max_tokens) + 1) {}

size_t ExactKvCache::Offset(int layer, int head, uint64_t t) const {
  return ((static_cast<size_t>(layer) * shape_.num_kv_heads + head) * shape_.max_tokens + t) *
         shape_.head_dim;
}

absl::Status ExactKvCache::Attend(int layer, const float* q, const float* k, const float* v,
                                  float* out) {
  TQDB_RETURN_IF_ERROR(CheckAttend(shape_, next_layer_, layer, length_));
  const int d = shape_.head_dim, group = shape_.num_heads / shape_.num_kv_heads;
  // The current token goes straight into its slot; Commit only counts it.
  for (int h = 0; h < shape_.num_kv_heads; ++h) {
    std::copy(k + h * d, k + (h + 1) * d, &keys_[Offset(layer, h, length_)]);
    std::copy(v + h * d, v + (h + 1) * d, &values_[Offset(layer, h, length_)]);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (int i = 0; i < shape_.num_heads; ++i) {
    const int h = i / group;
    ExactAttention(q + i * d, &keys_[Offset(layer, h, 0)], &values_[Offset(layer, h, 0)],
                   length_ + 1, nullptr, nullptr, d, scale, scores_.data(), out + i * d);
  }
  next_layer_ = layer + 1;
  return absl::OkStatus();
}

absl::Status ExactKvCache::Commit() {
  TQDB_RETURN_IF_ERROR(CheckCommit(shape_, next_layer_));
  ++length_;
  next_layer_ = 0;
  return absl::OkStatus();
}

absl::Status ExactKvCache::Truncate(uint64_t length) {
  if (length > length_) {
    return absl::InvalidArgumentError(
        absl::StrCat("truncate to ", length, " tokens, the cache holds ", length_));
  }
  length_ = length;
  next_layer_ = 0;
  return absl::OkStatus();
}

}  // namespace tqdb::llm
