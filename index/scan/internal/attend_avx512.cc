// AVX-512 attention kernels (attend_kernels.h).
//
// Logits: a zmm holds 16 vectors' nibbles of one group as dwords (zero-
// extended bytes; vpermps reads only index bits 0…3, so the low nibble needs
// no mask and the high one a shift); one vpermps per group, query and 16
// vectors looks up the group's 16-float table. kQ queries share the code loads.
//
// Values: a chunk of 16 index bytes becomes 16 dwords; shifting by k·b and
// one vpermps gives the centroids of field k for the 16 bytes, and kQ·f
// accumulators (f = 8/b fields a byte) take one FMA each per token.
#include <immintrin.h>

#include <cassert>
#include <limits>

#include "index/scan/internal/attend_kernels.h"
#include "index/scan/internal/fastscan_kernels.h"
#include "index/scan/internal/query_chunks.h"

namespace tqdb::index::internal {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// A pair's 32 code bytes as two zmm of 16 zero-extended dwords (tokens 0…15
// and 16…31); vpermps reads index bits 0…3, so the low nibble needs no mask.
inline void LoadPairDwords(const uint8_t* c, __m512i* lo0, __m512i* lo1) {
  *lo0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c)));
  *lo1 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 16)));
}

// out[q·out_stride + v] += w[v]·a[q][v] for the block's 32 tokens.
template <int kQ>
inline void AddWeightedLogits(const __m512 (&a)[kQ][2], const float* w, float* out,
                              size_t out_stride) {
  const __m512 w0 = _mm512_loadu_ps(w), w1 = _mm512_loadu_ps(w + 16);
#pragma GCC unroll 8
  for (int q = 0; q < kQ; ++q) {
    float* o = out + q * out_stride;
    _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), _mm512_mul_ps(w0, a[q][0])));
    _mm512_storeu_ps(o + 16, _mm512_add_ps(_mm512_loadu_ps(o + 16), _mm512_mul_ps(w1, a[q][1])));
  }
}

template <int kQ>
void BlockLogitsQ(const uint8_t* codes, const float* tables, size_t table_stride, int n_pairs,
                  const float* w, float* out, size_t out_stride) {
  // Half the sums are FMAs by 1.0 (exact, so still the scalar twin's sums):
  // they issue on the multiply pipes, leaving the add pipes to the others.
  const __m512 one = _mm512_set1_ps(1.0f);
  __m512 a[kQ][2];
#pragma GCC unroll 8
  for (int q = 0; q < kQ; ++q) a[q][0] = a[q][1] = _mm512_setzero_ps();
  for (int p = 0; p < n_pairs; ++p) {
    __m512i lo0, lo1;
    LoadPairDwords(codes + kPairCodeBytes * p, &lo0, &lo1);
    const __m512i hi0 = _mm512_srli_epi32(lo0, 4), hi1 = _mm512_srli_epi32(lo1, 4);
#pragma GCC unroll 8
    for (int q = 0; q < kQ; ++q) {
      const float* t = tables + q * table_stride + 32 * p;
      const __m512 tl = _mm512_loadu_ps(t), th = _mm512_loadu_ps(t + 16);
      a[q][0] = _mm512_add_ps(a[q][0], _mm512_permutexvar_ps(lo0, tl));
      a[q][1] = _mm512_add_ps(a[q][1], _mm512_permutexvar_ps(lo1, tl));
      a[q][0] = _mm512_fmadd_ps(_mm512_permutexvar_ps(hi0, th), one, a[q][0]);
      a[q][1] = _mm512_fmadd_ps(_mm512_permutexvar_ps(hi1, th), one, a[q][1]);
    }
  }
  AddWeightedLogits<kQ>(a, w, out, out_stride);
}

void BlockLogits(const uint8_t* codes, const float* tables, size_t table_stride, int nq,
                 int n_pairs, const float* w, float* out, size_t out_stride) {
  assert(nq >= 1 && n_pairs >= 0);
  ForEachQueryChunk(nq, [&](auto k, int first) {
    BlockLogitsQ<decltype(k)::value>(codes, tables + first * table_stride, table_stride, n_pairs,
                                     w, out + first * out_stride, out_stride);
  });
}

// Dot-run logits: the pair's 32 nibbles decoded by four vpermps of the
// centroid register, shared by the kQ queries, which take one FMA each.
template <int kQ>
void BlockLogitsDotQ(const uint8_t* codes, __m512 centroids, const float* values,
                     size_t value_stride, int n_pairs, const float* w, float* out,
                     size_t out_stride) {
  __m512 a[kQ][2];
#pragma GCC unroll 8
  for (int q = 0; q < kQ; ++q) a[q][0] = a[q][1] = _mm512_setzero_ps();
  for (int p = 0; p < n_pairs; ++p) {
    __m512i lo0, lo1;
    LoadPairDwords(codes + kPairCodeBytes * p, &lo0, &lo1);
    const __m512 l0 = _mm512_permutexvar_ps(lo0, centroids);
    const __m512 l1 = _mm512_permutexvar_ps(lo1, centroids);
    const __m512 h0 = _mm512_permutexvar_ps(_mm512_srli_epi32(lo0, 4), centroids);
    const __m512 h1 = _mm512_permutexvar_ps(_mm512_srli_epi32(lo1, 4), centroids);
#pragma GCC unroll 8
    for (int q = 0; q < kQ; ++q) {
      const float* y = values + q * value_stride + 2 * p;
      const __m512 yl = _mm512_set1_ps(y[0]), yh = _mm512_set1_ps(y[1]);
      a[q][0] = _mm512_fmadd_ps(yh, h0, _mm512_fmadd_ps(yl, l0, a[q][0]));
      a[q][1] = _mm512_fmadd_ps(yh, h1, _mm512_fmadd_ps(yl, l1, a[q][1]));
    }
  }
  AddWeightedLogits<kQ>(a, w, out, out_stride);
}

void BlockLogitsDot(const uint8_t* codes, const float* centroids, const float* values,
                    size_t value_stride, int nq, int n_pairs, const float* w, float* out,
                    size_t out_stride) {
  assert(nq >= 1 && n_pairs >= 0);
  const __m512 c = _mm512_loadu_ps(centroids);
  ForEachQueryChunk(nq, [&](auto k, int first) {
    BlockLogitsDotQ<decltype(k)::value>(codes, c, values + first * value_stride, value_stride,
                                        n_pairs, w, out + first * out_stride, out_stride);
  });
}

// One chunk (16 index bytes → 16·f positions) of kQ queries over n tokens.
template <int kBits, int kQ>
void ValuesChunk(const uint8_t* codes, size_t code_stride, int n, const float* w, size_t w_stride,
                 __m512 table, __mmask16 mask, float* acc, size_t acc_stride) {
  constexpr int kF = 8 / kBits;
  __m512 a[kQ][kF];
#pragma GCC unroll 16
  for (int q = 0; q < kQ; ++q) {
#pragma GCC unroll 8
    for (int k = 0; k < kF; ++k) a[q][k] = _mm512_loadu_ps(acc + q * acc_stride + 16 * k);
  }
  for (int t = 0; t < n; ++t) {
    const __m512i x = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, codes + t * code_stride));
#pragma GCC unroll 8
    for (int k = 0; k < kF; ++k) {
      const __m512 v = _mm512_permutexvar_ps(_mm512_srli_epi32(x, k * kBits), table);
#pragma GCC unroll 8
      for (int q = 0; q < kQ; ++q) {
        a[q][k] = _mm512_fmadd_ps(_mm512_set1_ps(w[q * w_stride + t]), v, a[q][k]);
      }
    }
  }
#pragma GCC unroll 16
  for (int q = 0; q < kQ; ++q) {
#pragma GCC unroll 8
    for (int k = 0; k < kF; ++k) _mm512_storeu_ps(acc + q * acc_stride + 16 * k, a[q][k]);
  }
}

// At most 16 accumulators: kQ·8/kBits <= 16.
template <int kBits>
constexpr int kMaxQ = 2 * kBits;

template <int kBits, int kQ>
void ValuesPackedQ(const uint8_t* codes, size_t code_stride, int n, const float* w,
                   size_t w_stride, __m512 table, int index_bytes, float* acc, size_t acc_stride) {
  constexpr int kPerChunk = kValueChunkBytes * 8 / kBits;
  for (int c = 0; c * kValueChunkBytes < index_bytes; ++c) {
    const int bytes = index_bytes - c * kValueChunkBytes;
    const __mmask16 mask = bytes >= 16 ? __mmask16(0xffff) : __mmask16((1u << bytes) - 1);
    ValuesChunk<kBits, kQ>(codes + c * kValueChunkBytes, code_stride, n, w, w_stride, table, mask,
                           acc + c * kPerChunk, acc_stride);
  }
}

template <int kBits>
void ValuesPackedBits(const uint8_t* codes, size_t code_stride, int n, const float* w,
                      size_t w_stride, int nq, __m512 table, int index_bytes, float* acc,
                      size_t acc_stride) {
  constexpr int kM = kMaxQ<kBits>;
  for (; nq >= kM; nq -= kM, w += kM * w_stride, acc += kM * acc_stride) {
    ValuesPackedQ<kBits, kM>(codes, code_stride, n, w, w_stride, table, index_bytes, acc,
                             acc_stride);
  }
  // Remainders below kM (≤ 7), one template per count.
  if constexpr (kM > 4) {
    if (nq >= 4) {
      ValuesPackedQ<kBits, 4>(codes, code_stride, n, w, w_stride, table, index_bytes, acc, acc_stride);
      nq -= 4, w += 4 * w_stride, acc += 4 * acc_stride;
    }
  }
  if constexpr (kM > 2) {
    if (nq >= 2) {
      ValuesPackedQ<kBits, 2>(codes, code_stride, n, w, w_stride, table, index_bytes, acc, acc_stride);
      nq -= 2, w += 2 * w_stride, acc += 2 * acc_stride;
    }
  }
  if (nq >= 1) {
    ValuesPackedQ<kBits, 1>(codes, code_stride, n, w, w_stride, table, index_bytes, acc, acc_stride);
  }
}

void ValuesPacked(const uint8_t* codes, size_t code_stride, int n, const float* w,
                  size_t w_stride, int nq, const float* table, int bits, int index_bytes,
                  float* acc, size_t acc_stride) {
  assert(n >= 0 && nq >= 1 && index_bytes >= 1);
  const __m512 t = _mm512_loadu_ps(table);
  switch (bits) {
    case 4:
      return ValuesPackedBits<4>(codes, code_stride, n, w, w_stride, nq, t, index_bytes, acc,
                                 acc_stride);
    case 2:
      return ValuesPackedBits<2>(codes, code_stride, n, w, w_stride, nq, t, index_bytes, acc,
                                 acc_stride);
    case 1:
      return ValuesPackedBits<1>(codes, code_stride, n, w, w_stride, nq, t, index_bytes, acc,
                                 acc_stride);
    default:
      assert(false && "bits must be 1, 2 or 4");
  }
}

// Up to 64 coordinates (4 zmm, the last masked) for kQ queries.
template <int kQ>
void ValuesRowsQ(const float* rows, int n, int d, const float* w, size_t w_stride, float* acc,
                 size_t acc_stride) {
  for (int j0 = 0; j0 < d; j0 += 64) {
    __mmask16 m[4];
    for (int i = 0; i < 4; ++i) {
      const int left = d - j0 - 16 * i;
      m[i] = left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
    }
    __m512 a[kQ][4];
#pragma GCC unroll 4
    for (int q = 0; q < kQ; ++q) {
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        a[q][i] = _mm512_maskz_loadu_ps(m[i], acc + q * acc_stride + j0 + 16 * i);
      }
    }
    for (int t = 0; t < n; ++t) {
      const float* r = rows + static_cast<size_t>(t) * d + j0;
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        const __m512 v = _mm512_maskz_loadu_ps(m[i], r + 16 * i);
#pragma GCC unroll 4
        for (int q = 0; q < kQ; ++q) {
          a[q][i] = _mm512_fmadd_ps(_mm512_set1_ps(w[q * w_stride + t]), v, a[q][i]);
        }
      }
    }
#pragma GCC unroll 4
    for (int q = 0; q < kQ; ++q) {
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) _mm512_mask_storeu_ps(acc + q * acc_stride + j0 + 16 * i, m[i], a[q][i]);
    }
  }
}

void ValuesRows(const float* rows, int n, int d, const float* w, size_t w_stride, int nq,
                float* acc, size_t acc_stride) {
  assert(d >= 1 && n >= 0 && nq >= 1);
  for (; nq >= 4; nq -= 4, w += 4 * w_stride, acc += 4 * acc_stride) {
    ValuesRowsQ<4>(rows, n, d, w, w_stride, acc, acc_stride);
  }
  if (nq >= 2) {
    ValuesRowsQ<2>(rows, n, d, w, w_stride, acc, acc_stride);
    nq -= 2, w += 2 * w_stride, acc += 2 * acc_stride;
  }
  if (nq >= 1) ValuesRowsQ<1>(rows, n, d, w, w_stride, acc, acc_stride);
}

// ExpScalar's polynomial (attend_scalar.cc has the error bound) on 16 lanes.
inline __m512 Exp16(__m512 x) {
  const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_GE_OQ);
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));  // −∞ → finite; masked to 0 below
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps(live, p, _mm512_castsi512_ps(e));
}

float ExpWeights(const float* x, int n, float max, const float* scale, float* p) {
  const __m512 m = _mm512_set1_ps(max);
  __m512 sum = _mm512_setzero_ps();
  for (int i = 0; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    // Masked-off lanes load −∞ → weight 0, so they add nothing to the sum.
    const __m512 xi = _mm512_mask_loadu_ps(_mm512_set1_ps(-kInf), k, x + i);
    const __m512 e = Exp16(_mm512_sub_ps(xi, m));
    sum = _mm512_add_ps(sum, e);
    const __m512 out = scale != nullptr ? _mm512_mul_ps(e, _mm512_maskz_loadu_ps(k, scale + i)) : e;
    _mm512_mask_storeu_ps(p + i, k, out);
  }
  return _mm512_reduce_add_ps(sum);
}

float Max(const float* x, int n) {
  __m512 m = _mm512_set1_ps(-kInf);
  for (int i = 0; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    m = _mm512_max_ps(m, _mm512_mask_loadu_ps(_mm512_set1_ps(-kInf), k, x + i));
  }
  return _mm512_reduce_max_ps(m);
}

constexpr AttendKernels kAvx512 = {&BlockLogits, &BlockLogitsDot, &ValuesPacked, &ValuesRows, &ExpWeights, &Max};

}  // namespace

const AttendKernels* AttendAvx512() { return &kAvx512; }

}  // namespace tqdb::index::internal
