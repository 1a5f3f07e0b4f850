// Per-thread scratch buffers, so encode/decode allocate nothing on the hot
// path once a thread has seen its largest dimension.
// Thread-safety: each thread gets its own Scratch.
#ifndef TQDB_INDEX_CODEC_INTERNAL_SCRATCH_H_
#define TQDB_INDEX_CODEC_INTERNAL_SCRATCH_H_

#include <cstdint>
#include <vector>

namespace tqdb::index::internal {

class Scratch {
 public:
  // Independent buffers; a function uses distinct slots for live buffers.
  enum Slot { kRotation, kRotated, kCentroids, kResidual, kProjection, kNumFloatSlots };

  static Scratch& Get() {
    thread_local Scratch scratch;
    return scratch;
  }

  // At least n floats in `slot`; contents are unspecified.
  float* Floats(Slot slot, size_t n) {
    std::vector<float>& v = floats_[slot];
    if (v.size() < n) v.resize(n);
    return v.data();
  }
  // At least n bytes; contents are unspecified.
  uint8_t* Bytes(size_t n) {
    if (bytes_.size() < n) bytes_.resize(n);
    return bytes_.data();
  }

 private:
  std::vector<float> floats_[kNumFloatSlots];
  std::vector<uint8_t> bytes_;
};

}  // namespace tqdb::index::internal

#endif  // TQDB_INDEX_CODEC_INTERNAL_SCRATCH_H_
