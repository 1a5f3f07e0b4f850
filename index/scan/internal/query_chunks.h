// Dispatch of multi-query kernels templated on the query count (private to
// index/): a kernel keeps kQ queries' accumulators in registers, so nq queries
// are split into chunks of at most kMaxChunkQueries, each run with its count
// as a compile-time constant.
//
// Thread-safety: pure functions.
#ifndef TQDB_INDEX_SCAN_INTERNAL_QUERY_CHUNKS_H_
#define TQDB_INDEX_SCAN_INTERNAL_QUERY_CHUNKS_H_

#include <type_traits>

namespace tqdb::index::internal {

inline constexpr int kMaxChunkQueries = 8;

// Calls f(std::integral_constant<int, k>{}, first) for consecutive chunks of
// k ≤ 8 queries covering [0, nq), full chunks of 8 first.
template <typename F>
void ForEachQueryChunk(int nq, F&& f) {
  int first = 0;
  for (; nq - first >= kMaxChunkQueries; first += kMaxChunkQueries) {
    f(std::integral_constant<int, kMaxChunkQueries>{}, first);
  }
  switch (nq - first) {
    case 7: return f(std::integral_constant<int, 7>{}, first);
    case 6: return f(std::integral_constant<int, 6>{}, first);
    case 5: return f(std::integral_constant<int, 5>{}, first);
    case 4: return f(std::integral_constant<int, 4>{}, first);
    case 3: return f(std::integral_constant<int, 3>{}, first);
    case 2: return f(std::integral_constant<int, 2>{}, first);
    case 1: return f(std::integral_constant<int, 1>{}, first);
    default: return;
  }
}

}  // namespace tqdb::index::internal

#endif  // TQDB_INDEX_SCAN_INTERNAL_QUERY_CHUNKS_H_
