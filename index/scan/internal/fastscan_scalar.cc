// Scalar reference of the fast-scan accumulation (fastscan_kernels.h).
#include "index/scan/internal/fastscan_kernels.h"

namespace tqdb::index::internal {

void AccumulateScalar(const uint8_t* codes, const uint8_t* luts, int n_pairs, uint16_t* out) {
  for (int v = 0; v < kBlockVectors; ++v) {
    uint32_t sum = 0;
    for (int p = 0; p < n_pairs; ++p) {
      const uint8_t byte = codes[p * kPairCodeBytes + v];
      sum += luts[LutOffset(p, false) + (byte & 15)] + luts[LutOffset(p, true) + (byte >> 4)];
    }
    out[v] = static_cast<uint16_t>(sum);
  }
}

void PairTableSumsScalar(const uint8_t* codes, const float* tables, int n_pairs, float* sums) {
  for (int v = 0; v < kBlockVectors; ++v) sums[v] = 0.0f;
  for (int p = 0; p < n_pairs; ++p) {
    const uint8_t* c = codes + static_cast<size_t>(p) * kPairCodeBytes;
    const float* t = tables + static_cast<size_t>(p) * kPairTableSize;
    for (int v = 0; v < kBlockVectors; ++v) sums[v] += t[c[v]];
  }
}

void AddScaledScalar(const uint16_t* acc, const float* w, float delta, float bias, float* score) {
  for (int v = 0; v < kBlockVectors; ++v) score[v] += w[v] * (delta * acc[v] + bias);
}

void DotScalar(const uint8_t* codes, const uint8_t* levels, const int8_t* const* queries, int nq,
               int n_pairs, const float* w, const float* delta, const float* bias, float* score,
               size_t stride) {
  for (int q = 0; q < nq; ++q) {
    for (int v = 0; v < kBlockVectors; ++v) {
      int32_t sum = 0;
      for (int p = 0; p < n_pairs; ++p) {
        const uint8_t byte = codes[p * kPairCodeBytes + v];
        sum += levels[byte & 15] * queries[q][2 * p] + levels[byte >> 4] * queries[q][2 * p + 1];
      }
      score[q * stride + v] += w[v] * (delta[q] * static_cast<float>(sum) + bias[q]);
    }
  }
}

namespace {
constexpr FastScanKernels kScalar = {
    &AccumulateScalar, &AccumulateEachQuery<&AccumulateScalar>,
    &PairTableSumsScalar, &AddScaledScalar,
    &DotScalar, &AccumulateThenAddScaled<&AccumulateScalar, &AddScaledScalar>};
}  // namespace

const FastScanKernels* GetFastScanKernels(Isa isa) {
  switch (ResolveIsa(isa)) {
    case Isa::kAvx512:
      return IsaSupported(Isa::kAvx512) ? FastScanAvx512() : nullptr;
    case Isa::kAvx2:
      return IsaSupported(Isa::kAvx2) ? FastScanAvx2() : nullptr;
    default:
      return &kScalar;
  }
}

}  // namespace tqdb::index::internal
