// 256-bit fast-scan steps shared by the AVX2 kernel and the AVX-512 kernel's
// odd last pair; include only from files compiled with -mavx2.
//
// One nibble pair for 32 vectors: two pshufb lookups, summed as uint16 words
// without widening. A word w_e = r[2e] + 256·r[2e+1] of looked-up bytes is
// added to a and w >> 8 to b, so b = Σ r[2e+1] (odd vectors) and
// a − 256·b = Σ r[2e] (even vectors), exact modulo 2^16 (the sums fit).
#ifndef TQDB_INDEX_SCAN_INTERNAL_FASTSCAN_YMM_H_
#define TQDB_INDEX_SCAN_INTERNAL_FASTSCAN_YMM_H_

#include <immintrin.h>

#include <cstdint>

namespace tqdb::index::internal {
namespace {

inline __m256i LoadYmm(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Adds one pair (`codes`, 32 bytes) looked up in its low and high tables
// (32 bytes each) into a and b.
inline void AccumulatePairYmm(const uint8_t* codes, const uint8_t* lo_lut, const uint8_t* hi_lut,
                              __m256i* a, __m256i* b) {
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256i c = LoadYmm(codes);
  const __m256i r0 = _mm256_shuffle_epi8(LoadYmm(lo_lut), _mm256_and_si256(c, low));
  const __m256i r1 =
      _mm256_shuffle_epi8(LoadYmm(hi_lut), _mm256_and_si256(_mm256_srli_epi16(c, 4), low));
  *a = _mm256_add_epi16(*a, _mm256_add_epi16(r0, r1));
  *b = _mm256_add_epi16(*b, _mm256_add_epi16(_mm256_srli_epi16(r0, 8), _mm256_srli_epi16(r1, 8)));
}

// The 32 per-vector sums in vector order: vectors 0…15 in *first, 16…31 in
// *second.
inline void SumsYmm(__m256i a, __m256i b, __m256i* first, __m256i* second) {
  const __m256i even = _mm256_sub_epi16(a, _mm256_slli_epi16(b, 8));
  // Lane l holds vectors 16l … 16l+15 as (even e, odd e) words: interleave back.
  const __m256i lo = _mm256_unpacklo_epi16(even, b), hi = _mm256_unpackhi_epi16(even, b);
  *first = _mm256_permute2x128_si256(lo, hi, 0x20);
  *second = _mm256_permute2x128_si256(lo, hi, 0x31);
}

// Writes the 32 per-vector sums in vector order.
inline void StoreSumsYmm(__m256i a, __m256i b, uint16_t* out) {
  __m256i first, second;
  SumsYmm(a, b, &first, &second);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), first);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16), second);
}

}  // namespace
}  // namespace tqdb::index::internal

#endif  // TQDB_INDEX_SCAN_INTERNAL_FASTSCAN_YMM_H_
