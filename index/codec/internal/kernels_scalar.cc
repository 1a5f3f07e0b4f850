// Scalar reference kernels: the definition of every kernel's result.
// See kernels.h for the canonical orders the SIMD twins reproduce.
#include <cmath>
#include <cstring>

#include "index/codec/internal/kernels.h"

namespace tqdb::index::internal {
namespace {

constexpr int kLanes = 16;

float Dot(const float* a, const float* b, int n) {
  float acc[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] = std::fma(a[i + l], b[i + l], acc[l]);
  }
  if (i < n) {  // zero-padded last chunk, exactly as a masked SIMD load
    for (int l = 0; l < kLanes; ++l) {
      const bool in = i + l < n;
      acc[l] = std::fma(in ? a[i + l] : 0.0f, in ? b[i + l] : 0.0f, acc[l]);
    }
  }
  for (int w = kLanes / 2; w >= 1; w /= 2) {
    for (int l = 0; l < w; ++l) acc[l] = acc[l] + acc[l + w];
  }
  return acc[0];
}

void HadamardRound(float* x, int n, const float* signs, float scale, bool signs_after) {
  if (!signs_after) {
    for (int i = 0; i < n; ++i) x[i] *= signs[i];
  }
  for (int h = 1; h < n; h *= 2) {
    for (int i = 0; i < n; i += 2 * h) {
      for (int j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
  for (int i = 0; i < n; ++i) x[i] *= scale;
  if (signs_after) {
    for (int i = 0; i < n; ++i) x[i] *= signs[i];
  }
}

void Hadamard(float* x, int log2n, const float* signs, size_t sign_stride, int rounds,
              float scale, bool inverse) {
  for (int k = 0; k < rounds; ++k) {
    const int r = inverse ? rounds - 1 - k : k;
    HadamardRound(x, 1 << log2n, signs + r * sign_stride, scale, /*signs_after=*/inverse);
  }
}

void MatVec(const float* m, int rows, int cols, const float* x, float* y) {
  for (int i = 0; i < rows; ++i) y[i] = 0.0f;
  for (int j = 0; j < cols; ++j) {
    const float* col = m + static_cast<size_t>(j) * rows;
    for (int i = 0; i < rows; ++i) y[i] = std::fma(col[i], x[j], y[i]);
  }
}

void Quantize(const float* y, int n, float inv, const float* bounds, int bits, uint8_t* idx) {
  const int levels = 1 << bits;
  for (int i = 0; i < n; ++i) {
    const float u = y[i] * inv;
    int k = 0;  // binary search for #{bounds < u}
    for (int step = levels / 2; step >= 1; step /= 2) {
      if (bounds[k + step - 1] < u) k += step;
    }
    idx[i] = static_cast<uint8_t>(k);
  }
}

void Pack(const uint8_t* idx, int n, int bits, uint8_t* out) {
  uint64_t acc = 0;
  int filled = 0;
  for (int i = 0; i < n; ++i) {
    acc |= static_cast<uint64_t>(idx[i]) << filled;
    filled += bits;
    while (filled >= 8) {
      *out++ = static_cast<uint8_t>(acc);
      acc >>= 8;
      filled -= 8;
    }
  }
  if (filled > 0) *out = static_cast<uint8_t>(acc);
}

void Unpack(const uint8_t* in, int n, int bits, uint8_t* idx) {
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  uint64_t acc = 0;
  int filled = 0;
  for (int i = 0; i < n; ++i) {
    while (filled < bits) {
      acc |= static_cast<uint64_t>(*in++) << filled;
      filled += 8;
    }
    idx[i] = static_cast<uint8_t>(acc & mask);
    acc >>= bits;
    filled -= bits;
  }
}

void Lookup(const uint8_t* idx, int n, const float* table, int /*bits*/, float scale,
            float* out) {
  for (int i = 0; i < n; ++i) out[i] = scale * table[idx[i]];
}

void SignPack(const float* v, int n, uint8_t* out) {
  std::memset(out, 0, static_cast<size_t>(n + 7) / 8);
  for (int i = 0; i < n; ++i) {
    if (v[i] >= 0.0f) out[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
  }
}

constexpr Kernels kScalar = {
    Isa::kScalar, &Dot, &Hadamard, &MatVec, &Quantize, &Pack, &Unpack, &Lookup, &SignPack,
};

}  // namespace

const Kernels& ScalarKernels() { return kScalar; }

}  // namespace tqdb::index::internal
