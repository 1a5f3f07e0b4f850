// The randomized Hadamard kernel, written once over a register-traits type
// and instantiated by each SIMD kernel file under its own target flags.
// Include only from kernels_avx2.cc / kernels_avx512.cc (the traits need
// FMA). Everything here has internal linkage, so the two instantiations never
// meet at link time.
//
// V provides:  using Reg;  kLanes;  Load, Store, Set1, Add, Sub, Mul, and
// InRegister(Reg), the strides 1 … kLanes/2 of one transform inside a register.
// Results are bit-identical to the scalar reference (kernels.h): between
// rounds, the scale and the next round's signs are one multiply by ±scale,
// which equals the reference's two multiplies exactly.
#ifndef TQDB_INDEX_CODEC_INTERNAL_HADAMARD_SIMD_H_
#define TQDB_INDEX_CODEC_INTERNAL_HADAMARD_SIMD_H_

#include <cstddef>

#include "index/codec/internal/kernels.h"

namespace tqdb::index::internal {
namespace {

// Strides ≥ one register, h = kH, 2·kH, … < kRegs (registers), in order.
template <class V, int kRegs, int kH>
inline void CrossRegisterStages(typename V::Reg* v) {
  if constexpr (kH < kRegs) {
#pragma GCC unroll 16
    for (int i = 0; i < kRegs; i += 2 * kH) {
#pragma GCC unroll 16
      for (int j = i; j < i + kH; ++j) {
        const typename V::Reg a = v[j], b = v[j + kH];
        v[j] = V::Add(a, b);
        v[j + kH] = V::Sub(a, b);
      }
    }
    CrossRegisterStages<V, kRegs, 2 * kH>(v);
  }
}

// All rounds with the vector in kRegs registers: one load, one store.
template <class V, int kRegs>
void HadamardRegisters(float* x, const float* signs, size_t stride, int rounds, float scale,
                       bool inverse) {
  typename V::Reg v[kRegs];
  const typename V::Reg s = V::Set1(scale);
#pragma GCC unroll 16
  for (int r = 0; r < kRegs; ++r) v[r] = V::Load(x + V::kLanes * r);
  for (int k = 0; k < rounds; ++k) {
    if (!inverse) {
      const float* sk = signs + k * stride;
#pragma GCC unroll 16
      for (int r = 0; r < kRegs; ++r) {
        typename V::Reg m = V::Load(sk + V::kLanes * r);
        if (k > 0) m = V::Mul(m, s);
        v[r] = V::InRegister(V::Mul(v[r], m));
      }
      CrossRegisterStages<V, kRegs, 1>(v);
    } else {
      const float* sk = signs + (rounds - 1 - k) * stride;
#pragma GCC unroll 16
      for (int r = 0; r < kRegs; ++r) v[r] = V::InRegister(v[r]);
      CrossRegisterStages<V, kRegs, 1>(v);
#pragma GCC unroll 16
      for (int r = 0; r < kRegs; ++r) v[r] = V::Mul(v[r], V::Mul(V::Load(sk + V::kLanes * r), s));
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < kRegs; ++r) {
    if (!inverse) v[r] = V::Mul(v[r], s);
    V::Store(x + V::kLanes * r, v[r]);
  }
}

// One round for any n ≥ kLanes through memory: in-register strides, one pass
// per larger stride, then the scale (and, inverse, the signs).
template <class V>
void HadamardMemoryRound(float* x, int n, const float* signs, float scale, bool inverse) {
  constexpr int kL = V::kLanes;
  for (int i = 0; i < n; i += kL) {
    typename V::Reg v = V::Load(x + i);
    if (!inverse) v = V::Mul(v, V::Load(signs + i));
    V::Store(x + i, V::InRegister(v));
  }
  for (int h = kL; h < n; h *= 2) {
    for (int i = 0; i < n; i += 2 * h) {
      for (int j = i; j < i + h; j += kL) {
        const typename V::Reg a = V::Load(x + j), b = V::Load(x + j + h);
        V::Store(x + j, V::Add(a, b));
        V::Store(x + j + h, V::Sub(a, b));
      }
    }
  }
  const typename V::Reg s = V::Set1(scale);
  for (int i = 0; i < n; i += kL) {
    typename V::Reg v = V::Mul(V::Load(x + i), s);
    if (inverse) v = V::Mul(v, V::Load(signs + i));
    V::Store(x + i, v);
  }
}

// Register-resident for n = kLanes·kRegs, kRegs ≤ kMaxRegs; false otherwise.
template <class V, int kRegs, int kMaxRegs>
bool HadamardInRegisters(float* x, int n, const float* signs, size_t stride, int rounds,
                         float scale, bool inverse) {
  if constexpr (kRegs > kMaxRegs) {
    return false;
  } else {
    if (n == kRegs * V::kLanes) {
      HadamardRegisters<V, kRegs>(x, signs, stride, rounds, scale, inverse);
      return true;
    }
    return HadamardInRegisters<V, 2 * kRegs, kMaxRegs>(x, n, signs, stride, rounds, scale, inverse);
  }
}

// The kernel-table entry (kernels.h): registers up to kMaxRegs, memory beyond,
// the scalar reference below one register.
template <class V, int kMaxRegs>
void HadamardSimd(float* x, int log2n, const float* signs, size_t stride, int rounds, float scale,
                  bool inverse) {
  const int n = 1 << log2n;
  if (n < V::kLanes) return ScalarKernels().hadamard(x, log2n, signs, stride, rounds, scale, inverse);
  if (HadamardInRegisters<V, 1, kMaxRegs>(x, n, signs, stride, rounds, scale, inverse)) return;
  for (int k = 0; k < rounds; ++k) {
    const int r = inverse ? rounds - 1 - k : k;
    HadamardMemoryRound<V>(x, n, signs + r * stride, scale, inverse);
  }
}

}  // namespace
}  // namespace tqdb::index::internal

#endif  // TQDB_INDEX_CODEC_INTERNAL_HADAMARD_SIMD_H_
