#include "llm/split_kv_cache.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace tqdb::llm {
namespace {

KvShape ExactShape(const KvShape& shape, int boundary) {
  KvShape s = shape;
  s.num_layers = 2 * boundary;
  return s;
}

}  // namespace

KvShape MiddleShape(const KvShape& shape, int boundary) {
  KvShape s = shape;
  s.num_layers = shape.num_layers - 2 * boundary;
  return s;
}

absl::StatusOr<std::unique_ptr<SplitKvCache>> SplitKvCache::Create(
    const KvShape& shape, int boundary, std::unique_ptr<KvCache> middle) {
  if (boundary < 1 || 2 * boundary >= shape.num_layers) {
    return absl::InvalidArgumentError(absl::StrCat("exact boundary layers must be 1 … ",
                                                   (shape.num_layers - 1) / 2, ", got ", boundary));
  }
  const KvShape want = MiddleShape(shape, boundary);
  const KvShape& got = middle->shape();
  if (got.num_layers != want.num_layers || got.num_heads != want.num_heads ||
      got.num_kv_heads != want.num_kv_heads || got.head_dim != want.head_dim ||
      got.max_tokens != want.max_tokens) {
    return absl::InvalidArgumentError("the middle cache's shape does not match");
  }
  std::unique_ptr<SplitKvCache> cache(new SplitKvCache(shape, boundary, std::move(middle)));
  // The exact half starts empty: the middle one must too.
  TQDB_RETURN_IF_ERROR(cache->middle_->Truncate(0));
  return cache;
}

SplitKvCache::SplitKvCache(const KvShape& shape, int boundary, std::unique_ptr<KvCache> middle)
    : shape_(shape),
      boundary_(boundary),
      exact_(ExactShape(shape, boundary)),
      middle_(std::move(middle)) {}

absl::Status SplitKvCache::Attend(int layer, const float* q, const float* k, const float* v,
                                  float* out) {
  if (layer < 0 || layer >= shape_.num_layers) {
    return absl::InvalidArgumentError(absl::StrCat("no layer ", layer));
  }
  if (!IsBoundary(layer)) return middle_->Attend(layer - boundary_, q, k, v, out);
  const int exact_layer = layer < boundary_ ? layer : layer - (shape_.num_layers - 2 * boundary_);
  return exact_.Attend(exact_layer, q, k, v, out);
}

absl::Status SplitKvCache::Commit() {
  // The middle first: the exact half cannot fail once every layer was
  // attended, so a failed commit leaves both halves as they were.
  TQDB_RETURN_IF_ERROR(middle_->Commit());
  return exact_.Commit();
}

absl::Status SplitKvCache::Truncate(uint64_t length) {
  TQDB_RETURN_IF_ERROR(middle_->Truncate(length));
  return exact_.Truncate(length);
}

}  // namespace tqdb::llm
