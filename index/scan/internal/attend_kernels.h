// Attention kernels over CodeBlocks (attend.h; private to index/).
//
// Logits: a block's key nibbles (fastscan_kernels.h layout: pair p is 32
// bytes, byte v = nib_v[2p] | nib_v[2p+1] << 4) are looked up in per-group
// float tables of 16 entries, one table per query and nibble group:
//
//   codes:   pair 0: [v0 v1 … v31]  pair 1: [v0 … v31]  …
//   tables:  query q: [group 0: 16 floats][group 1: 16 floats] …  (stride apart)
//
// SIMD lanes are vectors (16 a zmm), so one permute looks up 16 vectors'
// nibbles in one group's table; sums are float and taken in group order, as
// the scalar twin does. Dot runs (one coordinate per nibble) permute the
// codebook instead, once for all queries, and take one FMA per query.
//
// Values (fast path, single-scale MSE formats of b = 1, 2, 4 bits): each
// token's packed index stream (format.h: index j in bits [j·b, (j+1)·b) of a
// little-endian stream) is read 16 bytes ("a chunk", 16·f coordinates with
// f = 8/b fields a byte) at a time. Byte l of chunk c holds coordinates
// c·16f + l·f + k (k < f); lanes are bytes, so the kernel keeps coordinates in
// "kernel order", position c·16f + k·16 + l, and attend.cc permutes back once
// per query (KernelPosition). The 16-entry table holds centroid(n & (2^b − 1))
// so a permute indexes it with the shifted byte directly (permutes read only
// the low 4 bits of an index).
//
// Every kernel has a scalar twin (attend_scalar.cc, always compiled) that
// defines its result; SIMD twins equal it exactly on integer-valued inputs
// (float sums in the same order; FMA rounding may differ otherwise), except
// ExpWeights, which agrees within its stated error bound.
//
// Thread-safety: pure functions.
#ifndef TQDB_INDEX_SCAN_INTERNAL_ATTEND_KERNELS_H_
#define TQDB_INDEX_SCAN_INTERNAL_ATTEND_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "index/codec/isa.h"

namespace tqdb::index::internal {

// Bytes of index stream one value-kernel chunk reads.
inline constexpr int kValueChunkBytes = 16;

// Position of coordinate j in kernel order for b-bit indices (b = 1, 2, 4).
constexpr int KernelPosition(int j, int bits) {
  const int f = 8 / bits, per_chunk = kValueChunkBytes * f;
  const int r = j % per_chunk;
  return j - r + (r % f) * kValueChunkBytes + r / f;
}
// Floats of one query's kernel-order accumulator for d coordinates.
constexpr int KernelOrderFloats(int d, int bits) {
  const int per_chunk = kValueChunkBytes * (8 / bits);
  return (d + per_chunk - 1) / per_chunk * per_chunk;
}

// For q < nq and vectors v < 32 of one block:
//   out[q·out_stride + v] += w[v] · Σ_{g < 2·n_pairs} tables[q·table_stride + 16g + nib_v[g]]
// where codes and tables start at the run's first pair / group, and the sum is
// accumulated in float from 0 in increasing g.
// REQUIRES: nq >= 1; n_pairs >= 0; tables 64-byte aligned is not required.
using BlockLogitsFn = void (*)(const uint8_t* codes, const float* tables, size_t table_stride,
                               int nq, int n_pairs, const float* w, float* out, size_t out_stride);

// Logits of a dot run (ScanLayout::Run::dot: each nibble one coordinate's
// index into one codebook): the nibbles are decoded once to `centroids` (16
// floats, unused entries anything finite) and multiplied by each query's
// coordinate values (2·n_pairs floats in nibble order, scale folded in):
//   out[q·out_stride + v] += w[v] · Σ_{g < 2·n_pairs} values[q·value_stride + g] · centroids[nib_v[g]]
// the sum taken from 0 in increasing g, one fused multiply-add a term, so
// every ISA gives the same floats. Fewer operations than the tables for a GQA
// group: one lookup a nibble for all queries, then one FMA a query.
// REQUIRES: nq >= 1; n_pairs >= 0.
using BlockLogitsDotFn = void (*)(const uint8_t* codes, const float* centroids,
                                  const float* values, size_t value_stride, int nq, int n_pairs,
                                  const float* w, float* out, size_t out_stride);

// Fast-path values: for q < nq and kernel-order positions of the chunks that
// cover index_bytes bytes (KernelOrderFloats(8·index_bytes / bits, bits)):
//   acc[q·acc_stride + pos] += Σ_{t < n} w[q·w_stride + t] · table[field(t, pos)]
// with field(t, pos) the b-bit index at pos of the stream at codes + t·code_stride
// (bytes past index_bytes read as 0; they are never touched in memory), added
// in increasing t.
// REQUIRES: bits ∈ {1, 2, 4}; table holds 16 floats with table[n] ==
// table[n & (2^bits − 1)]; n >= 0; nq >= 1; index_bytes >= 1.
using ValuesPackedFn = void (*)(const uint8_t* codes, size_t code_stride, int n, const float* w,
                                size_t w_stride, int nq, const float* table, int bits,
                                int index_bytes, float* acc, size_t acc_stride);

// General values: acc[q·acc_stride + j] += Σ_{t < n} w[q·w_stride + t] · rows[t·d + j]
// for q < nq, j < d, added in increasing t. REQUIRES: d >= 1, n >= 0, nq >= 1.
using ValuesRowsFn = void (*)(const float* rows, int n, int d, const float* w, size_t w_stride,
                              int nq, float* acc, size_t acc_stride);

// Softmax weights of a tile: for i < n, e_i = Exp(x[i] − max) (0 when
// x[i] − max < −87, so −∞ gives 0) and p[i] = e_i · scale[i] (or e_i when scale
// is nullptr). Returns Σ e_i. Exp has relative error ≤ 4e-7 for x − max ∈
// [−87, 0] (attend_scalar.cc derives it); the sum's order is the kernel's.
// REQUIRES: x[i] <= max (x may hold −∞); max finite; p may alias x.
using ExpWeightsFn = float (*)(const float* x, int n, float max, const float* scale, float* p);

// max_i x[i] (−∞ for n = 0). Exact for every ISA.
using MaxFn = float (*)(const float* x, int n);

struct AttendKernels {
  BlockLogitsFn block_logits;
  BlockLogitsDotFn block_logits_dot;
  ValuesPackedFn values_packed;
  ValuesRowsFn values_rows;
  ExpWeightsFn exp_weights;
  MaxFn max;
};

// The kernels for `isa` (kBest resolved); nullptr if unsupported.
const AttendKernels* GetAttendKernels(Isa isa);
const AttendKernels* AttendScalar();
const AttendKernels* AttendAvx2();    // nullptr when not compiled in
const AttendKernels* AttendAvx512();  // nullptr when not compiled in

// The exponential the kernels share (scalar reference): e^x for x ∈ [−87, 0],
// 0 below −87. Range reduction x = n·ln2 + r, |r| ≤ ln2/2, then a degree-7
// Taylor polynomial of e^r times 2^n.
float ExpScalar(float x);

}  // namespace tqdb::index::internal

#endif  // TQDB_INDEX_SCAN_INTERNAL_ATTEND_KERNELS_H_
