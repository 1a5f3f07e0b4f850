// Pieces shared by the `tqdb` command line client's commands: a parser of
// one command's words (positional arguments and --flags), the exit-code
// conventions, a progress bar on stderr, and latency percentiles.
//
// Exit codes: kExitOk (0) on success; kExitError (1) when an operation fails
// (a server error or an unreadable input file), printed as "CODE: message"
// on stderr; kExitUsage (2) for a usage error, printed as "tqdb: why".
//
// Thread-safety: Args and Progress are used by one thread; the functions are
// pure (apart from writing to stderr).
#ifndef TQDB_CLIENT_INTERNAL_CLI_UTIL_H_
#define TQDB_CLIENT_INTERNAL_CLI_UTIL_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tqdb::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

// Prints "CODE: message" on stderr; returns kExitError.
int Fail(const absl::Status& status);
// Prints "tqdb: <why>" and a hint to run `tqdb --help` on stderr; returns
// kExitUsage.
int UsageError(const std::string& why);

// The words of one command after its name: positional arguments and flags,
// "--name value" or "--name=value", or "--name" alone for a switch.
class Args {
 public:
  // Splits `words`. `value_flags` take a value and `switches` none; any
  // other --name, or a value flag without its value, is InvalidArgument.
  static absl::StatusOr<Args> Parse(const std::vector<std::string>& words,
                                    const std::set<std::string>& value_flags,
                                    const std::set<std::string>& switches = {});

  const std::vector<std::string>& positional() const { return positional_; }
  bool Has(const std::string& name) const { return flags_.count(name) != 0; }
  // The flag's value, or `fallback` when absent.
  std::string Str(const std::string& name, const std::string& fallback = "") const;
  // The flag's value parsed as a number, `fallback` when absent;
  // InvalidArgument naming the flag when it does not parse or lies outside
  // [min, max].
  absl::StatusOr<int64_t> Int(const std::string& name, int64_t fallback, int64_t min,
                              int64_t max) const;
  absl::StatusOr<double> Double(const std::string& name, double fallback) const;

 private:
  std::vector<std::string> positional_;
  std::map<std::string, std::string> flags_;
};

// Comma-separated floats ("0.5,-1,2e3"); InvalidArgument if one does not
// parse or there are none.
absl::StatusOr<std::vector<float>> ParseFloats(const std::string& text);

// A one-line progress bar on stderr, redrawn in place ("\r") at most ten
// times a second:  [#########...........]  45%  2250/5000 vectors  8123/s
// Disabled, it prints nothing.
class Progress {
 public:
  Progress(std::string unit, uint64_t total, bool enabled);
  // Records `done` units so far (of total).
  void Update(uint64_t done);
  // Draws the final state and ends the line.
  void Finish();

 private:
  void Draw();
  std::string unit_;
  uint64_t total_;
  bool enabled_;
  uint64_t done_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// Whether to draw progress: the --progress flag's "always" / "never", or,
// for "auto" (the default), whether stderr is a terminal. InvalidArgument
// for any other value.
absl::StatusOr<bool> ProgressEnabled(const Args& args);

// The q-quantile (0 ≤ q ≤ 1) of `values` by the nearest-rank method, which
// sorts `values`; 0 when empty.
double Quantile(std::vector<double>& values, double q);

// Seconds since `start`.
double SecondsSince(std::chrono::steady_clock::time_point start);

}  // namespace tqdb::cli

#endif  // TQDB_CLIENT_INTERNAL_CLI_UTIL_H_
