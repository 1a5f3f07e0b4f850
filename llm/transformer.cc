#include "llm/transformer.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace tqdb::llm {

void MatVec(const float* w, const float* x, int rows, int cols, float* out) {
  // Eight independent partial sums per row let the compiler use SIMD lanes
  // without reassociating float adds.
  constexpr int kLanes = 8;
  const int body = cols / kLanes * kLanes;
  for (int r = 0; r < rows; ++r) {
    const float* row = w + static_cast<size_t>(r) * cols;
    float acc[kLanes] = {};
    for (int c = 0; c < body; c += kLanes) {
      for (int j = 0; j < kLanes; ++j) acc[j] += row[c + j] * x[c + j];
    }
    float sum = 0.0f;
    for (int j = 0; j < kLanes; ++j) sum += acc[j];
    for (int c = body; c < cols; ++c) sum += row[c] * x[c];
    out[r] = sum;
  }
}

void RmsNorm(const float* x, const float* weight, int n, float* out) {
  float ss = 0.0f;
  for (int i = 0; i < n; ++i) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + 1e-5f);
  for (int i = 0; i < n; ++i) out[i] = weight[i] * (inv * x[i]);
}

Transformer::Transformer(const Checkpoint* checkpoint)
    : w_(checkpoint->weights()), config_(checkpoint->config()) {
  const ModelConfig& c = config_;
  x_.resize(c.dim);
  xb_.resize(c.dim);
  xb2_.resize(c.dim);
  q_.resize(c.dim);
  att_.resize(c.dim);
  k_.resize(c.kv_dim());
  v_.resize(c.kv_dim());
  hb_.resize(c.hidden_dim);
  hb2_.resize(c.hidden_dim);
  logits_.resize(c.vocab_size);
  const int hd = c.head_dim();
  for (int i = 0; i < hd; i += 2) {
    rope_freq_.push_back(1.0f / std::pow(10000.0f, static_cast<float>(i) / hd));
  }
  rope_cos_.resize(rope_freq_.size());
  rope_sin_.resize(rope_freq_.size());
}

KvShape Transformer::kv_shape() const {
  KvShape s;
  s.num_layers = config_.n_layers;
  s.num_heads = config_.n_heads;
  s.num_kv_heads = config_.n_kv_heads;
  s.head_dim = config_.head_dim();
  s.max_tokens = config_.seq_len;
  return s;
}

absl::StatusOr<absl::Span<const float>> Transformer::Forward(int token, KvCache* cache) {
  const ModelConfig& c = config_;
  if (token < 0 || token >= c.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("token ", token, " is outside the vocabulary of ", c.vocab_size));
  }
  const KvShape& cs = cache->shape();
  const KvShape want = kv_shape();
  if (cs.num_layers != want.num_layers || cs.num_heads != want.num_heads ||
      cs.num_kv_heads != want.num_kv_heads || cs.head_dim != want.head_dim) {
    return absl::InvalidArgumentError("the KV cache has another shape than the model");
  }
  const uint64_t pos = cache->Length();
  if (pos >= static_cast<uint64_t>(c.seq_len)) {
    return absl::OutOfRangeError(
        absl::StrCat("position ", pos, " is past the model's context of ", c.seq_len));
  }
  const int dim = c.dim, kv_dim = c.kv_dim(), hidden = c.hidden_dim, hd = c.head_dim();
  const float* emb = w_.token_embedding + static_cast<size_t>(token) * dim;
  std::copy(emb, emb + dim, x_.begin());

  // RoPE angles of this position, per pair.
  const int pairs = hd / 2;
  std::vector<float>& rope_cos = rope_cos_;
  std::vector<float>& rope_sin = rope_sin_;
  for (int i = 0; i < pairs; ++i) {
    const float angle = static_cast<float>(pos) * rope_freq_[i];
    rope_cos[i] = std::cos(angle);
    rope_sin[i] = std::sin(angle);
  }
  auto rotate = [&](float* vec, int n) {
    for (int i = 0; i < n; i += 2) {
      const int p = (i % hd) / 2;
      const float v0 = vec[i], v1 = vec[i + 1];
      vec[i] = v0 * rope_cos[p] - v1 * rope_sin[p];
      vec[i + 1] = v0 * rope_sin[p] + v1 * rope_cos[p];
    }
  };

  for (int l = 0; l < c.n_layers; ++l) {
    const size_t ll = l;
    RmsNorm(x_.data(), w_.rms_att + ll * dim, dim, xb_.data());
    MatVec(w_.wq + ll * dim * dim, xb_.data(), dim, dim, q_.data());
    MatVec(w_.wk + ll * kv_dim * dim, xb_.data(), kv_dim, dim, k_.data());
    MatVec(w_.wv + ll * kv_dim * dim, xb_.data(), kv_dim, dim, v_.data());
    rotate(q_.data(), dim);
    rotate(k_.data(), kv_dim);
    TQDB_RETURN_IF_ERROR(cache->Attend(l, q_.data(), k_.data(), v_.data(), att_.data()));
    MatVec(w_.wo + ll * dim * dim, att_.data(), dim, dim, xb2_.data());
    for (int i = 0; i < dim; ++i) x_[i] += xb2_[i];

    RmsNorm(x_.data(), w_.rms_ffn + ll * dim, dim, xb_.data());
    MatVec(w_.w1 + ll * hidden * dim, xb_.data(), hidden, dim, hb_.data());
    MatVec(w_.w3 + ll * hidden * dim, xb_.data(), hidden, dim, hb2_.data());
    for (int i = 0; i < hidden; ++i) {
      const float a = hb_[i];
      hb_[i] = a / (1.0f + std::exp(-a)) * hb2_[i];
    }
    MatVec(w_.w2 + ll * dim * hidden, hb_.data(), dim, hidden, xb_.data());
    for (int i = 0; i < dim; ++i) x_[i] += xb_[i];
  }
  TQDB_RETURN_IF_ERROR(cache->Commit());
  RmsNorm(x_.data(), w_.rms_final, dim, x_.data());
  MatVec(w_.wcls, x_.data(), c.vocab_size, dim, logits_.data());
  return absl::Span<const float>(logits_);
}

}  // namespace tqdb::llm
