// A small random llama2.c checkpoint, written by the tests themselves so the
// decoder and its KV caches are tested without any data file.
#ifndef TQDB_TESTS_LLM_SYNTHETIC_MODEL_H_
#define TQDB_TESTS_LLM_SYNTHETIC_MODEL_H_

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "llm/checkpoint.h"

namespace tqdb::llm::testing {

// The bytes of a checkpoint of `config` (vocab_size > 0; shared_classifier
// picks the header's sign) with weights uniform in ±1/√fan_in (times
// `qk_gain` for wq and wk, so attention is far from uniform) and RMSNorm
// weights near 1. Deterministic in `seed`.
inline std::string SyntheticCheckpoint(const ModelConfig& c, uint64_t seed, float qk_gain = 3.0f) {
  std::mt19937_64 rng(seed);
  std::string bytes;
  auto put_int = [&](int32_t v) { bytes.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  auto put = [&](size_t n, float scale, float offset) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (size_t i = 0; i < n; ++i) {
      const float v = offset + scale * u(rng);
      bytes.append(reinterpret_cast<const char*>(&v), sizeof(v));
    }
  };
  put_int(c.dim);
  put_int(c.hidden_dim);
  put_int(c.n_layers);
  put_int(c.n_heads);
  put_int(c.n_kv_heads);
  put_int(c.shared_classifier ? c.vocab_size : -c.vocab_size);
  put_int(c.seq_len);
  const size_t d = c.dim, h = c.hidden_dim, l = c.n_layers, v = c.vocab_size, kv = c.kv_dim();
  const float in_d = 1.0f / std::sqrt(static_cast<float>(d));
  const float in_h = 1.0f / std::sqrt(static_cast<float>(h));
  put(v * d, 1.0f, 0.0f);                                                    // token_embedding
  put(l * d, 0.2f, 1.0f);                                                    // rms_att
  put(l * d * d, qk_gain * in_d, 0.0f);                                      // wq
  put(l * kv * d, qk_gain * in_d, 0.0f);                                     // wk
  put(l * kv * d, in_d, 0.0f);                                               // wv
  put(l * d * d, in_d, 0.0f);                                                // wo
  put(l * d, 0.2f, 1.0f);                                                    // rms_ffn
  put(l * h * d, in_d, 0.0f);                                                // w1
  put(l * d * h, in_h, 0.0f);                                                // w2
  put(l * h * d, in_d, 0.0f);                                                // w3
  put(d, 0.2f, 1.0f);                                                        // rms_final
  put(2 * static_cast<size_t>(c.seq_len) * (c.head_dim() / 2), 0.0f, 0.0f);  // legacy RoPE
  if (!c.shared_classifier) put(v * d, 1.0f, 0.0f);
  return bytes;
}

// 2 layers, 4 query heads over 2 KV heads of 16 dims, 96-token context.
inline ModelConfig SmallConfig() {
  ModelConfig c;
  c.dim = 64;
  c.hidden_dim = 96;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.vocab_size = 100;
  c.seq_len = 96;
  c.shared_classifier = true;
  return c;
}

}  // namespace tqdb::llm::testing

#endif  // TQDB_TESTS_LLM_SYNTHETIC_MODEL_H_
