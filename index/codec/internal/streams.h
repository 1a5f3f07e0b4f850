// PRNG stream identifiers: each random object of a Format draws from its own
// stream, DeriveSeed(seed, stream, …). Part of the stored format: never reuse
// or renumber a value.
#ifndef TQDB_INDEX_CODEC_INTERNAL_STREAMS_H_
#define TQDB_INDEX_CODEC_INTERNAL_STREAMS_H_

#include <cstdint>

namespace tqdb::index::internal {

inline constexpr uint64_t kStreamHadamard = 1;  // (dim, round) → ±1 signs
inline constexpr uint64_t kStreamHaar = 2;      // (dim) → Gaussian d × d
inline constexpr uint64_t kStreamQjl = 3;       // (dim, rows) → Gaussian S

}  // namespace tqdb::index::internal

#endif  // TQDB_INDEX_CODEC_INTERNAL_STREAMS_H_
