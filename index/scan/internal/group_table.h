// The float lookup table of one nibble group for one prepared query, shared
// by the fast-scan scorer (which quantizes it) and Attend (which uses it as
// is). Private to index/.
#ifndef TQDB_INDEX_SCAN_INTERNAL_GROUP_TABLE_H_
#define TQDB_INDEX_SCAN_INTERNAL_GROUP_TABLE_H_

#include "index/codec/codec.h"
#include "index/scan/scan_layout.h"

namespace tqdb::index::internal {

// t[n] for the 16 nibble values n: Σ over the group's coordinates of
// rotated_j · centroid(field_j(n)), or for QJL groups Σ ±projected_i. Entries
// no code can hold (n ≥ 2^(count·bits)) repeat t[0]; pad groups are all 0.
void GroupTable(const ScanLayout::Group& g, const Codec& codec, const Codec::Query& q, float* t);

}  // namespace tqdb::index::internal

#endif  // TQDB_INDEX_SCAN_INTERNAL_GROUP_TABLE_H_
