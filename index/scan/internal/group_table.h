// Float lookup tables for one prepared query, shared by the scorer and
// Attend. Private to index/.
//
// Nibble tables (16 entries a group) serve fast-scannable layouts: the scorer
// quantizes them, Attend uses them as they are. Pair tables (256 entries a
// nibble pair, indexed by the pair's byte) serve every layout, wide groups
// included (scan_layout.h), in exact float.
#ifndef TQDB_INDEX_SCAN_INTERNAL_GROUP_TABLE_H_
#define TQDB_INDEX_SCAN_INTERNAL_GROUP_TABLE_H_

#include <cstdint>

#include "index/codec/codec.h"
#include "index/scan/internal/fastscan_kernels.h"
#include "index/scan/scan_layout.h"

namespace tqdb::index::internal {

// t[n] for the 16 nibble values n: Σ over the group's coordinates of
// rotated_j · centroid(field_j(n)), or for QJL groups Σ ±projected_i. Entries
// no code can hold (n ≥ 2^(count·bits)) repeat t[0]; pad groups are all 0.
// REQUIRES: g is not wide.
void GroupTable(const ScanLayout::Group& g, const Codec& codec, const Codec::Query& q, float* t);

// t[n] for the 256 byte values n of pair p: the sum of its two nibble tables
// at n & 15 and n >> 4, or for a wide coordinate j rotated_j · centroid(n)
// (0 for n ≥ 2^bits, which no code holds).
void PairTable(const ScanLayout& layout, int p, const Codec& codec, const Codec::Query& q,
               float* t);

}  // namespace tqdb::index::internal

#endif  // TQDB_INDEX_SCAN_INTERNAL_GROUP_TABLE_H_
