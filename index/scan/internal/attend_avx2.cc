// AVX2 attention kernels (attend_kernels.h): the AVX-512 scheme on 8 lanes.
// A 16-float table spans two ymm; Lookup16 permutes both halves (vpermps reads
// index bits 0…2) and blends on index bit 3.
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>

#include "index/scan/internal/attend_kernels.h"
#include "index/scan/internal/fastscan_kernels.h"

namespace tqdb::index::internal {
namespace {

inline __m256 Lookup16(__m256i idx, __m256 lo, __m256 hi) {
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx), _mm256_permutevar8x32_ps(hi, idx),
                          _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

inline __m256i Load8Bytes(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// out[q·out_stride + v] += w[v]·a[q][v] for the block's 32 tokens (8 a ymm).
template <int kQ>
inline void AddWeightedLogits(const __m256 (&a)[kQ][4], const float* w, float* out,
                              size_t out_stride) {
#pragma GCC unroll 4
  for (int q = 0; q < kQ; ++q) {
    float* o = out + q * out_stride;
    for (int i = 0; i < 4; ++i) {
      const __m256 x = _mm256_mul_ps(_mm256_loadu_ps(w + 8 * i), a[q][i]);
      _mm256_storeu_ps(o + 8 * i, _mm256_add_ps(_mm256_loadu_ps(o + 8 * i), x));
    }
  }
}

template <int kQ>
void BlockLogitsQ(const uint8_t* codes, const float* tables, size_t table_stride, int n_pairs,
                  const float* w, float* out, size_t out_stride) {
  __m256 a[kQ][4];
#pragma GCC unroll 4
  for (int q = 0; q < kQ; ++q) {
    for (int i = 0; i < 4; ++i) a[q][i] = _mm256_setzero_ps();
  }
  for (int p = 0; p < n_pairs; ++p) {
    const uint8_t* c = codes + kPairCodeBytes * p;
    __m256i lo[4], hi[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      lo[i] = Load8Bytes(c + 8 * i);
      hi[i] = _mm256_srli_epi32(lo[i], 4);
    }
#pragma GCC unroll 4
    for (int q = 0; q < kQ; ++q) {
      const float* t = tables + q * table_stride + 32 * p;
      const __m256 t0 = _mm256_loadu_ps(t), t1 = _mm256_loadu_ps(t + 8);
      const __m256 t2 = _mm256_loadu_ps(t + 16), t3 = _mm256_loadu_ps(t + 24);
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        a[q][i] = _mm256_add_ps(a[q][i], Lookup16(lo[i], t0, t1));
        a[q][i] = _mm256_add_ps(a[q][i], Lookup16(hi[i], t2, t3));
      }
    }
  }
  AddWeightedLogits<kQ>(a, w, out, out_stride);
}

void BlockLogits(const uint8_t* codes, const float* tables, size_t table_stride, int nq,
                 int n_pairs, const float* w, float* out, size_t out_stride) {
  assert(nq >= 1 && n_pairs >= 0);
  for (; nq >= 2; nq -= 2, tables += 2 * table_stride, out += 2 * out_stride) {
    BlockLogitsQ<2>(codes, tables, table_stride, n_pairs, w, out, out_stride);
  }
  if (nq == 1) BlockLogitsQ<1>(codes, tables, table_stride, n_pairs, w, out, out_stride);
}

// Dot-run logits: each group of 8 lanes' nibbles decoded once (Lookup16 on
// the centroid halves), then one FMA per query.
template <int kQ>
void BlockLogitsDotQ(const uint8_t* codes, __m256 c_lo, __m256 c_hi, const float* values,
                     size_t value_stride, int n_pairs, const float* w, float* out,
                     size_t out_stride) {
  __m256 a[kQ][4];
#pragma GCC unroll 4
  for (int q = 0; q < kQ; ++q) {
    for (int i = 0; i < 4; ++i) a[q][i] = _mm256_setzero_ps();
  }
  for (int p = 0; p < n_pairs; ++p) {
    const uint8_t* c = codes + kPairCodeBytes * p;
    __m256 lo[4], hi[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const __m256i idx = Load8Bytes(c + 8 * i);
      lo[i] = Lookup16(idx, c_lo, c_hi);
      hi[i] = Lookup16(_mm256_srli_epi32(idx, 4), c_lo, c_hi);
    }
#pragma GCC unroll 4
    for (int q = 0; q < kQ; ++q) {
      const float* y = values + q * value_stride + 2 * p;
      const __m256 yl = _mm256_set1_ps(y[0]), yh = _mm256_set1_ps(y[1]);
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        a[q][i] = _mm256_fmadd_ps(yh, hi[i], _mm256_fmadd_ps(yl, lo[i], a[q][i]));
      }
    }
  }
  AddWeightedLogits<kQ>(a, w, out, out_stride);
}

void BlockLogitsDot(const uint8_t* codes, const float* centroids, const float* values,
                    size_t value_stride, int nq, int n_pairs, const float* w, float* out,
                    size_t out_stride) {
  assert(nq >= 1 && n_pairs >= 0);
  const __m256 c_lo = _mm256_loadu_ps(centroids), c_hi = _mm256_loadu_ps(centroids + 8);
  for (; nq >= 2; nq -= 2, values += 2 * value_stride, out += 2 * out_stride) {
    BlockLogitsDotQ<2>(codes, c_lo, c_hi, values, value_stride, n_pairs, w, out, out_stride);
  }
  if (nq == 1) {
    BlockLogitsDotQ<1>(codes, c_lo, c_hi, values, value_stride, n_pairs, w, out, out_stride);
  }
}

// Half h of a chunk: 8 index bytes → positions k·16 + 8h + [0, 8) of the
// chunk, for kQ queries over n tokens. `bytes` < 8 reads a zero-padded copy.
template <int kBits, int kQ>
void ValuesHalf(const uint8_t* codes, size_t code_stride, int n, const float* w, size_t w_stride,
                __m256 t_lo, __m256 t_hi, int bytes, float* acc, size_t acc_stride) {
  constexpr int kF = 8 / kBits;
  __m256 a[kQ][kF];
#pragma GCC unroll 8
  for (int q = 0; q < kQ; ++q) {
#pragma GCC unroll 8
    for (int k = 0; k < kF; ++k) a[q][k] = _mm256_loadu_ps(acc + q * acc_stride + 16 * k);
  }
  for (int t = 0; t < n; ++t) {
    const uint8_t* code = codes + t * code_stride;
    __m256i x;
    if (bytes >= 8) {
      x = Load8Bytes(code);
    } else {
      uint8_t buf[8] = {};
      std::memcpy(buf, code, static_cast<size_t>(bytes));
      x = Load8Bytes(buf);
    }
#pragma GCC unroll 8
    for (int k = 0; k < kF; ++k) {
      const __m256 v = Lookup16(_mm256_srli_epi32(x, k * kBits), t_lo, t_hi);
#pragma GCC unroll 8
      for (int q = 0; q < kQ; ++q) {
        a[q][k] = _mm256_fmadd_ps(_mm256_set1_ps(w[q * w_stride + t]), v, a[q][k]);
      }
    }
  }
#pragma GCC unroll 8
  for (int q = 0; q < kQ; ++q) {
#pragma GCC unroll 8
    for (int k = 0; k < kF; ++k) _mm256_storeu_ps(acc + q * acc_stride + 16 * k, a[q][k]);
  }
}

template <int kBits, int kQ>
void ValuesPackedQ(const uint8_t* codes, size_t code_stride, int n, const float* w,
                   size_t w_stride, __m256 t_lo, __m256 t_hi, int index_bytes, float* acc,
                   size_t acc_stride) {
  constexpr int kPerChunk = kValueChunkBytes * 8 / kBits;
  for (int c = 0; c * kValueChunkBytes < index_bytes; ++c) {
    for (int h = 0; h < 2; ++h) {
      // Bytes past the stream read as zeros, as the scalar twin reads them.
      const int first = c * kValueChunkBytes + 8 * h;
      ValuesHalf<kBits, kQ>(codes + first, code_stride, n, w, w_stride, t_lo, t_hi,
                            std::clamp(index_bytes - first, 0, 8), acc + c * kPerChunk + 8 * h,
                            acc_stride);
    }
  }
}

template <int kBits>
void ValuesPackedBits(const uint8_t* codes, size_t code_stride, int n, const float* w,
                      size_t w_stride, int nq, __m256 t_lo, __m256 t_hi, int index_bytes,
                      float* acc, size_t acc_stride) {
  constexpr int kM = kBits;  // kM·8/kBits = 8 accumulators
  for (; nq >= kM; nq -= kM, w += kM * w_stride, acc += kM * acc_stride) {
    ValuesPackedQ<kBits, kM>(codes, code_stride, n, w, w_stride, t_lo, t_hi, index_bytes, acc,
                             acc_stride);
  }
  if constexpr (kM > 2) {
    if (nq >= 2) {
      ValuesPackedQ<kBits, 2>(codes, code_stride, n, w, w_stride, t_lo, t_hi, index_bytes, acc,
                              acc_stride);
      nq -= 2, w += 2 * w_stride, acc += 2 * acc_stride;
    }
  }
  if (nq >= 1) {
    ValuesPackedQ<kBits, 1>(codes, code_stride, n, w, w_stride, t_lo, t_hi, index_bytes, acc,
                            acc_stride);
  }
}

void ValuesPacked(const uint8_t* codes, size_t code_stride, int n, const float* w,
                  size_t w_stride, int nq, const float* table, int bits, int index_bytes,
                  float* acc, size_t acc_stride) {
  assert(n >= 0 && nq >= 1 && index_bytes >= 1);
  const __m256 lo = _mm256_loadu_ps(table), hi = _mm256_loadu_ps(table + 8);
  switch (bits) {
    case 4:
      return ValuesPackedBits<4>(codes, code_stride, n, w, w_stride, nq, lo, hi, index_bytes, acc,
                                 acc_stride);
    case 2:
      return ValuesPackedBits<2>(codes, code_stride, n, w, w_stride, nq, lo, hi, index_bytes, acc,
                                 acc_stride);
    case 1:
      return ValuesPackedBits<1>(codes, code_stride, n, w, w_stride, nq, lo, hi, index_bytes, acc,
                                 acc_stride);
    default:
      assert(false && "bits must be 1, 2 or 4");
  }
}

inline __m256i TailMask(int left) {  // lanes i < left
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Up to 32 coordinates (4 ymm, masked at the end of the row) for kQ queries.
template <int kQ>
void ValuesRowsQ(const float* rows, int n, int d, const float* w, size_t w_stride, float* acc,
                 size_t acc_stride) {
  for (int j0 = 0; j0 < d; j0 += 32) {
    __m256i m[4];
    for (int i = 0; i < 4; ++i) m[i] = TailMask(d - j0 - 8 * i);
    __m256 a[kQ][4];
#pragma GCC unroll 4
    for (int q = 0; q < kQ; ++q) {
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) a[q][i] = _mm256_maskload_ps(acc + q * acc_stride + j0 + 8 * i, m[i]);
    }
    for (int t = 0; t < n; ++t) {
      const float* r = rows + static_cast<size_t>(t) * d + j0;
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        const __m256 v = _mm256_maskload_ps(r + 8 * i, m[i]);
#pragma GCC unroll 4
        for (int q = 0; q < kQ; ++q) {
          a[q][i] = _mm256_fmadd_ps(_mm256_set1_ps(w[q * w_stride + t]), v, a[q][i]);
        }
      }
    }
#pragma GCC unroll 4
    for (int q = 0; q < kQ; ++q) {
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) _mm256_maskstore_ps(acc + q * acc_stride + j0 + 8 * i, m[i], a[q][i]);
    }
  }
}

void ValuesRows(const float* rows, int n, int d, const float* w, size_t w_stride, int nq,
                float* acc, size_t acc_stride) {
  assert(d >= 1 && n >= 0 && nq >= 1);
  for (; nq >= 2; nq -= 2, w += 2 * w_stride, acc += 2 * acc_stride) {
    ValuesRowsQ<2>(rows, n, d, w, w_stride, acc, acc_stride);
  }
  if (nq == 1) ValuesRowsQ<1>(rows, n, d, w, w_stride, acc, acc_stride);
}

// ExpScalar's polynomial (attend_scalar.cc has the error bound) on 8 lanes.
inline __m256 Exp8(__m256 x) {
  const __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ);
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(live, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

float ExpWeights(const float* x, int n, float max, const float* scale, float* p) {
  const __m256 m = _mm256_set1_ps(max);
  __m256 sum = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = Exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
    sum = _mm256_add_ps(sum, e);
    _mm256_storeu_ps(p + i, scale != nullptr ? _mm256_mul_ps(e, _mm256_loadu_ps(scale + i)) : e);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  float total = 0.0f;
  for (float l : lanes) total += l;
  for (; i < n; ++i) {  // the tail through the same polynomial, one lane used
    const float e = _mm256_cvtss_f32(Exp8(_mm256_set1_ps(x[i] - max)));
    total += e;
    p[i] = scale != nullptr ? e * scale[i] : e;
  }
  return total;
}

float Max(const float* x, int n) {
  __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  int i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float best = lanes[0];
  for (int l = 1; l < 8; ++l) best = std::max(best, lanes[l]);
  for (; i < n; ++i) best = std::max(best, x[i]);
  return best;
}

constexpr AttendKernels kAvx2 = {&BlockLogits, &BlockLogitsDot, &ValuesPacked, &ValuesRows, &ExpWeights, &Max};

}  // namespace

const AttendKernels* AttendAvx2() { return &kAvx2; }

}  // namespace tqdb::index::internal
