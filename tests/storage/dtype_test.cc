// The conversions every write goes through (storage/dtype.h): ToFloat equals
// the per-element definition for every 16-bit pattern (NaN payloads aside:
// the store rejects non-finite input before converting), and FirstNonFinite
// finds the first infinity or NaN wherever it is, in every dtype.
#include "storage/dtype.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace tqdb::storage {
namespace {

std::vector<uint8_t> Bytes(const void* p, size_t n) {
  std::vector<uint8_t> out(n);
  std::memcpy(out.data(), p, n);
  return out;
}

TEST(DTypeTest, ToFloatEqualsElementAtForEveryHalfPattern) {
  std::vector<uint16_t> all(1 << 16);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
  std::vector<uint8_t> bytes = Bytes(all.data(), 2 * all.size());
  // Padded to as many f32s: GCC's bounds warning cannot see dtype is never f32.
  bytes.resize(4 * all.size());
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    std::vector<float> out(all.size());
    ToFloat(bytes.data(), dtype, 0, all.size(), out.data());
    for (size_t i = 0; i < all.size(); ++i) {
      const float want = ElementAt(bytes.data(), dtype, i);
      if (std::isnan(want)) {  // F16C quiets signaling NaNs: NaN-ness must agree
        ASSERT_TRUE(std::isnan(out[i])) << "pattern 0x" << std::hex << i;
        continue;
      }
      // Bit patterns, so signed zeros compare too.
      uint32_t got_bits, want_bits;
      std::memcpy(&got_bits, &out[i], 4);
      std::memcpy(&want_bits, &want, 4);
      ASSERT_EQ(got_bits, want_bits) << "pattern 0x" << std::hex << i;
    }
    // An offset start reads the right elements.
    std::vector<float> part(5);
    ToFloat(bytes.data(), dtype, 1000, 5, part.data());
    for (size_t i = 0; i < 5; ++i) EXPECT_EQ(part[i], out[1000 + i]);
  }
}

TEST(DTypeTest, FromFloatRoundsToNearestEven) {
  // f16: what FloatToHalf gives (itself pinned against F16C in the index
  // tests); bf16: ties go to the even neighbour, the rest to the nearest.
  const float x[] = {1.0f, -2.5f, 65504.0f, 1e-6f, 3.14159265f,
                     std::bit_cast<float>(0x3f808000u),   // tie, even below: 0x3f80
                     std::bit_cast<float>(0x3f818000u),   // tie, odd below: 0x3f82
                     std::bit_cast<float>(0x3f808001u),   // just above a tie: 0x3f81
                     std::numeric_limits<float>::infinity()};
  constexpr size_t kN = sizeof(x) / sizeof(x[0]);
  std::vector<uint8_t> f16(2 * kN), bf16(2 * kN), f32(4 * kN);
  FromFloat(x, kN, DType::kF16, f16.data());
  FromFloat(x, kN, DType::kBF16, bf16.data());
  FromFloat(x, kN, DType::kF32, f32.data());
  EXPECT_EQ(0, std::memcmp(f32.data(), x, sizeof(x)));
  for (size_t i = 0; i < kN; ++i) {
    uint16_t h, b;
    std::memcpy(&h, &f16[2 * i], 2);
    std::memcpy(&b, &bf16[2 * i], 2);
    EXPECT_EQ(h, FloatToHalf(x[i])) << i;
    EXPECT_EQ(b, FloatToBf16(x[i])) << i;
  }
  uint16_t b;
  std::memcpy(&b, &bf16[2 * 5], 2);
  EXPECT_EQ(b, 0x3f80);
  std::memcpy(&b, &bf16[2 * 6], 2);
  EXPECT_EQ(b, 0x3f82);
  std::memcpy(&b, &bf16[2 * 7], 2);
  EXPECT_EQ(b, 0x3f81);
  std::memcpy(&b, &bf16[2 * 8], 2);
  EXPECT_EQ(b, 0x7f80);  // infinity stays infinity
}

// FromFloat to f16 (F16C where the CPU has it) equals FloatToHalf, its
// scalar twin, on every 4099th float bit pattern (every exponent, a spread of
// mantissas, both signs) except NaNs, at lengths that leave a scalar tail.
TEST(DTypeTest, FromFloatF16EqualsTheScalarConversion) {
  std::vector<float> x;
  for (uint64_t u = 0; u <= 0xffffffffu; u += 4099) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(u));
    if (!std::isnan(f)) x.push_back(f);
  }
  for (size_t n : {x.size(), size_t{7}, size_t{9}}) {
    std::vector<uint8_t> out(2 * n);
    FromFloat(x.data(), n, DType::kF16, out.data());
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, &out[2 * i], 2);
      ASSERT_EQ(h, FloatToHalf(x[i])) << "float 0x" << std::hex << std::bit_cast<uint32_t>(x[i]);
    }
  }
}

TEST(DTypeTest, FirstNonFiniteFindsTheFirstWherever) {
  constexpr size_t kN = 3000;  // spans several check blocks
  const float specials[] = {std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN()};
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (float special : specials) {
      for (size_t at : {size_t{0}, size_t{1023}, size_t{1024}, kN - 1}) {
        std::vector<float> x(kN, 65504.0f);  // the largest finite half
        x[at] = special;
        if (at + 5 < kN) x[at + 5] = special;  // a later one does not matter
        std::vector<uint8_t> bytes;
        if (dtype == DType::kF32) {
          bytes = Bytes(x.data(), 4 * kN);
        } else {
          std::vector<uint16_t> h(kN);
          for (size_t i = 0; i < kN; ++i) {
            uint32_t bits;
            std::memcpy(&bits, &x[i], 4);
            h[i] = dtype == DType::kF16 ? FloatToHalf(x[i])
                                        : static_cast<uint16_t>(bits >> 16);
          }
          bytes = Bytes(h.data(), 2 * kN);
        }
        EXPECT_EQ(FirstNonFinite(bytes.data(), dtype, kN), at)
            << "dtype " << static_cast<int>(dtype) << " value " << special << " at " << at;
        EXPECT_EQ(FirstNonFinite(bytes.data(), dtype, at), at) << "all finite before it";
      }
    }
  }
}

}  // namespace
}  // namespace tqdb::storage
