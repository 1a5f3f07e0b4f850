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

void AddScaled(const uint16_t* acc, const float* w, float delta, float bias, float* score) {
  const __m256 d = _mm256_set1_ps(delta), b = _mm256_set1_ps(bias);
  for (int v = 0; v < kBlockVectors; v += 8) {
    const __m256 a = _mm256_cvtepi32_ps(
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(acc + v))));
    const __m256 x = _mm256_mul_ps(_mm256_loadu_ps(w + v), _mm256_add_ps(_mm256_mul_ps(d, a), b));
    _mm256_storeu_ps(score + v, _mm256_add_ps(_mm256_loadu_ps(score + v), x));
  }
}

constexpr FastScanKernels kAvx2 = {&Accumulate, &AccumulateEachQuery<&Accumulate>,
                                   &PairTableSums, &AddScaled};

}  // namespace

const FastScanKernels* FastScanAvx2() { return &kAvx2; }

}  // namespace tqdb::index::internal
