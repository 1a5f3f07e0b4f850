#include "common/fp16.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>

#include "gtest/gtest.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TQDB_HAVE_F16C_INTRINSICS 1
#else
#define TQDB_HAVE_F16C_INTRINSICS 0
#endif

namespace tqdb::index {
namespace {

bool IsHalfNaN(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x03ffu) != 0; }
float FromBits(uint32_t u) { return std::bit_cast<float>(u); }
uint32_t Bits(float f) { return std::bit_cast<uint32_t>(f); }

#if TQDB_HAVE_F16C_INTRINSICS
__attribute__((target("f16c"))) uint16_t HardwareFloatToHalf(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float HardwareHalfToFloat(uint16_t h) { return _cvtsh_ss(h); }
bool HaveF16c() { return __builtin_cpu_supports("f16c"); }
#else
uint16_t HardwareFloatToHalf(float) { return 0; }
float HardwareHalfToFloat(uint16_t) { return 0.0f; }
bool HaveF16c() { return false; }
#endif

#define TQDB_F16C_OR_SKIP() \
  if (!HaveF16c()) GTEST_SKIP() << "no F16C on this CPU"

TEST(Fp16Test, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    const uint16_t half = static_cast<uint16_t>(h);
    if (IsHalfNaN(half)) continue;
    ASSERT_EQ(FloatToHalf(HalfToFloat(half)), half) << std::hex << "half 0x" << h;
  }
}

TEST(Fp16Test, EdgeCases) {
  const float kInf = std::numeric_limits<float>::infinity();
  struct Case {
    float f;
    uint16_t h;
  };
  const Case cases[] = {
      {0.0f, 0x0000},
      {-0.0f, 0x8000},
      {0x1p-24f, 0x0001},  // smallest subnormal half
      {-0x1p-24f, 0x8001},
      {0x3ffp-24f, 0x03ff},  // largest subnormal half
      {0x1p-14f, 0x0400},    // smallest normal half
      {65504.0f, 0x7bff},    // largest finite half
      {65519.99f, 0x7bff},   // just below the overflow tie
      {65520.0f, 0x7c00},    // the tie with 65536 rounds to even: inf
      {-65520.0f, 0xfc00},
      {kInf, 0x7c00},
      {-kInf, 0xfc00},
      {1e-30f, 0x0000},  // underflow to zero
      {-1e-30f, 0x8000},
      {FromBits(0x00000001u), 0x0000},  // float subnormal
      // Ties to even at subnormal level (ulp 2^-24) …
      {0x1p-25f, 0x0000},             // 0.5 ulp → 0
      {0x3p-25f, 0x0002},             // 1.5 ulp → 2
      {0x5p-25f, 0x0002},             // 2.5 ulp → 2
      {0x1p-14f - 0x1p-25f, 0x0400},  // 1023.5 ulp → 1024 = smallest normal
      {0x1p-25f + 0x1p-48f, 0x0001},  // just above the tie
      // … and at normal level (ulp 2^-10 at 1, 2 at 2048).
      {1.0f + 0x1p-11f, 0x3c00},
      {1.0f + 0x3p-11f, 0x3c02},
      {1.0f + 0x1p-11f - 0x1p-23f, 0x3c00},
      {1.0f + 0x1p-11f + 0x1p-23f, 0x3c01},
      {2049.0f, 0x6800},
      {2051.0f, 0x6802},
      {-2051.0f, 0xe802},
      {2.0f - 0x1p-12f, 0x4000},  // rounds up into the next binade
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FloatToHalf(c.f), c.h) << std::hexfloat << c.f;
    if (HaveF16c()) {
      EXPECT_EQ(HardwareFloatToHalf(c.f), c.h) << "hardware " << std::hexfloat << c.f;
    }
  }
  // NaN → quiet NaN, sign kept.
  for (uint32_t nan : {0x7fc00000u, 0x7f800001u, 0xffc00123u, 0x7fffffffu}) {
    const uint16_t h = FloatToHalf(FromBits(nan));
    EXPECT_TRUE(IsHalfNaN(h)) << std::hex << nan;
    EXPECT_EQ(h & 0x0200u, 0x0200u) << "not quiet: " << std::hex << nan;
    EXPECT_EQ(h & 0x8000u, (nan >> 16) & 0x8000u) << std::hex << nan;
  }
}

TEST(Fp16Test, FloatToHalfMatchesF16c) {
  TQDB_F16C_OR_SKIP();
  // Every 4099th bit pattern (4099 is prime, so the samples hit every
  // exponent and a spread of mantissa residues): ~1.05M floats.
  int checked = 0, mismatches = 0;
  char first[128] = "";
  for (uint64_t u = 0; u <= 0xffffffffu; u += 4099) {
    const float f = FromBits(static_cast<uint32_t>(u));
    if (std::isnan(f)) continue;
    ++checked;
    const uint16_t want = HardwareFloatToHalf(f), got = FloatToHalf(f);
    if (want != got && mismatches++ == 0) {
      std::snprintf(first, sizeof(first), "first: %a (0x%08x): hardware 0x%04x, FloatToHalf 0x%04x",
                    f, Bits(f), want, got);
    }
  }
  EXPECT_GT(checked, 1000000);
  EXPECT_EQ(mismatches, 0) << first;
}

TEST(Fp16Test, HalfToFloatMatchesF16c) {
  TQDB_F16C_OR_SKIP();
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    const uint16_t half = static_cast<uint16_t>(h);
    const float want = HardwareHalfToFloat(half), got = HalfToFloat(half);
    if (IsHalfNaN(half)) {  // payloads may differ; NaN-ness may not
      EXPECT_TRUE(std::isnan(want)) << std::hex << h;
      EXPECT_TRUE(std::isnan(got)) << std::hex << h;
      continue;
    }
    ASSERT_EQ(Bits(got), Bits(want)) << std::hex << "half 0x" << h;
  }
}

}  // namespace
}  // namespace tqdb::index
