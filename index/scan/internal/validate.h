// Input checks shared by the scan layer's public entry points (private to
// index/).
#ifndef TQDB_INDEX_SCAN_INTERNAL_VALIDATE_H_
#define TQDB_INDEX_SCAN_INTERNAL_VALIDATE_H_

#include <cmath>
#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

namespace tqdb::index::internal {

// OK if `queries` is a non-empty, finite, whole number of dim-float rows;
// otherwise InvalidArgument naming the expected shape or the bad value.
inline absl::Status ValidateQueries(absl::Span<const float> queries, size_t dim) {
  if (queries.empty() || queries.size() % dim != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queries must be a non-empty multiple of dim = ", dim, " floats, got ", queries.size()));
  }
  for (size_t i = 0; i < queries.size(); ++i) {
    if (!std::isfinite(queries[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("query ", i / dim, " coordinate ", i % dim, " is not finite"));
    }
  }
  return absl::OkStatus();
}

}  // namespace tqdb::index::internal

#endif  // TQDB_INDEX_SCAN_INTERNAL_VALIDATE_H_
