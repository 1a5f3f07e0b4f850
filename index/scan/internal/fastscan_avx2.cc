// AVX2 fast-scan accumulation (fastscan_kernels.h), after FAISS's PQ4 fast
// scan: one 256-bit step per nibble pair (fastscan_ymm.h).
#include "index/scan/internal/fastscan_kernels.h"
#include "index/scan/internal/fastscan_ymm.h"

namespace tqdb::index::internal {
namespace {

void Accumulate(const uint8_t* codes, const uint8_t* luts, int n_pairs, uint16_t* out) {
  __m256i a = _mm256_setzero_si256(), b = _mm256_setzero_si256();
  for (int p = 0; p < n_pairs; ++p) {
    AccumulatePairYmm(codes + kPairCodeBytes * p, luts + LutOffset(p, false),
                      luts + LutOffset(p, true), &a, &b);
  }
  StoreSumsYmm(a, b, out);
}

// Eight vectors a gather; lanes add in increasing p, as the scalar twin.
void PairTableSums(const uint8_t* codes, const float* tables, int n_pairs, float* sums) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  for (int p = 0; p < n_pairs; ++p) {
    const uint8_t* c = codes + static_cast<size_t>(p) * kPairCodeBytes;
    const float* t = tables + static_cast<size_t>(p) * kPairTableSize;
    for (int e = 0; e < 4; ++e) {
      const __m256i idx =
          _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + 8 * e)));
      acc[e] = _mm256_add_ps(acc[e], _mm256_i32gather_ps(t, idx, 4));
    }
  }
  for (int e = 0; e < 4; ++e) _mm256_storeu_ps(sums + 8 * e, acc[e]);
}

// score[v] += w[v]·(d·sum[v] + b) for eight int32 sums, separate multiplies
// and adds as the scalar twins (fastscan_kernels.h).
inline void AddScaledSums(__m256i sum, const float* w, __m256 d, __m256 b, float* score) {
  const __m256 x = _mm256_mul_ps(_mm256_loadu_ps(w),
                                 _mm256_add_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(sum)), b));
  _mm256_storeu_ps(score, _mm256_add_ps(_mm256_loadu_ps(score), x));
}

void AddScaled(const uint16_t* acc, const float* w, float delta, float bias, float* score) {
  const __m256 d = _mm256_set1_ps(delta), b = _mm256_set1_ps(bias);
  for (int v = 0; v < kBlockVectors; v += 8) {
    const __m128i sums = _mm_loadu_si128(reinterpret_cast<const __m128i*>(acc + v));
    AddScaledSums(_mm256_cvtepu16_epi32(sums), w + v, d, b, score + v);
  }
}

// kQ ≤ 2 queries a pass over the codes (their 4·kQ accumulators and the
// decoded pair fit the 16 registers). A pair's looked-up levels are spread to
// 32-bit lanes [level of the low nibble, level of the high one] as int16 and
// multiplied with the query's two values by pmaddwd: exact int32 products.
template <int kQ>
void DotQueries(const uint8_t* codes, const uint8_t* levels, const int8_t* const* queries,
                int n_pairs, const float* w, const float* delta, const float* bias, float* score,
                size_t stride) {
  const __m256i low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
  const __m256i table =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(levels)));
  // acc[q][e]: lanes [v 4e…4e+3 | v 16+4e…16+4e+3] for e = 0, 1 and
  // [v 8+4(e−2)… | v 24+4(e−2)…] for e = 2, 3.
  __m256i acc[kQ][4];
  for (int q = 0; q < kQ; ++q) {
    for (__m256i& a : acc[q]) a = zero;
  }
  for (int p = 0; p < n_pairs; ++p) {
    const __m256i c = LoadYmm(codes + kPairCodeBytes * p);
    const __m256i lv = _mm256_shuffle_epi8(table, _mm256_and_si256(c, low));
    const __m256i hv = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(c, 4), low));
    const __m256i a = _mm256_unpacklo_epi8(lv, hv), b = _mm256_unpackhi_epi8(lv, hv);
    const __m256i x[4] = {_mm256_unpacklo_epi8(a, zero), _mm256_unpackhi_epi8(a, zero),
                          _mm256_unpacklo_epi8(b, zero), _mm256_unpackhi_epi8(b, zero)};
    for (int q = 0; q < kQ; ++q) {
      const uint16_t q0 = static_cast<uint16_t>(int16_t{queries[q][2 * p]});
      const uint16_t q1 = static_cast<uint16_t>(int16_t{queries[q][2 * p + 1]});
      const __m256i pair = _mm256_set1_epi32(static_cast<int32_t>(q0 | uint32_t{q1} << 16));
      for (int e = 0; e < 4; ++e) {
        acc[q][e] = _mm256_add_epi32(acc[q][e], _mm256_madd_epi16(x[e], pair));
      }
    }
  }
  for (int q = 0; q < kQ; ++q) {  // vectors 0…7, 8…15, 16…23, 24…31
    const __m256 d = _mm256_set1_ps(delta[q]), b = _mm256_set1_ps(bias[q]);
    float* out = score + q * stride;
    AddScaledSums(_mm256_permute2x128_si256(acc[q][0], acc[q][1], 0x20), w, d, b, out);
    AddScaledSums(_mm256_permute2x128_si256(acc[q][2], acc[q][3], 0x20), w + 8, d, b, out + 8);
    AddScaledSums(_mm256_permute2x128_si256(acc[q][0], acc[q][1], 0x31), w + 16, d, b, out + 16);
    AddScaledSums(_mm256_permute2x128_si256(acc[q][2], acc[q][3], 0x31), w + 24, d, b, out + 24);
  }
}

constexpr FastScanKernels kAvx2 = {&Accumulate,    &AccumulateEachQuery<&Accumulate>,
                                   &PairTableSums, &AddScaled,
                                   &DotAvx2,       &AccumulateThenAddScaled<&Accumulate, &AddScaled>};

}  // namespace

void DotAvx2(const uint8_t* codes, const uint8_t* levels, const int8_t* const* queries, int nq,
             int n_pairs, const float* w, const float* delta, const float* bias, float* score,
             size_t stride) {
  for (; nq >= 2; nq -= 2, queries += 2, delta += 2, bias += 2, score += 2 * stride) {
    DotQueries<2>(codes, levels, queries, n_pairs, w, delta, bias, score, stride);
  }
  if (nq == 1) DotQueries<1>(codes, levels, queries, n_pairs, w, delta, bias, score, stride);
}

const FastScanKernels* FastScanAvx2() { return &kAvx2; }

}  // namespace tqdb::index::internal
