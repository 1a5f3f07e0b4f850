#include "storage/dtype.h"

#include <cstring>

#include "index/codec/isa.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tqdb::storage::internal {
namespace {

#if defined(__x86_64__)
// vcvtph2ps / vcvtps2ph (round to nearest even: imm 0), 8 elements at a
// time; the scalar functions finish the tail. Bit-exact with them for every
// non-NaN value (common/fp16.h is pinned against F16C by the index tests;
// F16C quiets signaling NaNs, which the store rejects before converting).
__attribute__((target("avx2,f16c"))) void HalvesToFloatsF16c(const uint8_t* in, size_t n,
                                                             float* out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, in + 2 * i, 2);
    out[i] = HalfToFloat(h);
  }
}

__attribute__((target("avx2,f16c"))) void FloatsToHalvesF16c(const float* in, size_t n,
                                                             uint8_t* out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i), h);
  }
  for (; i < n; ++i) {
    const uint16_t h = FloatToHalf(in[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

bool HaveF16c() {
  static const bool have = index::IsaSupported(index::Isa::kAvx2);  // includes F16C
  return have;
}
#endif

}  // namespace

void HalvesToFloats(const uint8_t* in, size_t n, float* out) {
#if defined(__x86_64__)
  if (HaveF16c()) return HalvesToFloatsF16c(in, n, out);
#endif
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, in + 2 * i, 2);
    out[i] = HalfToFloat(h);
  }
}

void FloatsToHalves(const float* in, size_t n, uint8_t* out) {
#if defined(__x86_64__)
  if (HaveF16c()) return FloatsToHalvesF16c(in, n, out);
#endif
  for (size_t i = 0; i < n; ++i) {
    const uint16_t h = FloatToHalf(in[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

}  // namespace tqdb::storage::internal
