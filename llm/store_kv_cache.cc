#include "llm/store_kv_cache.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "llm/exact_kv_cache.h"

namespace tqdb::llm {
namespace {

// The first field in which two configurations differ, or "".
std::string ConfigDifference(const storage::KvCollectionConfig& a,
                             const storage::KvCollectionConfig& b) {
  auto diff = [](const char* field, const auto& x, const auto& y) {
    return absl::StrCat(field, " ", x, " vs ", y);
  };
  if (a.num_layers != b.num_layers) return diff("num_layers", a.num_layers, b.num_layers);
  if (a.num_kv_heads != b.num_kv_heads) {
    return diff("num_kv_heads", a.num_kv_heads, b.num_kv_heads);
  }
  if (a.head_dim != b.head_dim) return diff("head_dim", a.head_dim, b.head_dim);
  if (a.key_format != b.key_format) return diff("key_format", a.key_format, b.key_format);
  if (a.value_format != b.value_format) {
    return diff("value_format", a.value_format, b.value_format);
  }
  if (a.boundary_layers != b.boundary_layers) {
    return diff("boundary_layers", a.boundary_layers, b.boundary_layers);
  }
  if (a.boundary_layers > 0 && (a.boundary_key_format != b.boundary_key_format ||
                                a.boundary_value_format != b.boundary_value_format)) {
    return diff("boundary formats", a.boundary_key_format + "/" + a.boundary_value_format,
                b.boundary_key_format + "/" + b.boundary_value_format);
  }
  if (a.exact_window != b.exact_window) {
    return diff("exact_window", a.exact_window, b.exact_window);
  }
  if (a.exact_window > 0 && a.exact_dtype != b.exact_dtype) {
    return diff("exact_dtype", static_cast<int>(a.exact_dtype), static_cast<int>(b.exact_dtype));
  }
  return "";
}

}  // namespace

absl::StatusOr<std::shared_ptr<storage::KvCollection>> OpenKvCollection(
    storage::Store* store, const std::string& name, const storage::KvCollectionConfig& config) {
  auto existing = store->GetKvCollection(name);
  if (absl::IsNotFound(existing.status())) {
    auto created = store->CreateKvCollection(name, config);
    if (!absl::IsAlreadyExists(created.status())) return created;
    existing = store->GetKvCollection(name);  // created concurrently
  }
  if (!existing.ok()) return existing.status();
  const std::string diff = ConfigDifference((*existing)->config(), config);
  if (!diff.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "KV collection '", name, "' exists with another configuration (stored vs wanted: ", diff,
        "); drop it or use another name"));
  }
  return existing;
}

StoreKvCache::StoreKvCache(std::shared_ptr<storage::KvCollection> collection, uint64_t seq,
                           const KvShape& shape, StoreAttention attention)
    : collection_(std::move(collection)),
      seq_(seq),
      shape_(shape),
      attention_(attention),
      scale_(1.0f / std::sqrt(static_cast<float>(shape.head_dim))),
      pending_k_(static_cast<size_t>(shape.num_layers) * shape.num_kv_heads * shape.head_dim),
      pending_v_(pending_k_.size()),
      scores_(static_cast<size_t>(shape.max_tokens) + 1) {
  if (attention_ == StoreAttention::kDecoded) {
    mirror_k_.resize(pending_k_.size() * shape.max_tokens);
    mirror_v_.resize(mirror_k_.size());
  }
}

absl::StatusOr<std::unique_ptr<StoreKvCache>> StoreKvCache::Open(
    std::shared_ptr<storage::KvCollection> collection, uint64_t seq, const KvShape& shape,
    StoreAttention attention) {
  if (collection == nullptr) return absl::InvalidArgumentError("no collection");
  if (shape.num_layers <= 0 || shape.num_kv_heads <= 0 || shape.head_dim <= 0 ||
      shape.max_tokens <= 0 || shape.num_heads <= 0 || shape.num_heads % shape.num_kv_heads) {
    return absl::InvalidArgumentError("invalid KV shape");
  }
  const storage::KvCollectionConfig& c = collection->config();
  if (c.num_layers != shape.num_layers || c.num_kv_heads != shape.num_kv_heads ||
      c.head_dim != shape.head_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("collection '", collection->name(), "' holds ", c.num_layers, " layers × ",
                     c.num_kv_heads, " KV heads × ", c.head_dim, " dims; the model needs ",
                     shape.num_layers, " × ", shape.num_kv_heads, " × ", shape.head_dim));
  }
  absl::Status created = collection->CreateSequence(seq);
  if (!created.ok() && !absl::IsAlreadyExists(created)) return created;
  std::unique_ptr<StoreKvCache> cache(
      new StoreKvCache(std::move(collection), seq, shape, attention));
  TQDB_ASSIGN_OR_RETURN(cache->length_, cache->collection_->Length(seq));
  if (cache->length_ > static_cast<uint64_t>(shape.max_tokens)) {
    return absl::OutOfRangeError(absl::StrCat("sequence ", seq, " holds ", cache->length_,
                                              " tokens, the model's context is ",
                                              shape.max_tokens));
  }
  if (attention == StoreAttention::kDecoded) {
    TQDB_RETURN_IF_ERROR(cache->Mirror(0, cache->length_));
  }
  return cache;
}

size_t StoreKvCache::MirrorOffset(int layer, int head, uint64_t t) const {
  return ((static_cast<size_t>(layer) * shape_.num_kv_heads + head) * shape_.max_tokens + t) *
         shape_.head_dim;
}

absl::Status StoreKvCache::Mirror(uint64_t begin, uint64_t end) {
  if (begin == end) return absl::OkStatus();
  TQDB_RETURN_IF_ERROR(collection_->Read(seq_, begin, end, &read_k_, &read_v_));
  const uint64_t n = end - begin;
  const size_t d = shape_.head_dim;
  for (int l = 0; l < shape_.num_layers; ++l) {
    for (int h = 0; h < shape_.num_kv_heads; ++h) {
      const size_t src = (static_cast<size_t>(l) * shape_.num_kv_heads + h) * n * d;
      std::copy_n(&read_k_[src], n * d, &mirror_k_[MirrorOffset(l, h, begin)]);
      std::copy_n(&read_v_[src], n * d, &mirror_v_[MirrorOffset(l, h, begin)]);
    }
  }
  return absl::OkStatus();
}

absl::Status StoreKvCache::Attend(int layer, const float* q, const float* k, const float* v,
                                  float* out) {
  TQDB_RETURN_IF_ERROR(CheckAttend(shape_, next_layer_, layer, length_));
  const size_t kv = static_cast<size_t>(shape_.num_kv_heads) * shape_.head_dim;
  std::copy_n(k, kv, &pending_k_[layer * kv]);
  std::copy_n(v, kv, &pending_v_[layer * kv]);
  if (attention_ == StoreAttention::kDecoded) {
    AttendDecoded(layer, q, out);
  } else {
    TQDB_RETURN_IF_ERROR(AttendStore(layer, q, out));
  }
  next_layer_ = layer + 1;
  return absl::OkStatus();
}

void StoreKvCache::AttendDecoded(int layer, const float* q, float* out) {
  const int d = shape_.head_dim, group = shape_.num_heads / shape_.num_kv_heads;
  const size_t kv = static_cast<size_t>(shape_.num_kv_heads) * d;
  for (int i = 0; i < shape_.num_heads; ++i) {
    const int h = i / group;
    ExactAttention(q + i * d, &mirror_k_[MirrorOffset(layer, h, 0)],
                   &mirror_v_[MirrorOffset(layer, h, 0)], length_, &pending_k_[layer * kv + h * d],
                   &pending_v_[layer * kv + h * d], d, scale_, scores_.data(), out + i * d);
  }
}

absl::Status StoreKvCache::AttendStore(int layer, const float* q, float* out) {
  const size_t kv = static_cast<size_t>(shape_.num_kv_heads) * shape_.head_dim;
  storage::KvAttendOptions attend;
  attend.scale = scale_;
  attend.tail_tokens = 1;  // the current token, [kv head][1][head_dim]
  attend.tail_keys = absl::MakeConstSpan(&pending_k_[layer * kv], kv);
  attend.tail_values = absl::MakeConstSpan(&pending_v_[layer * kv], kv);
  const absl::Span<const float> queries(q, static_cast<size_t>(shape_.num_heads) * shape_.head_dim);
  TQDB_ASSIGN_OR_RETURN(const std::vector<float> attended,
                        collection_->Attend(seq_, layer, queries, attend));
  std::copy(attended.begin(), attended.end(), out);
  return absl::OkStatus();
}

absl::Status StoreKvCache::Commit() {
  TQDB_RETURN_IF_ERROR(CheckCommit(shape_, next_layer_));
  TQDB_RETURN_IF_ERROR(collection_->Append(seq_, storage::FloatTokens(1, pending_k_, pending_v_)));
  if (attention_ == StoreAttention::kDecoded) TQDB_RETURN_IF_ERROR(Mirror(length_, length_ + 1));
  ++length_;
  next_layer_ = 0;
  return absl::OkStatus();
}

absl::Status StoreKvCache::Truncate(uint64_t length) {
  if (length > length_) {
    return absl::InvalidArgumentError(
        absl::StrCat("truncate to ", length, " tokens, the cache holds ", length_));
  }
  TQDB_RETURN_IF_ERROR(collection_->Truncate(seq_, length));
  length_ = length;
  next_layer_ = 0;
  return absl::OkStatus();
}

}  // namespace tqdb::llm
