// The codec's SIMD kernel table (private to index/).
//
// Each ISA provides the same primitives; the scalar file defines their exact
// results and the SIMD files reproduce them bit for bit. Canonical orders:
//
//   dot(a, b, n): 16 lanes. acc[l] = fma(a[i], b[i], acc[l]) for i ≡ l
//     (mod 16), i ascending, starting from +0 and with the input padded by
//     zeros to a multiple of 16; then acc[l] += acc[l + w] for w = 8, 4, 2, 1.
//     (AVX-512 holds the 16 lanes in one register, AVX2 in two.)
//   hadamard: per round, stages h = 1, 2, 4, …, n/2; each maps (a, b) at
//     (i, i + h) to (a + b, a − b). Signs are exact (±1 multiplies); scale is
//     one multiply per element after the last stage. (A twin may fuse the
//     scale with the next round's signs, x·(±scale) = ±(x·scale) exactly, and
//     compute a ± b as fma(b, ±1, a), which rounds exactly like a ± b.)
//   matvec: y[i] = fma chain over columns j ascending, from +0.
//   quantize: idx = #{k : bounds[k] < y * inv} (one float multiply, then
//     compares); equal to a binary search for ascending bounds.
//
// All pointers are to valid memory of the stated sizes; no alignment is
// required. Thread-safety: pure functions.
#ifndef TQDB_INDEX_CODEC_INTERNAL_KERNELS_H_
#define TQDB_INDEX_CODEC_INTERNAL_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "index/codec/isa.h"

namespace tqdb::index::internal {

// Tables passed to quantize/lookup hold this many floats (2^8), padded with
// +inf (boundaries) or 0 (centroids) past the format's 2^bits entries.
inline constexpr int kTableSize = 256;

struct Kernels {
  Isa isa;
  // Canonical Σ a[i]·b[i]. REQUIRES: n >= 0.
  float (*dot)(const float* a, const float* b, int n);
  // In place on x[0 .. n), n = 2^log2n, `rounds` randomized Hadamard rounds
  // with signs s_r = signs + r·sign_stride (n floats of ±1 each):
  //   forward:  for r = 0 … rounds−1:  x ← scale · H · (s_r ⊙ x)
  //   inverse:  for r = rounds−1 … 0:  x ← s_r ⊙ (scale · H · x)
  // REQUIRES: 0 <= log2n <= 14, rounds >= 1.
  void (*hadamard)(float* x, int log2n, const float* signs, size_t sign_stride, int rounds,
                   float scale, bool inverse);
  // y[0 .. rows) = M · x[0 .. cols), M column-major (column j at m + j·rows).
  void (*matvec)(const float* m, int rows, int cols, const float* x, float* y);
  // idx[i] = #{k < 2^bits − 1 : bounds[k] < y[i]·inv}. REQUIRES: bounds has
  // kTableSize entries, ascending, +inf past 2^bits − 1; 1 <= bits <= 8.
  void (*quantize)(const float* y, int n, float inv, const float* bounds, int bits, uint8_t* idx);
  // Packs n indices of `bits` bits into ceil(n·bits/8) bytes (LSB-first bit
  // stream, zero padding). REQUIRES: idx[i] < 2^bits.
  void (*pack)(const uint8_t* idx, int n, int bits, uint8_t* out);
  // Inverse of pack: reads ceil(n·bits/8) bytes.
  void (*unpack)(const uint8_t* in, int n, int bits, uint8_t* idx);
  // out[i] = scale · table[idx[i]]. REQUIRES: table has kTableSize entries,
  // idx[i] < 2^bits, 1 <= bits <= 8.
  void (*lookup)(const uint8_t* idx, int n, const float* table, int bits, float scale,
                 float* out);
  // Bit i of the LSB-first stream `out` = (v[i] >= 0); ceil(n/8) bytes.
  void (*sign_pack)(const float* v, int n, uint8_t* out);
};

// The kernels for `isa` (kBest resolved), or nullptr if unsupported.
const Kernels* GetKernels(Isa isa);

// Per-ISA tables; the SIMD ones are nullptr when not compiled in.
const Kernels& ScalarKernels();
const Kernels* Avx2Kernels();
const Kernels* Avx512Kernels();

}  // namespace tqdb::index::internal

#endif  // TQDB_INDEX_CODEC_INTERNAL_KERNELS_H_
