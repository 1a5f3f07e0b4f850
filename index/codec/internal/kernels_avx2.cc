// AVX2 (+ FMA, F16C, BMI2) twins of the scalar kernels; bit-identical results
// (kernels.h defines the canonical orders). The canonical 16-lane dot keeps
// lanes 0–7 in one register and 8–15 in another.
//
// Hadamard on 8-float registers: strides 1, 2, 4 inside a register (permute a
// partner in; fma(self, ±1, partner) leaves a + b in the lower and a − b in
// the upper lane of each pair), strides ≥ 8 between registers.
#include <immintrin.h>

#include <cstring>

#include "index/codec/internal/bitpack_bmi2.h"
#include "index/codec/internal/hadamard_simd.h"
#include "index/codec/internal/kernels.h"

namespace tqdb::index::internal {
namespace {

// Lane mask for the first `remaining` of 8 floats (all when remaining ≥ 8).
inline __m256i TailMask(int remaining) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(remaining), lane);
}

float Dot(const float* a, const float* b, int n) {
  __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();  // lanes 0–7, 8–15
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    lo = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), lo);
    hi = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), hi);
  }
  if (i < n) {
    const __m256i m0 = TailMask(n - i), m1 = TailMask(n - i - 8);
    lo = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m0), _mm256_maskload_ps(b + i, m0), lo);
    hi = _mm256_fmadd_ps(_mm256_maskload_ps(a + i + 8, m1), _mm256_maskload_ps(b + i + 8, m1), hi);
  }
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// ±1 in the lanes of `upper` (a blend mask): the upper element of each pair.
template <int kUpper>
inline __m256 PairSigns() {
  return _mm256_blend_ps(_mm256_set1_ps(1.0f), _mm256_set1_ps(-1.0f), kUpper);
}

// (a, b) → (a + b, a − b) as fma(self, ±1, partner): rounds like add/sub.
inline __m256 HadamardInRegister(__m256 v) {
  v = _mm256_fmadd_ps(v, PairSigns<0xAA>(), _mm256_permute_ps(v, 0xB1));
  v = _mm256_fmadd_ps(v, PairSigns<0xCC>(), _mm256_permute_ps(v, 0x4E));
  return _mm256_fmadd_ps(v, PairSigns<0xF0>(), _mm256_permute2f128_ps(v, v, 0x01));
}

struct Ymm {
  using Reg = __m256;
  static constexpr int kLanes = 8;
  static Reg Load(const float* p) { return _mm256_loadu_ps(p); }
  static void Store(float* p, Reg v) { _mm256_storeu_ps(p, v); }
  static Reg Set1(float v) { return _mm256_set1_ps(v); }
  static Reg Add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static Reg Sub(Reg a, Reg b) { return _mm256_sub_ps(a, b); }
  static Reg Mul(Reg a, Reg b) { return _mm256_mul_ps(a, b); }
  static Reg InRegister(Reg v) { return HadamardInRegister(v); }
};

// Up to 16 registers (d ≤ 128): AVX2 has 16, so d = 128 spills a little, still
// cheaper than a memory pass per stride.
constexpr auto& Hadamard = HadamardSimd<Ymm, 16>;

void MatVec(const float* m, int rows, int cols, const float* x, float* y) {
  int i = 0;
  for (; i + 32 <= rows; i += 32) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int j = 0; j < cols; ++j) {
      const float* col = m + static_cast<size_t>(j) * rows + i;
      const __m256 xj = _mm256_set1_ps(x[j]);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(col), xj, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(col + 8), xj, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(col + 16), xj, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(col + 24), xj, a3);
    }
    _mm256_storeu_ps(y + i, a0);
    _mm256_storeu_ps(y + i + 8, a1);
    _mm256_storeu_ps(y + i + 16, a2);
    _mm256_storeu_ps(y + i + 24, a3);
  }
  for (; i < rows; i += 8) {
    const __m256i mask = TailMask(rows - i);
    __m256 a = _mm256_setzero_ps();
    for (int j = 0; j < cols; ++j) {
      const float* col = m + static_cast<size_t>(j) * rows + i;
      a = _mm256_fmadd_ps(_mm256_maskload_ps(col, mask), _mm256_set1_ps(x[j]), a);
    }
    _mm256_maskstore_ps(y + i, mask, a);
  }
}

// table[k] for 8 int32 indices: permutes for up to 16 entries, else a gather.
template <int kBits>
inline __m256 TableLookup(__m256i k, __m256 t0, __m256 t1, const float* table) {
  if constexpr (kBits <= 3) {
    return _mm256_permutevar8x32_ps(t0, k);
  } else if constexpr (kBits == 4) {
    const __m256 upper = _mm256_castsi256_ps(_mm256_cmpgt_epi32(k, _mm256_set1_epi32(7)));
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(t0, k), _mm256_permutevar8x32_ps(t1, k),
                            upper);
  } else {
    return _mm256_i32gather_ps(table, k, 4);
  }
}

// Stores the low byte of each of 8 int32 lanes to out[0, count).
inline void StoreBytes(__m256i k, uint8_t* out, int count) {
  const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(k), _mm256_extracti128_si256(k, 1));
  const __m128i b = _mm_packus_epi16(w, w);
  if (count >= 8) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), b);
  } else {
    uint8_t tmp[16];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(tmp), b);
    std::memcpy(out, tmp, count);
  }
}

template <int kBits>
void QuantizeT(const float* y, int n, float inv, const float* bounds, uint8_t* idx) {
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256 t0 = _mm256_loadu_ps(bounds), t1 = _mm256_loadu_ps(bounds + 8);
  for (int i = 0; i < n; i += 8) {
    const __m256 u = _mm256_mul_ps(_mm256_maskload_ps(y + i, TailMask(n - i)), vinv);
    __m256i k = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int step = (1 << kBits) / 2; step >= 1; step /= 2) {
      const __m256i probe = _mm256_add_epi32(k, _mm256_set1_epi32(step - 1));
      const __m256 lt = _mm256_cmp_ps(TableLookup<kBits>(probe, t0, t1, bounds), u, _CMP_LT_OQ);
      k = _mm256_add_epi32(k, _mm256_and_si256(_mm256_castps_si256(lt), _mm256_set1_epi32(step)));
    }
    StoreBytes(k, idx + i, n - i);
  }
}

void Quantize(const float* y, int n, float inv, const float* bounds, int bits, uint8_t* idx) {
  switch (bits) {
    case 1: return QuantizeT<1>(y, n, inv, bounds, idx);
    case 2: return QuantizeT<2>(y, n, inv, bounds, idx);
    case 3: return QuantizeT<3>(y, n, inv, bounds, idx);
    case 4: return QuantizeT<4>(y, n, inv, bounds, idx);
    case 5: return QuantizeT<5>(y, n, inv, bounds, idx);
    case 6: return QuantizeT<6>(y, n, inv, bounds, idx);
    case 7: return QuantizeT<7>(y, n, inv, bounds, idx);
    default: return QuantizeT<8>(y, n, inv, bounds, idx);
  }
}

void Pack(const uint8_t* idx, int n, int bits, uint8_t* out) {
  if (bits == 8) {
    std::memcpy(out, idx, n);
    return;
  }
  int i = 0;
  if (bits == 4) {  // (i0, i1) → i0 + 16·i1, then narrow 16-bit lanes to bytes
    const __m256i w = _mm256_set1_epi16(0x1001);
    for (; i + 32 <= n; i += 32) {
      const __m256i pairs =
          _mm256_maddubs_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + i)), w);
      const __m128i bytes =
          _mm_packus_epi16(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i / 2), bytes);
    }
  }
  bmi2::Pack(idx + i, n - i, bits, out + i * bits / 8);
}

void Unpack(const uint8_t* in, int n, int bits, uint8_t* idx) {
  if (bits == 8) {
    std::memcpy(idx, in, n);
    return;
  }
  int i = 0;
  if (bits == 4) {
    const __m128i low = _mm_set1_epi8(0x0f);
    for (; i + 32 <= n; i += 32) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i / 2));
      const __m128i lo = _mm_and_si128(v, low), hi = _mm_and_si128(_mm_srli_epi16(v, 4), low);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(idx + i), _mm_unpacklo_epi8(lo, hi));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(idx + i + 16), _mm_unpackhi_epi8(lo, hi));
    }
  }
  bmi2::Unpack(in + i * bits / 8, n - i, bits, idx + i);
}

template <int kBits>
void LookupT(const uint8_t* idx, int n, const float* table, float scale, float* out) {
  const __m256 t0 = _mm256_loadu_ps(table), t1 = _mm256_loadu_ps(table + 8);
  const __m256 s = _mm256_set1_ps(scale);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i k = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(idx + i)));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(s, TableLookup<kBits>(k, t0, t1, table)));
  }
  for (; i < n; ++i) out[i] = scale * table[idx[i]];
}

void Lookup(const uint8_t* idx, int n, const float* table, int bits, float scale, float* out) {
  if (bits <= 3) return LookupT<3>(idx, n, table, scale, out);
  if (bits == 4) return LookupT<4>(idx, n, table, scale, out);
  return LookupT<8>(idx, n, table, scale, out);
}

void SignPack(const float* v, int n, uint8_t* out) {
  const __m256 zero = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    out[i / 8] = static_cast<uint8_t>(
        _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(v + i), zero, _CMP_GE_OQ)));
  }
  if (i < n) {
    uint8_t byte = 0;
    for (int j = i; j < n; ++j) byte |= static_cast<uint8_t>((v[j] >= 0.0f) << (j - i));
    out[i / 8] = byte;
  }
}

constexpr Kernels kAvx2 = {
    Isa::kAvx2, &Dot, &Hadamard, &MatVec, &Quantize, &Pack, &Unpack, &Lookup, &SignPack,
};

}  // namespace

const Kernels* Avx2Kernels() { return &kAvx2; }

}  // namespace tqdb::index::internal
