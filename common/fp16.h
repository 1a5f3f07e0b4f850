// Half-precision floats: IEEE binary16 <-> binary32 conversion, bit-exact
// with the x86 F16C instructions (vcvtps2ph with round-to-nearest-even,
// vcvtph2ps) for every finite input and infinity, and bfloat16 (the top half
// of a binary32). Used for stored norms and scales, the store's f16/bf16
// inputs and windows, and packed wire tensors.
// Thread-safety: pure functions.
#ifndef TQDB_COMMON_FP16_H_
#define TQDB_COMMON_FP16_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tqdb {

// All ones when `condition`, else 0: selects without branches.
inline uint32_t MaskIf(bool condition) { return 0u - static_cast<uint32_t>(condition); }

// Rounds to nearest, ties to even; overflow gives ±infinity; NaN → quiet NaN.
// Branch-free (every case is computed, one is selected by masks), so loops
// over arrays vectorize.
inline uint16_t FloatToHalf(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t x = bits & 0x7fffffffu;
  // ≥ 65536: infinity, or NaN with its top mantissa bits (made quiet).
  const uint32_t special = 0x7c00u | (MaskIf(x > 0x7f800000u) & (0x200u | ((x >> 13) & 0x3ffu)));
  // Below the smallest normal half: adding 0.5 aligns the half subnormal's
  // ULP (2^-24) to the float's last mantissa bit, so the float adder does the
  // round-to-nearest-even.
  const uint32_t subnormal =
      std::bit_cast<uint32_t>(std::bit_cast<float>(x) + std::bit_cast<float>(126u << 23)) -
      (126u << 23);
  // Normal: rebias the exponent (−112 << 23) and round; a carry into the
  // exponent gives infinity.
  const uint32_t normal = (x + 0xc8000fffu + ((x >> 13) & 1u)) >> 13;
  const uint32_t is_special = MaskIf(x >= 0x47800000u), is_subnormal = MaskIf(x < 0x38800000u);
  const uint32_t h = (special & is_special) | (subnormal & is_subnormal) |
                     (normal & ~(is_special | is_subnormal));
  return static_cast<uint16_t>(h | sign);
}

// Branch-free (loops over arrays of halves vectorize): the half's exponent
// and mantissa bits placed in a float's are that float times 2^-112, exactly,
// for normal and subnormal halves alike; infinity and NaN keep an all-ones
// exponent.
inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t bits = static_cast<uint32_t>(h & 0x7fffu) << 13;
  const uint32_t scaled = std::bit_cast<uint32_t>(std::bit_cast<float>(bits) * 0x1.0p112f);
  const uint32_t is_special = MaskIf((h & 0x7c00u) == 0x7c00u);
  return std::bit_cast<float>((scaled & ~is_special) | ((bits | 0x7f800000u) & is_special) | sign);
}

inline float Bf16ToFloat(uint16_t h) { return std::bit_cast<float>(uint32_t{h} << 16); }

// Rounds to nearest, ties to even (the top half of the float, rounded).
// REQUIRES: f is not NaN (NaN payloads are not preserved).
inline uint16_t FloatToBf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

namespace fp16_internal {

#if defined(__x86_64__)
inline bool HaveF16c() {
  static const bool have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  return have;
}

__attribute__((target("avx2,f16c"))) inline size_t HalvesToFloatsF16c(const uint8_t* in, size_t n,
                                                                      float* out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  return i;
}

__attribute__((target("avx2,f16c"))) inline size_t FloatsToHalvesF16c(const float* in, size_t n,
                                                                      uint8_t* out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i), h);
  }
  return i;
}
#endif

}  // namespace fp16_internal

// Bulk conversions of n little-endian halves: F16C (vcvtph2ps, vcvtps2ph
// rounding to nearest even), 8 elements at a time, where the CPU has AVX2 and
// F16C; else, and for the tail, the scalar functions above, which they equal
// bit for bit for every value but NaN payloads (F16C quiets signaling NaNs).
inline void HalvesToFloats(const uint8_t* in, size_t n, float* out) {
  size_t i = 0;
#if defined(__x86_64__)
  if (fp16_internal::HaveF16c()) i = fp16_internal::HalvesToFloatsF16c(in, n, out);
#endif
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, in + 2 * i, 2);
    out[i] = HalfToFloat(h);
  }
}

inline void FloatsToHalves(const float* in, size_t n, uint8_t* out) {
  size_t i = 0;
#if defined(__x86_64__)
  if (fp16_internal::HaveF16c()) i = fp16_internal::FloatsToHalvesF16c(in, n, out);
#endif
  for (; i < n; ++i) {
    const uint16_t h = FloatToHalf(in[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

}  // namespace tqdb

#endif  // TQDB_COMMON_FP16_H_
