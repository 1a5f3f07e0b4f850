// AVX-512 (F/BW/DQ/VL + BMI2) twins of the scalar kernels; bit-identical
// results (kernels.h defines the canonical orders).
//
// Hadamard on 16-float registers: strides 1, 2, 4, 8 happen inside a register
// (a lane permute brings each partner over; fma(self, ±1, partner) leaves
// a + b in the lower lane of each pair and a − b in the upper), strides ≥ 16
// between registers.
//
//   h = 1: [x0 x1 | x2 x3 | …]  partner = swap neighbours   −1 lanes 0xAAAA
//   h = 2: [x0 x1 x2 x3 | …]    partner = swap pairs        −1 lanes 0xCCCC
//   h = 4: 128-bit lanes        partner = swap quads        −1 lanes 0xF0F0
//   h = 8: 256-bit halves       partner = swap halves       −1 lanes 0xFF00
#include <immintrin.h>

#include <cstring>

#include "index/codec/internal/bitpack_bmi2.h"
#include "index/codec/internal/hadamard_simd.h"
#include "index/codec/internal/kernels.h"

namespace tqdb::index::internal {
namespace {

inline __mmask16 TailMask(int remaining) {
  return remaining >= 16 ? __mmask16(0xffff) : __mmask16((1u << remaining) - 1);
}

float Dot(const float* a, const float* b, int n) {
  __m512 acc = _mm512_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  }
  if (i < n) {
    const __mmask16 m = TailMask(n - i);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc);
  }
  const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// ±1 in the lanes whose bit `log2(h)` is set: the upper element of each pair.
inline __m512 PairSigns(__mmask16 upper) {
  return _mm512_mask_blend_ps(upper, _mm512_set1_ps(1.0f), _mm512_set1_ps(-1.0f));
}

// Strides 1 … 8 of the transform on one register: (a, b) → (a + b, a − b) as
// fma(self, ±1, partner), which rounds exactly like the add or subtract.
inline __m512 HadamardInRegister(__m512 v) {
  v = _mm512_fmadd_ps(v, PairSigns(0xAAAA), _mm512_permute_ps(v, 0xB1));
  v = _mm512_fmadd_ps(v, PairSigns(0xCCCC), _mm512_permute_ps(v, 0x4E));
  v = _mm512_fmadd_ps(v, PairSigns(0xF0F0), _mm512_shuffle_f32x4(v, v, 0xB1));
  return _mm512_fmadd_ps(v, PairSigns(0xFF00), _mm512_shuffle_f32x4(v, v, 0x4E));
}

struct Zmm {
  using Reg = __m512;
  static constexpr int kLanes = 16;
  static Reg Load(const float* p) { return _mm512_loadu_ps(p); }
  static void Store(float* p, Reg v) { _mm512_storeu_ps(p, v); }
  static Reg Set1(float v) { return _mm512_set1_ps(v); }
  static Reg Add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg Sub(Reg a, Reg b) { return _mm512_sub_ps(a, b); }
  static Reg Mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
  static Reg InRegister(Reg v) { return HadamardInRegister(v); }
};

// Up to 16 registers (d ≤ 256) stay resident; AVX-512 has 32.
constexpr auto& Hadamard = HadamardSimd<Zmm, 16>;

void MatVec(const float* m, int rows, int cols, const float* x, float* y) {
  int i = 0;
  for (; i + 64 <= rows; i += 64) {  // four independent accumulator chains
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int j = 0; j < cols; ++j) {
      const float* col = m + static_cast<size_t>(j) * rows + i;
      const __m512 xj = _mm512_set1_ps(x[j]);
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(col), xj, a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(col + 16), xj, a1);
      a2 = _mm512_fmadd_ps(_mm512_loadu_ps(col + 32), xj, a2);
      a3 = _mm512_fmadd_ps(_mm512_loadu_ps(col + 48), xj, a3);
    }
    _mm512_storeu_ps(y + i, a0);
    _mm512_storeu_ps(y + i + 16, a1);
    _mm512_storeu_ps(y + i + 32, a2);
    _mm512_storeu_ps(y + i + 48, a3);
  }
  for (; i < rows; i += 16) {
    const __mmask16 mask = TailMask(rows - i);
    __m512 a = _mm512_setzero_ps();
    for (int j = 0; j < cols; ++j) {
      const float* col = m + static_cast<size_t>(j) * rows + i;
      a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, col), _mm512_set1_ps(x[j]), a);
    }
    _mm512_mask_storeu_ps(y + i, mask, a);
  }
}

// table[k] for 16 int32 indices: in-register for up to 32 entries.
template <int kBits>
inline __m512 TableLookup(__m512i k, __m512 t0, __m512 t1, const float* table) {
  if constexpr (kBits <= 4) return _mm512_permutexvar_ps(k, t0);
  else if constexpr (kBits == 5) return _mm512_permutex2var_ps(t0, k, t1);
  else return _mm512_i32gather_ps(k, table, 4);
}

template <int kBits>
void QuantizeT(const float* y, int n, float inv, const float* bounds, uint8_t* idx) {
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512 t0 = _mm512_loadu_ps(bounds), t1 = _mm512_loadu_ps(bounds + 16);
  for (int i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    const __m512 u = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), vinv);
    __m512i k = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int step = (1 << kBits) / 2; step >= 1; step /= 2) {
      const __m512i probe = _mm512_add_epi32(k, _mm512_set1_epi32(step - 1));
      const __m512 t = TableLookup<kBits>(probe, t0, t1, bounds);
      const __mmask16 lt = _mm512_cmp_ps_mask(t, u, _CMP_LT_OQ);
      k = _mm512_mask_add_epi32(k, lt, k, _mm512_set1_epi32(step));
    }
    _mm512_mask_cvtepi32_storeu_epi8(idx + i, m, k);
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
  int i = 0;
  if (bits == 8) {
    std::memcpy(out, idx, n);
    return;
  }
  if (bits == 4) {  // (i0, i1) → i0 + 16·i1: maddubs, then narrow to bytes
    const __m512i w = _mm512_set1_epi16(0x1001);
    for (; i + 64 <= n; i += 64) {
      const __m512i pairs = _mm512_maddubs_epi16(_mm512_loadu_si512(idx + i), w);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i / 2), _mm512_cvtepi16_epi8(pairs));
    }
  } else if (bits == 1) {  // one bit per byte is a byte-test mask
    for (; i + 64 <= n; i += 64) {
      const __m512i v = _mm512_loadu_si512(idx + i);
      const uint64_t bitsv = _mm512_test_epi8_mask(v, v);
      std::memcpy(out + i / 8, &bitsv, 8);
    }
  }
  bmi2::Pack(idx + i, n - i, bits, out + i * bits / 8);
}

void Unpack(const uint8_t* in, int n, int bits, uint8_t* idx) {
  int i = 0;
  if (bits == 8) {
    std::memcpy(idx, in, n);
    return;
  }
  if (bits == 4) {
    const __m256i low = _mm256_set1_epi8(0x0f);
    for (; i + 64 <= n; i += 64) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i / 2));
      const __m256i lo = _mm256_and_si256(v, low);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
      // Interleave per 128-bit lane, then put the lanes back in order.
      const __m256i a = _mm256_unpacklo_epi8(lo, hi), b = _mm256_unpackhi_epi8(lo, hi);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + i), _mm256_permute2x128_si256(a, b, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + i + 32),
                          _mm256_permute2x128_si256(a, b, 0x31));
    }
  }
  bmi2::Unpack(in + i * bits / 8, n - i, bits, idx + i);
}

template <int kBits>
void LookupT(const uint8_t* idx, int n, const float* table, float scale, float* out) {
  const __m512 t0 = _mm512_loadu_ps(table), t1 = _mm512_loadu_ps(table + 16);
  const __m512 s = _mm512_set1_ps(scale);
  for (int i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    const __m512i k = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, idx + i));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(s, TableLookup<kBits>(k, t0, t1, table)));
  }
}

void Lookup(const uint8_t* idx, int n, const float* table, int bits, float scale, float* out) {
  if (bits <= 4) return LookupT<4>(idx, n, table, scale, out);
  if (bits == 5) return LookupT<5>(idx, n, table, scale, out);
  return LookupT<8>(idx, n, table, scale, out);
}

void SignPack(const float* v, int n, uint8_t* out) {
  const __m512 zero = _mm512_setzero_ps();
  for (int i = 0; i < n; i += 16) {
    const __mmask16 m = TailMask(n - i);
    const __mmask16 ge = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, v + i), zero,
                                                 _CMP_GE_OQ);
    const uint16_t bitsv = ge;
    std::memcpy(out + i / 8, &bitsv, n - i >= 16 ? 2 : (n - i + 7) / 8);
  }
}

constexpr Kernels kAvx512 = {
    Isa::kAvx512, &Dot, &Hadamard, &MatVec, &Quantize, &Pack, &Unpack, &Lookup, &SignPack,
};

}  // namespace

const Kernels* Avx512Kernels() { return &kAvx512; }

}  // namespace tqdb::index::internal
