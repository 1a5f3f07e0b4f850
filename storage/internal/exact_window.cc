#include "storage/internal/exact_window.h"


#include "storage/dtype.h"

namespace tqdb::storage::internal {

std::string EncodeWindowRecord(const float* record, size_t elements, DType dtype) {
  std::string out(elements * DTypeBytes(dtype), '\0');
  FromFloat(record, elements, dtype, reinterpret_cast<uint8_t*>(out.data()));
  return out;
}

bool DecodeWindowRecord(std::string_view bytes, size_t elements, DType dtype, float* record) {
  if (bytes.size() != elements * DTypeBytes(dtype)) return false;
  ToFloat(reinterpret_cast<const uint8_t*>(bytes.data()), dtype, 0, elements, record);
  return true;
}

ExactRows::ExactRows(int families, int dim, uint64_t begin)
    : dim_(static_cast<size_t>(dim)), begin_(begin), end_(begin), keys_(families),
      values_(families) {}

void ExactRows::Push(const float* record) {
  for (size_t f = 0; f < keys_.size(); ++f) {
    const float* k = record + 2 * f * dim_;
    keys_[f].insert(keys_[f].end(), k, k + dim_);
    values_[f].insert(values_[f].end(), k + dim_, k + 2 * dim_);
  }
  ++end_;
}

void ExactRows::DropBefore(uint64_t position) {
  if (position <= begin_) return;
  if (position >= end_) {
    TruncateTo(begin_);
    begin_ = end_ = position;
    return;
  }
  first_ += position - begin_;
  begin_ = position;
  const size_t rows = first_ + (end_ - begin_);
  if (2 * first_ < rows) return;  // erase the dead front only when it is half
  for (auto* side : {&keys_, &values_}) {
    for (std::vector<float>& v : *side) v.erase(v.begin(), v.begin() + first_ * dim_);
  }
  first_ = 0;
}

void ExactRows::TruncateTo(uint64_t position) {
  if (position >= end_) return;
  if (position <= begin_) {
    for (auto* side : {&keys_, &values_}) {
      for (std::vector<float>& v : *side) v.clear();
    }
    first_ = 0;
    begin_ = end_ = position;
    return;
  }
  const size_t keep = (first_ + (position - begin_)) * dim_;
  for (auto* side : {&keys_, &values_}) {
    for (std::vector<float>& v : *side) v.resize(keep);
  }
  end_ = position;
}

size_t ExactRows::MemoryBytes() const {
  size_t bytes = 0;
  for (const auto* side : {&keys_, &values_}) {
    for (const std::vector<float>& v : *side) bytes += v.capacity() * sizeof(float);
  }
  return bytes;
}

}  // namespace tqdb::storage::internal
