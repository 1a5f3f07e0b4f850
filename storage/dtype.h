// Element types of vectors handed to the store (DType: f32, f16, bf16,
// little-endian), their conversion to and from float (common/fp16.h holds the
// element conversions), and the finiteness check every
// write does before touching the store. Public so the server converts wire
// tensors exactly as the store does.
//
// Thread-safety: pure functions.
#ifndef TQDB_STORAGE_DTYPE_H_
#define TQDB_STORAGE_DTYPE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/fp16.h"
#include "storage/options.h"

namespace tqdb::storage {

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
      return dtype == DType::kF16 ? HalfToFloat(h) : Bf16ToFloat(h);
    }
  }
  return 0.0f;
}

// out[i] = element begin + i, for n elements. One loop per dtype, so each
// vectorizes.
inline void ToFloat(const uint8_t* data, DType dtype, size_t begin, size_t n, float* out) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(out, data + 4 * begin, 4 * n);
      return;
    case DType::kF16:
      HalvesToFloats(data + 2 * begin, n, out);
      return;
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, data + 2 * (begin + i), 2);
        out[i] = Bf16ToFloat(h);
      }
      return;
  }
}

// The inverse: n floats to dtype elements at out (little-endian), rounding
// to nearest even for f16 and bf16. One loop per dtype, so each vectorizes.
// REQUIRES: x holds no NaN when dtype is kBF16.
inline void FromFloat(const float* x, size_t n, DType dtype, uint8_t* out) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(out, x, 4 * n);
      return;
    case DType::kF16:
      FloatsToHalves(x, n, out);
      return;
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        const uint16_t h = FloatToBf16(x[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
  }
}

namespace internal {

// FirstNonFinite for elements of type Bits (uint32_t: f32; uint16_t: f16,
// bf16) whose exponent bits are `mask`.
template <typename Bits>
size_t FirstNonFiniteOf(const uint8_t* data, Bits mask, size_t n) {
  auto bits = [&](size_t i) {
    Bits x;
    std::memcpy(&x, data + sizeof(Bits) * i, sizeof(Bits));
    return x;
  };
  constexpr size_t kBlock = 1024;
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t e = std::min(n, b + kBlock);
    // A count of the non-finite: a sum of comparisons vectorizes to a compare
    // and a subtract at the baseline ISA (an OR of them did not vectorize).
    uint32_t bad = 0;
    for (size_t i = b; i < e; ++i) bad += (bits(i) & mask) == mask;
    if (bad == 0) continue;
    for (size_t i = b; i < e; ++i) {
      if ((bits(i) & mask) == mask) return i;
    }
  }
  return n;
}

}  // namespace internal

// Index of the first element of n that is not finite, or n. Checks the
// exponent bits (all ones: infinity or NaN) a block at a time, so the common
// all-finite case is one vectorized pass.
inline size_t FirstNonFinite(const uint8_t* data, DType dtype, size_t n) {
  switch (dtype) {
    case DType::kF32:
      return internal::FirstNonFiniteOf<uint32_t>(data, 0x7f800000u, n);
    case DType::kF16:
      return internal::FirstNonFiniteOf<uint16_t>(data, 0x7c00u, n);
    case DType::kBF16:
      return internal::FirstNonFiniteOf<uint16_t>(data, 0x7f80u, n);
  }
  return n;
}

}  // namespace tqdb::storage

#endif  // TQDB_STORAGE_DTYPE_H_
