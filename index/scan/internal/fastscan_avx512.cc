// AVX-512 (BW) fast-scan accumulation (fastscan_kernels.h): the AVX2 scheme
// two nibble pairs at a time. A 512-bit register holds pairs p and p + 1 for
// all 32 vectors; their tables are joined from the per-pair 256-bit copies, and
// the two halves of the accumulators are folded together at the end.
#include <immintrin.h>

#include "index/scan/internal/fastscan_kernels.h"
#include "index/scan/internal/fastscan_ymm.h"

namespace tqdb::index::internal {
namespace {

void Accumulate(const uint8_t* codes, const uint8_t* luts, int n_pairs, uint16_t* out) {
  const __m512i low = _mm512_set1_epi8(0x0f);
  __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
  int p = 0;
  for (; p + 2 <= n_pairs; p += 2) {
    const __m512i c = _mm512_loadu_si512(codes + 32 * p);
    const uint8_t* l = luts + 64 * p;
    const __m512i lo_lut = _mm512_inserti64x4(_mm512_castsi256_si512(LoadYmm(l)), LoadYmm(l + 64), 1);
    const __m512i hi_lut =
        _mm512_inserti64x4(_mm512_castsi256_si512(LoadYmm(l + 32)), LoadYmm(l + 96), 1);
    const __m512i r0 = _mm512_shuffle_epi8(lo_lut, _mm512_and_si512(c, low));
    const __m512i r1 = _mm512_shuffle_epi8(hi_lut, _mm512_and_si512(_mm512_srli_epi16(c, 4), low));
    a = _mm512_add_epi16(a, _mm512_add_epi16(r0, r1));
    b = _mm512_add_epi16(b, _mm512_add_epi16(_mm512_srli_epi16(r0, 8), _mm512_srli_epi16(r1, 8)));
  }
  __m256i a2 = _mm256_add_epi16(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
  __m256i b2 = _mm256_add_epi16(_mm512_castsi512_si256(b), _mm512_extracti64x4_epi64(b, 1));
  if (p < n_pairs) {  // an odd last pair, 256 bits wide
    AccumulatePairYmm(codes + kPairCodeBytes * p, luts + kPairLutBytes * p, &a2, &b2);
  }
  StoreSumsYmm(a2, b2, out);
}

}  // namespace

AccumulateFn AccumulateAvx512() { return &Accumulate; }

}  // namespace tqdb::index::internal
