// Fast-scan accumulation kernels (private to index/).
//
// A block holds 32 vectors. Each vector is a stream of 4-bit "nibbles"; nibble
// pairs (2p, 2p + 1) are stored as 32 bytes, byte v = nib_v[2p] | nib_v[2p+1] << 4:
//
//   codes:  pair 0: [v0 v1 … v31]  pair 1: [v0 … v31]  …     (32 bytes a pair)
//   luts:   pair p: [lo table ×2][hi table ×2]                (64 bytes a pair)
//
// where each table is 16 uint8 entries, stored twice so a 256-bit register
// holds it in both 128-bit lanes (pshufb looks up within a lane). The kernel
// returns, for each of the 32 vectors, Σ_p lo_p[nib_v[2p]] + hi_p[nib_v[2p+1]]
// as uint16: exact integer sums, identical for every ISA.
//
// Thread-safety: pure functions.
#ifndef TQDB_INDEX_SCAN_INTERNAL_FASTSCAN_KERNELS_H_
#define TQDB_INDEX_SCAN_INTERNAL_FASTSCAN_KERNELS_H_

#include <cstdint>

#include "index/codec/isa.h"

namespace tqdb::index::internal {

inline constexpr int kBlockVectors = 32;
inline constexpr int kPairCodeBytes = 32;  // one nibble pair of 32 vectors
inline constexpr int kPairLutBytes = 64;   // lo and hi tables, each twice
// 128 pairs · 2 lookups · 255 = 65280 < 2^16: a run of at most this many pairs
// cannot overflow the uint16 sums.
inline constexpr int kMaxPairsPerRun = 128;

// out[v] = Σ_{p < n_pairs} lut_lo_p[codes[p][v] & 15] + lut_hi_p[codes[p][v] >> 4].
// REQUIRES: 0 <= n_pairs <= kMaxPairsPerRun.
using AccumulateFn = void (*)(const uint8_t* codes, const uint8_t* luts, int n_pairs,
                              uint16_t* out);

AccumulateFn GetAccumulate(Isa isa);  // nullptr if unsupported

void AccumulateScalar(const uint8_t* codes, const uint8_t* luts, int n_pairs, uint16_t* out);
AccumulateFn AccumulateAvx2();    // nullptr when not compiled in
AccumulateFn AccumulateAvx512();  // nullptr when not compiled in

}  // namespace tqdb::index::internal

#endif  // TQDB_INDEX_SCAN_INTERNAL_FASTSCAN_KERNELS_H_
