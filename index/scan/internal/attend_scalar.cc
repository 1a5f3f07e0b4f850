// Scalar reference of the attention kernels (attend_kernels.h), and their
// run-time dispatch.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>

#include "index/scan/internal/attend_kernels.h"
#include "index/scan/internal/fastscan_kernels.h"

namespace tqdb::index::internal {

// Error of ExpScalar (and of the SIMD twins, which evaluate the same
// polynomial with FMAs) for x ∈ [−87, 0]:
//  - n = round(x·log2 e) ∈ [−126, 0], so 2^n is a normal float built exactly
//    from its exponent bits;
//  - r = x − n·ln2_hi − n·ln2_lo: ln2_hi = 355/512 has 9 significant bits, so
//    n·ln2_hi is exact and x − n·ln2_hi is exact (Sterbenz); the ln2_lo term
//    adds ≤ 2^-24·|n·ln2_lo| ≤ 2e-9 absolute error; |r| ≤ ln2/2 + 2e-9;
//  - Taylor degree 7: remainder ≤ |r|^8/8!·e^|r| ≤ 0.3466^8/40320·1.42 ≤ 7.4e-9;
//  - Horner in float: each of the 7 steps rounds once (≤ 2^-24 relative) and
//    the inner steps are damped by |r| ≤ 0.35, so the rounding adds up to
//    ≤ 2^-24·(1 + 1.35 + 1.35·0.35 + …) ≤ 2^-24·2.1 ≤ 1.3e-7; the float
//    coefficients 1/k! are off by ≤ 2^-24 relative each, ≤ 0.2e-7 in total;
//  - the final product with 2^n is exact (results below 2^-126 become
//    subnormal, an absolute error ≤ 2^-149, irrelevant next to the max weight 1).
// Total ≤ 1.6e-7 relative; the header states 4e-7 to leave room for the SIMD
// twins' different (fused) rounding, and the tests check 4e-7.
float ExpScalar(float x) {
  if (!(x >= -87.0f)) return 0.0f;  // also −∞
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;
  constexpr float kLn2Lo = -2.12194440e-4f;
  const float n = std::nearbyint(x * kLog2e);
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int>(n) + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, sizeof(two_n));
  return p * two_n;
}

namespace {

void BlockLogits(const uint8_t* codes, const float* tables, size_t table_stride, int nq,
                 int n_pairs, const float* w, float* out, size_t out_stride) {
  assert(nq >= 1 && n_pairs >= 0);
  for (int q = 0; q < nq; ++q) {
    const float* t = tables + q * table_stride;
    for (int v = 0; v < kBlockVectors; ++v) {
      float sum = 0.0f;
      for (int p = 0; p < n_pairs; ++p) {
        const uint8_t byte = codes[p * kPairCodeBytes + v];
        sum += t[32 * p + (byte & 15)];
        sum += t[32 * p + 16 + (byte >> 4)];
      }
      out[q * out_stride + v] += w[v] * sum;
    }
  }
}

void BlockLogitsDot(const uint8_t* codes, const float* centroids, const float* values,
                    size_t value_stride, int nq, int n_pairs, const float* w, float* out,
                    size_t out_stride) {
  assert(nq >= 1 && n_pairs >= 0);
  for (int q = 0; q < nq; ++q) {
    const float* y = values + q * value_stride;
    for (int v = 0; v < kBlockVectors; ++v) {
      float sum = 0.0f;
      for (int p = 0; p < n_pairs; ++p) {
        const uint8_t byte = codes[p * kPairCodeBytes + v];
        sum = std::fma(y[2 * p], centroids[byte & 15], sum);
        sum = std::fma(y[2 * p + 1], centroids[byte >> 4], sum);
      }
      out[q * out_stride + v] += w[v] * sum;
    }
  }
}

void ValuesPacked(const uint8_t* codes, size_t code_stride, int n, const float* w,
                  size_t w_stride, int nq, const float* table, int bits, int index_bytes,
                  float* acc, size_t acc_stride) {
  assert(bits == 1 || bits == 2 || bits == 4);
  assert(n >= 0 && nq >= 1 && index_bytes >= 1);
  const int f = 8 / bits;
  const int n_chunks = (index_bytes + kValueChunkBytes - 1) / kValueChunkBytes;
  for (int q = 0; q < nq; ++q) {
    float* a = acc + q * acc_stride;
    for (int t = 0; t < n; ++t) {
      const uint8_t* code = codes + t * code_stride;
      const float wt = w[q * w_stride + t];
      for (int c = 0; c < n_chunks; ++c) {
        for (int l = 0; l < kValueChunkBytes; ++l) {
          const int byte_index = c * kValueChunkBytes + l;
          const unsigned byte = byte_index < index_bytes ? code[byte_index] : 0;
          for (int k = 0; k < f; ++k) {
            const float v = table[(byte >> (k * bits)) & 15];
            a[c * kValueChunkBytes * f + k * kValueChunkBytes + l] += wt * v;
          }
        }
      }
    }
  }
}

void ValuesRows(const float* rows, int n, int d, const float* w, size_t w_stride, int nq,
                float* acc, size_t acc_stride) {
  assert(d >= 1 && n >= 0 && nq >= 1);
  for (int q = 0; q < nq; ++q) {
    float* a = acc + q * acc_stride;
    for (int t = 0; t < n; ++t) {
      const float wt = w[q * w_stride + t];
      for (int j = 0; j < d; ++j) a[j] += wt * rows[static_cast<size_t>(t) * d + j];
    }
  }
}

float ExpWeights(const float* x, int n, float max, const float* scale, float* p) {
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float e = ExpScalar(x[i] - max);
    sum += e;
    p[i] = scale != nullptr ? e * scale[i] : e;
  }
  return sum;
}

float Max(const float* x, int n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int i = 0; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

constexpr AttendKernels kScalar = {&BlockLogits, &BlockLogitsDot, &ValuesPacked, &ValuesRows, &ExpWeights, &Max};

}  // namespace

const AttendKernels* AttendScalar() { return &kScalar; }

const AttendKernels* GetAttendKernels(Isa isa) {
  switch (ResolveIsa(isa)) {
    case Isa::kAvx512:
      return IsaSupported(Isa::kAvx512) ? AttendAvx512() : nullptr;
    case Isa::kAvx2:
      return IsaSupported(Isa::kAvx2) ? AttendAvx2() : nullptr;
    default:
      return &kScalar;
  }
}

}  // namespace tqdb::index::internal
