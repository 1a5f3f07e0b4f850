// IEEE binary16 <-> binary32 conversion, bit-exact with the x86 F16C
// instructions (vcvtps2ph with round-to-nearest-even, vcvtph2ps) for every
// finite input and infinity. Used for stored norms and scales.
// Thread-safety: pure functions.
#ifndef TQDB_INDEX_CODEC_FP16_H_
#define TQDB_INDEX_CODEC_FP16_H_

#include <bit>
#include <cstdint>

namespace tqdb::index {

// Rounds to nearest, ties to even; overflow gives ±infinity; NaN → quiet NaN.
inline uint16_t FloatToHalf(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  uint32_t h;
  if (x >= 0x47800000u) {                  // ≥ 65536, inf or NaN
    h = x > 0x7f800000u ? 0x7e00u | ((x >> 13) & 0x3ffu) : 0x7c00u;
  } else if (x < 0x38800000u) {            // below the smallest normal half
    // Adding 0.5 aligns the half subnormal's ULP (2^-24) to the float's last
    // bit of mantissa, so the float adder does the round-to-nearest-even.
    const float magic = std::bit_cast<float>(126u << 23);  // 0.5
    const float sum = std::bit_cast<float>(x) + magic;
    h = std::bit_cast<uint32_t>(sum) - (126u << 23);
  } else {
    const uint32_t odd = (x >> 13) & 1u;
    x += 0xc8000fffu + odd;                // rebias exponent (−112 << 23), round
    h = x >> 13;                           // a carry into the exponent gives inf
  }
  return static_cast<uint16_t>(h | sign);
}

inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: mant · 2^-24, exact in float
    const float mag = static_cast<float>(mant) * 0x1.0p-24f;
    return std::bit_cast<float>(std::bit_cast<uint32_t>(mag) | sign);
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

}  // namespace tqdb::index

#endif  // TQDB_INDEX_CODEC_FP16_H_
