// Status propagation macros for absl::Status / absl::StatusOr.
//
// Debian's abseil (20220623) ships no status macros, so tqdb defines the two it
// needs. Both evaluate their argument exactly once. Thread-safety: n/a (macros).
#ifndef TQDB_COMMON_STATUS_H_
#define TQDB_COMMON_STATUS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tqdb::status_internal {
inline const ::absl::Status& AsStatus(const ::absl::Status& s) { return s; }
template <typename T>
const ::absl::Status& AsStatus(const ::absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace tqdb::status_internal

// Returns from the enclosing function if `expr` (an absl::Status, or an
// absl::StatusOr whose value is not needed) is not OK.
#define TQDB_RETURN_IF_ERROR(expr)                                              \
  do {                                                                          \
    ::absl::Status tqdb_status_ = ::tqdb::status_internal::AsStatus((expr));    \
    if (!tqdb_status_.ok()) return tqdb_status_;                                \
  } while (false)

#define TQDB_STATUS_CONCAT_INNER_(a, b) a##b
#define TQDB_STATUS_CONCAT_(a, b) TQDB_STATUS_CONCAT_INNER_(a, b)

// `lhs` = value of `rexpr` (an absl::StatusOr<T>), or returns its status.
// `lhs` may be a declaration (`auto x`) or an existing lvalue.
#define TQDB_ASSIGN_OR_RETURN(lhs, rexpr)                                    \
  TQDB_ASSIGN_OR_RETURN_IMPL_(TQDB_STATUS_CONCAT_(tqdb_statusor_, __LINE__), \
                              lhs, rexpr)
#define TQDB_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // TQDB_COMMON_STATUS_H_
