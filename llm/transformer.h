// Transformer: the llama2.c decoder (Llama 2 architecture) over a Checkpoint,
// one token at a time, with its keys and values in a KvCache.
//
// Per token at position p (p = cache.Length()), x = token_embedding[token];
// for each layer l:
//   xb = RMSNorm(x) · rms_att[l]               (eps 1e-5)
//   q = wq·xb, k = wk·xb, v = wv·xb
//   RoPE on q and k: each pair (2i, 2i+1) of a head rotated by the angle
//        p · 10000^(−2i/head_dim)
//   a = cache.Attend(l, q, k, v)               (GQA, scale 1/√head_dim)
//   x += wo·a
//   xb = RMSNorm(x) · rms_ffn[l]
//   x += w2·(SiLU(w1·xb) ⊙ (w3·xb))             (SwiGLU)
// then logits = wcls · (RMSNorm(x) · rms_final), and the token is committed
// to the cache. All float32.
//
// Thread-safety: a Transformer holds scratch buffers: one thread at a time.
// Several Transformers may share one Checkpoint.
#ifndef TQDB_LLM_TRANSFORMER_H_
#define TQDB_LLM_TRANSFORMER_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "llm/checkpoint.h"
#include "llm/kv_cache.h"

namespace tqdb::llm {

class Transformer {
 public:
  // `checkpoint` must outlive the Transformer.
  explicit Transformer(const Checkpoint* checkpoint);

  const ModelConfig& config() const { return config_; }
  // The shape of the KV caches this model needs.
  KvShape kv_shape() const;

  // Runs `token` at position cache->Length(), commits it to the cache and
  // returns the logits of the next token: vocab_size floats, valid until the
  // next call. InvalidArgument for a token out of range or a cache of another
  // shape; OutOfRange when the context (seq_len) is full; cache errors as
  // they come (the cache is then left without the token).
  absl::StatusOr<absl::Span<const float>> Forward(int token, KvCache* cache);

 private:
  const Weights& w_;
  ModelConfig config_;
  // Scratch: x, xb, xb2 [dim]; q, att [dim]; k, v [kv_dim]; hb, hb2 [hidden].
  std::vector<float> x_, xb_, xb2_, q_, att_, k_, v_, hb_, hb2_, logits_;
  std::vector<float> rope_freq_;            // [head_dim / 2]
  std::vector<float> rope_cos_, rope_sin_;  // this position's, [head_dim / 2]
};

// out[rows] = w[rows][cols] · x[cols].
void MatVec(const float* w, const float* x, int rows, int cols, float* out);

// out = x / √(mean(x²) + 1e-5) ⊙ weight, n floats (out may be x).
void RmsNorm(const float* x, const float* weight, int n, float* out);

}  // namespace tqdb::llm

#endif  // TQDB_LLM_TRANSFORMER_H_
