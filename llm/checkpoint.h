// Checkpoint: a llama2.c model file (float32), validated and mapped read-only.
//
// Layout (llama2.c's run.c format): 7 little-endian int32 — dim, hidden_dim,
// n_layers, n_heads, n_kv_heads, vocab_size (negative: an unshared classifier
// follows), seq_len — then float32 arrays, row-major:
//
//   token_embedding[vocab][dim]
//   rms_att[L][dim]
//   wq[L][dim][dim]         wk[L][kv_dim][dim]     wv[L][kv_dim][dim]
//   wo[L][dim][dim]
//   rms_ffn[L][dim]
//   w1[L][hidden][dim]      w2[L][dim][hidden]     w3[L][hidden][dim]
//   rms_final[dim]
//   two legacy RoPE tables [seq_len][head_dim / 2] each (ignored)
//   wcls[vocab][dim]        only when vocab_size < 0 in the header
//
// with head_dim = dim / n_heads and kv_dim = n_kv_heads · head_dim.
//
// Thread-safety: immutable after Open; may be read concurrently.
#ifndef TQDB_LLM_CHECKPOINT_H_
#define TQDB_LLM_CHECKPOINT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace tqdb::llm {

inline constexpr size_t kCheckpointHeaderBytes = 7 * sizeof(int32_t);

struct ModelConfig {
  int dim = 0;
  int hidden_dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int vocab_size = 0;  // always positive here; see shared_classifier
  int seq_len = 0;
  bool shared_classifier = true;  // wcls is token_embedding

  int head_dim() const { return dim / n_heads; }
  int kv_dim() const { return n_kv_heads * head_dim(); }
};

// Views into the mapped file; every pointer is valid while the Checkpoint lives.
struct Weights {
  const float* token_embedding = nullptr;  // [vocab][dim]
  const float* rms_att = nullptr;          // [L][dim]
  const float* wq = nullptr;               // [L][dim][dim]
  const float* wk = nullptr;               // [L][kv_dim][dim]
  const float* wv = nullptr;               // [L][kv_dim][dim]
  const float* wo = nullptr;               // [L][dim][dim]
  const float* rms_ffn = nullptr;          // [L][dim]
  const float* w1 = nullptr;               // [L][hidden][dim]
  const float* w2 = nullptr;               // [L][dim][hidden]
  const float* w3 = nullptr;               // [L][hidden][dim]
  const float* rms_final = nullptr;        // [dim]
  const float* wcls = nullptr;             // [vocab][dim]
};

class Checkpoint {
 public:
  // Maps `path`. NotFound if it cannot be opened; DataLoss if the header is
  // not a llama2.c model (non-positive sizes, dim not a multiple of n_heads,
  // n_heads not a multiple of n_kv_heads, odd head_dim, absurd sizes) or the
  // file size is not exactly what the header implies.
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& path);
  // Same, over bytes held in memory (for tests and generated models).
  static absl::StatusOr<std::unique_ptr<Checkpoint>> FromBytes(std::string bytes);

  ~Checkpoint();
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;

  const ModelConfig& config() const { return config_; }
  const Weights& weights() const { return weights_; }

  // Float32 values the header implies after it (classifier included).
  static absl::StatusOr<uint64_t> ExpectedFloats(const ModelConfig& config);

 private:
  Checkpoint() = default;
  absl::Status Parse(const char* data, size_t size);

  void* map_ = nullptr;  // mmap'ed file, or null when bytes_ holds the data
  size_t map_bytes_ = 0;
  std::string bytes_;
  ModelConfig config_;
  Weights weights_;
};

}  // namespace tqdb::llm

#endif  // TQDB_LLM_CHECKPOINT_H_
