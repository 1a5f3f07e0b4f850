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

constexpr FastScanKernels kAvx2 = {&Accumulate, &AccumulateEachQuery<&Accumulate>};

}  // namespace

const FastScanKernels* FastScanAvx2() { return &kAvx2; }

}  // namespace tqdb::index::internal
