// The conversions every write goes through (storage/dtype.h): ToFloat equals
// the per-element definition for every 16-bit pattern, and FirstNonFinite
// finds the first infinity or NaN wherever it is, in every dtype.
#include "storage/dtype.h"

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
      // Bit patterns, so NaNs compare too.
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
            h[i] = dtype == DType::kF16 ? index::FloatToHalf(x[i])
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
