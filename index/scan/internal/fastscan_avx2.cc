// AVX2 fast-scan accumulation (fastscan_kernels.h), after FAISS's PQ4 fast
// scan: two pshufb lookups per nibble pair, summed as uint16 without widening.
// Treating the 32 looked-up bytes as 16 uint16 words w_e = r[2e] + 256·r[2e+1],
// a += w and b += w >> 8 give b = Σ r[2e+1] (odd vectors) and
// a − 256·b = Σ r[2e] (even vectors), exact modulo 2^16 (sums fit).
#include <immintrin.h>

#include "index/scan/internal/fastscan_kernels.h"

namespace tqdb::index::internal {
namespace {

void Accumulate(const uint8_t* codes, const uint8_t* luts, int n_pairs, uint16_t* out) {
  const __m256i low = _mm256_set1_epi8(0x0f);
  __m256i a = _mm256_setzero_si256(), b = _mm256_setzero_si256();
  for (int p = 0; p < n_pairs; ++p) {
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + 32 * p));
    const __m256i lo_lut = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(luts + 64 * p));
    const __m256i hi_lut =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(luts + 64 * p + 32));
    const __m256i r0 = _mm256_shuffle_epi8(lo_lut, _mm256_and_si256(c, low));
    const __m256i r1 = _mm256_shuffle_epi8(hi_lut, _mm256_and_si256(_mm256_srli_epi16(c, 4), low));
    a = _mm256_add_epi16(a, _mm256_add_epi16(r0, r1));
    b = _mm256_add_epi16(b, _mm256_add_epi16(_mm256_srli_epi16(r0, 8), _mm256_srli_epi16(r1, 8)));
  }
  const __m256i even = _mm256_sub_epi16(a, _mm256_slli_epi16(b, 8));
  // Lane l holds vectors 16l … 16l+15 as (even e, odd e) words: interleave back.
  const __m256i lo = _mm256_unpacklo_epi16(even, b), hi = _mm256_unpackhi_epi16(even, b);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permute2x128_si256(lo, hi, 0x20));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
}

}  // namespace

AccumulateFn AccumulateAvx2() { return &Accumulate; }

}  // namespace tqdb::index::internal
