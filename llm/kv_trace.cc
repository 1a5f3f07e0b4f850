#include "llm/kv_trace.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "llm/exact_kv_cache.h"

namespace tqdb::llm {
namespace {

// An ExactKvCache that copies what each layer attends with into a window.
class RecordingKvCache : public KvCache {
 public:
  explicit RecordingKvCache(const KvShape& shape) : exact_(shape) {}

  void StartWindow(KvTraceWindow* window) {
    window_ = window;
    const KvShape& s = exact_.shape();
    const size_t per_layer = static_cast<size_t>(window->tokens) * s.head_dim;
    window->queries.assign(s.num_layers * per_layer * s.num_heads, 0.0f);
    window->keys.assign(s.num_layers * per_layer * s.num_kv_heads, 0.0f);
    window->values.assign(window->keys.size(), 0.0f);
  }

  const KvShape& shape() const override { return exact_.shape(); }
  uint64_t Length() const override { return exact_.Length(); }
  absl::Status Attend(int layer, const float* q, const float* k, const float* v,
                      float* out) override {
    const KvShape& s = exact_.shape();
    const size_t t = exact_.Length(), n = window_->tokens, d = s.head_dim;
    if (t < n) {
      std::copy_n(q, static_cast<size_t>(s.num_heads) * d,
                  &window_->queries[((layer * n) + t) * s.num_heads * d]);
      for (int h = 0; h < s.num_kv_heads; ++h) {
        const size_t at = ((static_cast<size_t>(layer) * s.num_kv_heads + h) * n + t) * d;
        std::copy_n(k + h * d, d, &window_->keys[at]);
        std::copy_n(v + h * d, d, &window_->values[at]);
      }
    }
    return exact_.Attend(layer, q, k, v, out);
  }
  absl::Status Commit() override { return exact_.Commit(); }
  absl::Status Truncate(uint64_t length) override { return exact_.Truncate(length); }

 private:
  ExactKvCache exact_;
  KvTraceWindow* window_ = nullptr;
};

}  // namespace

size_t KvTrace::TotalTokens() const {
  size_t n = 0;
  for (const auto& w : windows) n += w.tokens;
  return n;
}

absl::StatusOr<KvTrace> CaptureKvTrace(Transformer* model, absl::Span<const int> tokens,
                                       int window, int max_windows) {
  const KvShape shape = model->kv_shape();
  if (window < 1 || window > shape.max_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("window must be 1 … ", shape.max_tokens, ", got ", window));
  }
  if (tokens.size() < 2) return absl::InvalidArgumentError("need at least 2 tokens");
  KvTrace trace;
  trace.shape = shape;
  RecordingKvCache cache(shape);
  const size_t inputs = tokens.size() - 1;
  for (size_t begin = 0; begin < inputs; begin += window) {
    if (max_windows > 0 && static_cast<int>(trace.windows.size()) >= max_windows) break;
    const size_t end = std::min(inputs, begin + window);
    KvTraceWindow& w = trace.windows.emplace_back();
    w.tokens = static_cast<int>(end - begin);
    cache.StartWindow(&w);
    TQDB_RETURN_IF_ERROR(cache.Truncate(0));
    for (size_t i = begin; i < end; ++i) {
      TQDB_RETURN_IF_ERROR(model->Forward(tokens[i], &cache).status());
    }
  }
  return trace;
}

}  // namespace tqdb::llm
