// Fast-scan accumulation kernels (private to index/).
//
// A block holds 32 vectors. Each vector is a stream of 4-bit "nibbles"; nibble
// pairs (2p, 2p + 1) are stored as 32 bytes, byte v = nib_v[2p] | nib_v[2p+1] << 4:
//
//   codes:  pair 0: [v0 v1 … v31]  pair 1: [v0 … v31]  …     (32 bytes a pair)
//   luts:   pairs 2m, 2m+1: [lo_2m][lo_2m+1][hi_2m][hi_2m+1]  (128 bytes, LutOffset)
//
// where each table is 16 uint8 entries stored twice (32 bytes), so a 256-bit
// register holds one table in both 128-bit lanes (pshufb looks up within a
// lane) and a 512-bit register the tables of two consecutive pairs. The kernel
// returns, for each of the 32 vectors, Σ_p lo_p[nib_v[2p]] + hi_p[nib_v[2p+1]]
// as uint16: exact integer sums, identical for every ISA.
//
// Thread-safety: pure functions.
#ifndef TQDB_INDEX_SCAN_INTERNAL_FASTSCAN_KERNELS_H_
#define TQDB_INDEX_SCAN_INTERNAL_FASTSCAN_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "index/codec/isa.h"

namespace tqdb::index::internal {

inline constexpr int kBlockVectors = 32;
inline constexpr int kPairCodeBytes = 32;  // one nibble pair of 32 vectors

// Byte offset of pair p's low (hi = false) or high table, and the bytes the
// tables of n_pairs pairs take.
constexpr size_t LutOffset(int p, bool hi) {
  return 128 * static_cast<size_t>(p / 2) + (hi ? 64 : 0) + 32 * static_cast<size_t>(p % 2);
}
constexpr size_t LutBytes(int n_pairs) { return 128 * static_cast<size_t>((n_pairs + 1) / 2); }
// 128 pairs · 2 lookups · 255 = 65280 < 2^16: a run of at most this many pairs
// cannot overflow the uint16 sums.
inline constexpr int kMaxPairsPerRun = 128;

// out[v] = Σ_{p < n_pairs} lut_lo_p[codes[p][v] & 15] + lut_hi_p[codes[p][v] >> 4].
// REQUIRES: 0 <= n_pairs <= kMaxPairsPerRun.
using AccumulateFn = void (*)(const uint8_t* codes, const uint8_t* luts, int n_pairs,
                              uint16_t* out);

// The same for nq queries at once (tables luts[q]): out[q·32 + v]. Codes are
// read once for all queries. REQUIRES: nq >= 1.
using AccumulateMultiFn = void (*)(const uint8_t* codes, const uint8_t* const* luts, int nq,
                                   int n_pairs, uint16_t* out);

// Pair tables (group_table.h; layouts with wide coordinates): 256 floats per
// nibble pair, indexed by the pair's code byte.
inline constexpr int kPairTableSize = 256;

// Asks for [p, p + bytes) in cache ahead of use, a line at a time: the scans
// prefetch the blocks they reach next (the hardware prefetchers alone left a
// single scanning core waiting on memory).
inline void Prefetch(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t i = 0; i < bytes; i += 64) __builtin_prefetch(c + i);
}

// sums[v] = Σ_{p < n_pairs} tables[256p + codes[32p + v]] for the 32 vectors v,
// added in float from 0 in increasing p: every ISA gives the same floats.
// REQUIRES: n_pairs >= 0.
using PairTableSumsFn = void (*)(const uint8_t* codes, const float* tables, int n_pairs,
                                 float* sums);

// Int8 dot products (runs of one-coordinate nibbles, ScanLayout::Run::dot):
// each nibble indexes one 16-entry table of uint8 `levels` (the quantized
// codebook, shared by the run) and pairs with one int8 query value per nibble,
// 2·n_pairs of them in nibble order (pair p: low 2p, high 2p + 1), followed by
// zeros up to DotValueBytes(n_pairs) (kernels read four values at a time):
//   sum_q[v] = Σ_p levels[codes[p][v] & 15]·queries[q][2p]
//                  + levels[codes[p][v] >> 4]·queries[q][2p + 1],
// exact in int32 (|sum| ≤ 256·255·128 < 2^24 for kMaxPairsPerRun pairs, so
// exact as a float too), added to the scores as the run's contribution:
//   score[q·stride + v] += w[v] · (delta[q] · sum_q[v] + bias[q]),
// each step a separate float multiply or add (no FMA): every ISA gives the same
// floats, and w = delta = 1, bias = 0 adds the exact sums. Codes are read and
// decoded once for all nq queries.
// REQUIRES: nq >= 1; 0 <= n_pairs <= kMaxPairsPerRun.
constexpr size_t DotValueBytes(int n_pairs) { return 4 * static_cast<size_t>((n_pairs + 1) / 2); }
using DotFn = void (*)(const uint8_t* codes, const uint8_t* levels, const int8_t* const* queries,
                       int nq, int n_pairs, const float* w, const float* delta, const float* bias,
                       float* score, size_t stride);

// A run's dequantized contribution to the 32 scores of a block:
// score[v] += w[v] · (delta · acc[v] + bias), each step a separate float
// multiply or add in that order (no FMA), so every ISA gives the same floats.
using AddScaledFn = void (*)(const uint16_t* acc, const float* w, float delta, float bias,
                             float* score);

// accumulate then add_scaled of its 32 sums, for one query: the same floats,
// without the sums' round trip through memory and a second call per block
// (a fifth of a one-query tq2 scan).
using AccumulateScaledFn = void (*)(const uint8_t* codes, const uint8_t* luts, int n_pairs,
                                    const float* w, float delta, float bias, float* score);

struct FastScanKernels {
  AccumulateFn accumulate;
  AccumulateMultiFn accumulate_multi;
  PairTableSumsFn pair_table_sums;
  AddScaledFn add_scaled;
  DotFn dot;
  AccumulateScaledFn accumulate_scaled;
};

// The kernels for `isa` (kBest resolved); nullptr if unsupported.
const FastScanKernels* GetFastScanKernels(Isa isa);

void AccumulateScalar(const uint8_t* codes, const uint8_t* luts, int n_pairs, uint16_t* out);
void PairTableSumsScalar(const uint8_t* codes, const float* tables, int n_pairs, float* sums);
void AddScaledScalar(const uint16_t* acc, const float* w, float delta, float bias, float* score);
void DotScalar(const uint8_t* codes, const uint8_t* levels, const int8_t* const* queries, int nq,
               int n_pairs, const float* w, const float* delta, const float* bias, float* score,
               size_t stride);
// The AVX2 dot kernel, also the AVX-512 table's on CPUs without VNNI/VBMI.
void DotAvx2(const uint8_t* codes, const uint8_t* levels, const int8_t* const* queries, int nq,
             int n_pairs, const float* w, const float* delta, const float* bias, float* score,
             size_t stride);
const FastScanKernels* FastScanAvx2();    // nullptr when not compiled in
const FastScanKernels* FastScanAvx512();  // nullptr when not compiled in

// accumulate_multi for ISAs without a dedicated one: one query at a time.
template <AccumulateFn kAccumulate>
void AccumulateEachQuery(const uint8_t* codes, const uint8_t* const* luts, int nq, int n_pairs,
                         uint16_t* out) {
  for (int q = 0; q < nq; ++q) kAccumulate(codes, luts[q], n_pairs, out + 32 * q);
}

// accumulate_scaled for ISAs without a fused one: the two kernels in turn.
template <AccumulateFn kAccumulate, AddScaledFn kAddScaled>
void AccumulateThenAddScaled(const uint8_t* codes, const uint8_t* luts, int n_pairs,
                             const float* w, float delta, float bias, float* score) {
  uint16_t sums[kBlockVectors];
  kAccumulate(codes, luts, n_pairs, sums);
  kAddScaled(sums, w, delta, bias, score);
}

}  // namespace tqdb::index::internal

#endif  // TQDB_INDEX_SCAN_INTERNAL_FASTSCAN_KERNELS_H_
