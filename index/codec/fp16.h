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

// Branch-free (loops over arrays of halves vectorize): the half's exponent
// and mantissa bits placed in a float's are that float times 2^-112, exactly,
// for normal and subnormal halves alike; infinity and NaN keep an all-ones
// exponent.
inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t bits = static_cast<uint32_t>(h & 0x7fffu) << 13;
  float mag = std::bit_cast<float>(bits) * 0x1.0p112f;
  if ((h & 0x7c00u) == 0x7c00u) mag = std::bit_cast<float>(bits | 0x7f800000u);
  return std::bit_cast<float>(std::bit_cast<uint32_t>(mag) | sign);
}

}  // namespace tqdb::index

#endif  // TQDB_INDEX_CODEC_FP16_H_
