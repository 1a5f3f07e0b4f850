// Element types of vectors handed to the store (DType: f32, f16, bf16,
// little-endian), their conversion to float, and the finiteness check every
// write does before touching the store. Public so the server converts wire
// tensors exactly as the store does.
//
// Thread-safety: pure functions.
#ifndef TQDB_STORAGE_DTYPE_H_
#define TQDB_STORAGE_DTYPE_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "index/codec/fp16.h"
#include "storage/options.h"

namespace tqdb::storage {

inline float Bf16ToFloat(uint16_t h) {
  const uint32_t bits = uint32_t{h} << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Element i of `data` (dtype elements) as a float.
inline float ElementAt(const uint8_t* data, DType dtype, size_t i) {
  switch (dtype) {
    case DType::kF32: {
      float f;
      std::memcpy(&f, data + 4 * i, 4);
      return f;
    }
    case DType::kF16:
    case DType::kBF16: {
      uint16_t h;
      std::memcpy(&h, data + 2 * i, 2);
      return dtype == DType::kF16 ? index::HalfToFloat(h) : Bf16ToFloat(h);
    }
  }
  return 0.0f;
}

// out[i] = element begin + i, for n elements.
inline void ToFloat(const uint8_t* data, DType dtype, size_t begin, size_t n, float* out) {
  if (dtype == DType::kF32) {
    std::memcpy(out, data + 4 * begin, 4 * n);
    return;
  }
  for (size_t i = 0; i < n; ++i) out[i] = ElementAt(data, dtype, begin + i);
}

// Index of the first element of n that is not finite, or n.
inline size_t FirstNonFinite(const uint8_t* data, DType dtype, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float v = ElementAt(data, dtype, i);
    if (!std::isfinite(v)) return i;
  }
  return n;
}

}  // namespace tqdb::storage

#endif  // TQDB_STORAGE_DTYPE_H_
