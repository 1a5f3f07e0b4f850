// SplitKvCache: a KvCache whose first and last `boundary` layers are kept
// exactly in process memory (an ExactKvCache) while every other layer lives in
// a second cache (normally a StoreKvCache over a collection of
// num_layers − 2·boundary layers). The store's own boundary layers
// (KvCollectionConfig::boundary_layers) can only pick other code formats;
// this is how the evaluation measures exact boundary layers.
//
// The exact cache holds the 2·boundary boundary layers and the middle cache
// the others, each in model order, so each sees its layers 0 … n − 1 once per
// token as kv_cache.h requires.
//
// Thread-safety: not thread-safe (kv_cache.h).
#ifndef TQDB_LLM_SPLIT_KV_CACHE_H_
#define TQDB_LLM_SPLIT_KV_CACHE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "llm/exact_kv_cache.h"
#include "llm/kv_cache.h"

namespace tqdb::llm {

// The shape of the inner cache for `boundary` exact layers at each end.
KvShape MiddleShape(const KvShape& shape, int boundary);

class SplitKvCache : public KvCache {
 public:
  // `middle` must have MiddleShape(shape, boundary); it is truncated to 0
  // tokens (the exact half starts empty). InvalidArgument unless
  // 1 ≤ boundary, 2·boundary < num_layers and the middle shape matches.
  static absl::StatusOr<std::unique_ptr<SplitKvCache>> Create(const KvShape& shape, int boundary,
                                                              std::unique_ptr<KvCache> middle);

  const KvShape& shape() const override { return shape_; }
  uint64_t Length() const override { return middle_->Length(); }
  absl::Status Attend(int layer, const float* q, const float* k, const float* v,
                      float* out) override;
  absl::Status Commit() override;
  absl::Status Truncate(uint64_t length) override;

  KvCache* middle() const { return middle_.get(); }

 private:
  SplitKvCache(const KvShape& shape, int boundary, std::unique_ptr<KvCache> middle);
  bool IsBoundary(int layer) const {
    return layer < boundary_ || layer >= shape_.num_layers - boundary_;
  }

  KvShape shape_;
  int boundary_;
  ExactKvCache exact_;
  std::unique_ptr<KvCache> middle_;
};

}  // namespace tqdb::llm

#endif  // TQDB_LLM_SPLIT_KV_CACHE_H_
