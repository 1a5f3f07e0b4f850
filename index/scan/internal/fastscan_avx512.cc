// AVX-512 (BW) fast-scan accumulation (fastscan_kernels.h): the AVX2 scheme
// two nibble pairs at a time. A 512-bit register holds pairs p and p + 1 for
// all 32 vectors; their tables are joined from the per-pair 256-bit copies, and
// the two halves of the accumulators are folded together at the end.
#include <immintrin.h>

#include "index/scan/internal/fastscan_kernels.h"

namespace tqdb::index::internal {
namespace {

inline __m256i Load256(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

void Accumulate(const uint8_t* codes, const uint8_t* luts, int n_pairs, uint16_t* out) {
  const __m512i low = _mm512_set1_epi8(0x0f);
  __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
  int p = 0;
  for (; p + 2 <= n_pairs; p += 2) {
    const __m512i c = _mm512_loadu_si512(codes + 32 * p);
    const uint8_t* l = luts + 64 * p;
    const __m512i lo_lut = _mm512_inserti64x4(_mm512_castsi256_si512(Load256(l)), Load256(l + 64), 1);
    const __m512i hi_lut =
        _mm512_inserti64x4(_mm512_castsi256_si512(Load256(l + 32)), Load256(l + 96), 1);
    const __m512i r0 = _mm512_shuffle_epi8(lo_lut, _mm512_and_si512(c, low));
    const __m512i r1 = _mm512_shuffle_epi8(hi_lut, _mm512_and_si512(_mm512_srli_epi16(c, 4), low));
    a = _mm512_add_epi16(a, _mm512_add_epi16(r0, r1));
    b = _mm512_add_epi16(b, _mm512_add_epi16(_mm512_srli_epi16(r0, 8), _mm512_srli_epi16(r1, 8)));
  }
  __m256i a2 = _mm256_add_epi16(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
  __m256i b2 = _mm256_add_epi16(_mm512_castsi512_si256(b), _mm512_extracti64x4_epi64(b, 1));
  if (p < n_pairs) {  // an odd last pair, 256 bits wide
    const __m256i low2 = _mm256_set1_epi8(0x0f);
    const __m256i c = Load256(codes + 32 * p);
    const __m256i r0 = _mm256_shuffle_epi8(Load256(luts + 64 * p), _mm256_and_si256(c, low2));
    const __m256i r1 = _mm256_shuffle_epi8(Load256(luts + 64 * p + 32),
                                           _mm256_and_si256(_mm256_srli_epi16(c, 4), low2));
    a2 = _mm256_add_epi16(a2, _mm256_add_epi16(r0, r1));
    b2 = _mm256_add_epi16(b2, _mm256_add_epi16(_mm256_srli_epi16(r0, 8), _mm256_srli_epi16(r1, 8)));
  }
  const __m256i even = _mm256_sub_epi16(a2, _mm256_slli_epi16(b2, 8));
  const __m256i lo = _mm256_unpacklo_epi16(even, b2), hi = _mm256_unpackhi_epi16(even, b2);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permute2x128_si256(lo, hi, 0x20));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
}

}  // namespace

AccumulateFn AccumulateAvx512() { return &Accumulate; }

}  // namespace tqdb::index::internal
