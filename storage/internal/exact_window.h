// The exact recent window of a KV sequence (KvCollectionConfig::exact_window):
// the newest tokens' keys and values kept as floats next to their codes, so
// Score and Attend use them exactly.
//
// A token's window record, in memory and (in `dtype`) on disk, is for every
// family f (layer · heads + head) its key then its value: families × 2 × dim
// elements.
//
// Thread-safety: none; the owning sequence's locks guard it.
#ifndef TQDB_STORAGE_INTERNAL_EXACT_WINDOW_H_
#define TQDB_STORAGE_INTERNAL_EXACT_WINDOW_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/options.h"

namespace tqdb::storage::internal {

// A token's window record as stored: the floats converted to `dtype`.
std::string EncodeWindowRecord(const float* record, size_t elements, DType dtype);
// Its inverse; false if `bytes` is not `elements` values of `dtype`.
bool DecodeWindowRecord(std::string_view bytes, size_t elements, DType dtype, float* record);

// Rows of keys and values per family for positions [begin(), end()).
class ExactRows {
 public:
  ExactRows(int families, int dim, uint64_t begin);

  uint64_t begin() const { return begin_; }
  uint64_t end() const { return end_; }
  // Appends the token at end() from its window record.
  void Push(const float* record);
  // Forgets positions before `position` (amortized O(1) per row).
  void DropBefore(uint64_t position);
  // Forgets positions from `position` on; an empty window restarts there.
  void TruncateTo(uint64_t position);
  // Row of `position` of family f; rows up to end() follow contiguously.
  // REQUIRES: begin() <= position < end().
  const float* Keys(int f, uint64_t position) const { return Row(keys_[f], position); }
  const float* Values(int f, uint64_t position) const { return Row(values_[f], position); }
  size_t MemoryBytes() const;

 private:
  const float* Row(const std::vector<float>& rows, uint64_t position) const {
    return &rows[(first_ + (position - begin_)) * dim_];
  }
  size_t dim_;
  uint64_t begin_, end_;
  size_t first_ = 0;  // rows dropped at the front of every vector, not yet erased
  std::vector<std::vector<float>> keys_, values_;  // per family
};

}  // namespace tqdb::storage::internal

#endif  // TQDB_STORAGE_INTERNAL_EXACT_WINDOW_H_
