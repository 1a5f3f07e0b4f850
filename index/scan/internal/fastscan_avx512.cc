// AVX-512 (BW) fast-scan accumulation (fastscan_kernels.h): the AVX2 scheme
// two nibble pairs at a time. A 512-bit register holds pairs 2m and 2m + 1 for
// all 32 vectors, and the table layout puts both pairs' low (and high) tables
// in one 64-byte line, so each is a single load. The two halves of the
// accumulators are folded at the end; an odd last pair takes the 256-bit step.
#include "index/scan/internal/fastscan_kernels.h"
#include "index/scan/internal/fastscan_ymm.h"

namespace tqdb::index::internal {
namespace {

// kQ queries share each load and nibble split of the codes; their
// accumulators (2·kQ registers) stay in registers.
template <int kQ>
void AccumulateQueries(const uint8_t* codes, const uint8_t* const* luts, int n_pairs,
                       uint16_t* out) {
  const __m512i low = _mm512_set1_epi8(0x0f);
  __m512i a[kQ], b[kQ];
#pragma GCC unroll 8
  for (int q = 0; q < kQ; ++q) a[q] = b[q] = _mm512_setzero_si512();
  int p = 0;
  for (; p + 2 <= n_pairs; p += 2) {
    const __m512i c = _mm512_loadu_si512(codes + kPairCodeBytes * p);
    const __m512i lo = _mm512_and_si512(c, low);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), low);
#pragma GCC unroll 8
    for (int q = 0; q < kQ; ++q) {
      const uint8_t* l = luts[q] + LutOffset(p, false);
      const __m512i r0 = _mm512_shuffle_epi8(_mm512_loadu_si512(l), lo);
      const __m512i r1 = _mm512_shuffle_epi8(_mm512_loadu_si512(l + 64), hi);
      a[q] = _mm512_add_epi16(a[q], _mm512_add_epi16(r0, r1));
      b[q] = _mm512_add_epi16(
          b[q], _mm512_add_epi16(_mm512_srli_epi16(r0, 8), _mm512_srli_epi16(r1, 8)));
    }
  }
#pragma GCC unroll 8
  for (int q = 0; q < kQ; ++q) {
    __m256i a2 = _mm256_add_epi16(_mm512_castsi512_si256(a[q]), _mm512_extracti64x4_epi64(a[q], 1));
    __m256i b2 = _mm256_add_epi16(_mm512_castsi512_si256(b[q]), _mm512_extracti64x4_epi64(b[q], 1));
    if (p < n_pairs) {
      AccumulatePairYmm(codes + kPairCodeBytes * p, luts[q] + LutOffset(p, false),
                        luts[q] + LutOffset(p, true), &a2, &b2);
    }
    StoreSumsYmm(a2, b2, out + 32 * q);
  }
}

void Accumulate(const uint8_t* codes, const uint8_t* luts, int n_pairs, uint16_t* out) {
  AccumulateQueries<1>(codes, &luts, n_pairs, out);
}

void AccumulateMulti(const uint8_t* codes, const uint8_t* const* luts, int nq, int n_pairs,
                     uint16_t* out) {
  for (; nq >= 8; nq -= 8, luts += 8, out += 8 * 32) AccumulateQueries<8>(codes, luts, n_pairs, out);
  switch (nq) {
    case 7: return AccumulateQueries<7>(codes, luts, n_pairs, out);
    case 6: return AccumulateQueries<6>(codes, luts, n_pairs, out);
    case 5: return AccumulateQueries<5>(codes, luts, n_pairs, out);
    case 4: return AccumulateQueries<4>(codes, luts, n_pairs, out);
    case 3: return AccumulateQueries<3>(codes, luts, n_pairs, out);
    case 2: return AccumulateQueries<2>(codes, luts, n_pairs, out);
    case 1: return AccumulateQueries<1>(codes, luts, n_pairs, out);
    default: return;
  }
}

// Sixteen vectors a gather; lanes add in increasing p, as the scalar twin.
void PairTableSums(const uint8_t* codes, const float* tables, int n_pairs, float* sums) {
  __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
  for (int p = 0; p < n_pairs; ++p) {
    const uint8_t* c = codes + static_cast<size_t>(p) * kPairCodeBytes;
    const float* t = tables + static_cast<size_t>(p) * kPairTableSize;
    const __m512i lo = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c)));
    const __m512i hi =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 16)));
    a = _mm512_add_ps(a, _mm512_i32gather_ps(lo, t, 4));
    b = _mm512_add_ps(b, _mm512_i32gather_ps(hi, t, 4));
  }
  _mm512_storeu_ps(sums, a);
  _mm512_storeu_ps(sums + 16, b);
}

void AddScaled(const uint16_t* acc, const float* w, float delta, float bias, float* score) {
  const __m512 d = _mm512_set1_ps(delta), b = _mm512_set1_ps(bias);
  for (int v = 0; v < kBlockVectors; v += 16) {
    const __m512 a = _mm512_cvtepi32_ps(
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + v))));
    const __m512 x = _mm512_mul_ps(_mm512_loadu_ps(w + v), _mm512_add_ps(_mm512_mul_ps(d, a), b));
    _mm512_storeu_ps(score + v, _mm512_add_ps(_mm512_loadu_ps(score + v), x));
  }
}

constexpr FastScanKernels kAvx512 = {&Accumulate, &AccumulateMulti, &PairTableSums, &AddScaled};

}  // namespace

const FastScanKernels* FastScanAvx512() { return &kAvx512; }

}  // namespace tqdb::index::internal
