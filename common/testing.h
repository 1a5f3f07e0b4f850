// GoogleTest helpers for absl::Status (Debian's abseil has no status matchers).
#ifndef TQDB_COMMON_TESTING_H_
#define TQDB_COMMON_TESTING_H_

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace tqdb::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

// The shared evaluation data directory (../shared/data by default; the
// TQDB_DATA_DIR environment variable overrides). Empty if it does not exist.
inline std::string DataDir() {
  const char* env = std::getenv("TQDB_DATA_DIR");
  std::string dir = env != nullptr ? env : TQDB_DEFAULT_DATA_DIR;
  return std::filesystem::is_directory(dir) ? dir : std::string();
}

// A new, empty directory under the test temp dir, unique to this call even
// when tests run in parallel processes; `prefix` names it for humans. The
// caller removes it.
inline std::string UniqueTempDir(const std::string& prefix) {
  std::string pattern = ::testing::TempDir() + prefix + "_XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) return std::string();
  return pattern;
}

// n floats drawn uniformly from [lo, hi) by a generator seeded with `seed`.
inline std::vector<float> UniformFloats(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> out(n);
  for (float& x : out) x = u(rng);
  return out;
}

inline ::testing::AssertionResult IsOk(const absl::Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected OK, got " << s;
}

inline ::testing::AssertionResult HasCode(const absl::Status& s, absl::StatusCode code) {
  if (s.code() == code) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "expected " << absl::StatusCodeToString(code) << ", got " << s;
}

}  // namespace tqdb::testing

// Each evaluates `expr` (an absl::Status or StatusOr) once and takes `<<`.
#define EXPECT_OK(expr) EXPECT_TRUE(::tqdb::testing::IsOk(::tqdb::testing::GetStatus(expr)))
#define ASSERT_OK(expr) ASSERT_TRUE(::tqdb::testing::IsOk(::tqdb::testing::GetStatus(expr)))
#define EXPECT_STATUS_CODE(expr, code) \
  EXPECT_TRUE(::tqdb::testing::HasCode(::tqdb::testing::GetStatus(expr), (code)))

#endif  // TQDB_COMMON_TESTING_H_
