// KvTrace: the real attention inputs of a model — post-RoPE queries, keys and
// values of every layer and head — captured from an exact float32 run over a
// text, for measuring codecs on the model's own distribution (agreement.h,
// needle.h) rather than on synthetic vectors.
//
// The text is split as TeacherForcedNll splits it (evaluate.h): window w
// feeds tokens [w·window, min((w+1)·window, N − 1)) from an empty cache, so
// the queries and keys are exactly those the perplexity run attends with.
//
// Memory: per captured token, num_layers · (num_heads + 2·num_kv_heads) ·
// head_dim floats (640 for stories260K: 15.5K tokens take 40 MB).
//
// Thread-safety: a KvTrace is a plain value; const access may be concurrent.
#ifndef TQDB_LLM_KV_TRACE_H_
#define TQDB_LLM_KV_TRACE_H_

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "llm/kv_cache.h"
#include "llm/transformer.h"

namespace tqdb::llm {

struct KvTraceWindow {
  int tokens = 0;
  // [layer][token][query head][head_dim]
  std::vector<float> queries;
  // [layer][kv head][token][head_dim]: one contiguous tokens × head_dim
  // matrix per (layer, kv head), as CodeBlocks::Append takes it.
  std::vector<float> keys, values;
};

struct KvTrace {
  KvShape shape;
  std::vector<KvTraceWindow> windows;

  // head_dim floats: query head `head` of token t. REQUIRES: indices in range.
  const float* Query(int window, int layer, int t, int head) const {
    const auto& w = windows[window];
    return &w.queries[((static_cast<size_t>(layer) * w.tokens + t) * shape.num_heads + head) *
                      shape.head_dim];
  }
  // tokens × head_dim floats of (layer, kv head). REQUIRES: indices in range.
  const float* Keys(int window, int layer, int kv_head) const {
    return &windows[window].keys[Offset(window, layer, kv_head)];
  }
  const float* Values(int window, int layer, int kv_head) const {
    return &windows[window].values[Offset(window, layer, kv_head)];
  }
  size_t TotalTokens() const;

 private:
  size_t Offset(int window, int layer, int kv_head) const {
    return (static_cast<size_t>(layer) * shape.num_kv_heads + kv_head) * windows[window].tokens *
           shape.head_dim;
  }
};

// Runs `model` exactly (fp32, in memory) over `tokens` in windows of
// `window` inputs, capturing at most `max_windows` windows (0: all).
// InvalidArgument if window is not in 1 … seq_len or fewer than 2 tokens;
// Forward errors as they come.
absl::StatusOr<KvTrace> CaptureKvTrace(Transformer* model, absl::Span<const int> tokens,
                                       int window, int max_windows);

}  // namespace tqdb::llm

#endif  // TQDB_LLM_KV_TRACE_H_
