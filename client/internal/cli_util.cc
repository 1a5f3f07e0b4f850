#include "client/internal/cli_util.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tqdb::cli {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "%s: %s\n", absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str());
  return kExitError;
}

int UsageError(const std::string& why) {
  std::fprintf(stderr, "tqdb: %s\n(tqdb --help lists the commands)\n", why.c_str());
  return kExitUsage;
}

absl::StatusOr<Args> Args::Parse(const std::vector<std::string>& words,
                                 const std::set<std::string>& value_flags,
                                 const std::set<std::string>& switches) {
  Args args;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (word.size() < 3 || word.rfind("--", 0) != 0) {
      args.positional_.push_back(word);
      continue;
    }
    std::string name = word.substr(2);
    std::string value;
    bool has_value = false;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    if (switches.count(name) != 0) {
      if (has_value) return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      // (emplace, not `= "1"`: GCC 12 warns falsely about the latter.)
      args.flags_.emplace(name, std::string(1, '1'));
    } else if (value_flags.count(name) != 0) {
      if (!has_value) {
        if (i + 1 >= words.size()) {
          return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
        }
        value = words[++i];
      }
      args.flags_[name] = value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
  }
  return args;
}

std::string Args::Str(const std::string& name, const std::string& fallback) const {
  auto it = flags_.find(name);
  return it == flags_.end() ? fallback : it->second;
}

absl::StatusOr<int64_t> Args::Int(const std::string& name, int64_t fallback, int64_t min,
                                  int64_t max) const {
  auto it = flags_.find(name);
  if (it == flags_.end()) return fallback;
  int64_t value = 0;
  if (!absl::SimpleAtoi(it->second, &value) || value < min || value > max) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " must be an integer in [", min,
                                                   ", ", max, "], got '", it->second, "'"));
  }
  return value;
}

absl::StatusOr<double> Args::Double(const std::string& name, double fallback) const {
  auto it = flags_.find(name);
  if (it == flags_.end()) return fallback;
  double value = 0;
  if (!absl::SimpleAtod(it->second, &value) || !std::isfinite(value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " must be a number, got '", it->second, "'"));
  }
  return value;
}

absl::StatusOr<std::vector<float>> ParseFloats(const std::string& text) {
  std::vector<float> out;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    float v = 0;
    if (!absl::SimpleAtof(part, &v)) {
      return absl::InvalidArgumentError(absl::StrCat("not a number: '", part, "'"));
    }
    out.push_back(v);
  }
  if (out.empty()) return absl::InvalidArgumentError("no values");
  return out;
}

Progress::Progress(std::string unit, uint64_t total, bool enabled)
    : unit_(std::move(unit)),
      total_(total),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void Progress::Update(uint64_t done) {
  done_ = done;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  Draw();
}

void Progress::Finish() {
  if (!enabled_) return;
  Draw();
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

void Progress::Draw() {
  constexpr int kWidth = 30;
  const double fraction = total_ == 0 ? 1.0 : std::min(1.0, double(done_) / double(total_));
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(filled, '#');
  bar.append(kWidth - filled, '.');
  const double seconds = SecondsSince(start_);
  const double rate = seconds > 0 ? done_ / seconds : 0.0;
  std::fprintf(stderr, "\r[%s] %3d%%  %llu/%llu %s  %.0f/s ", bar.c_str(),
               static_cast<int>(fraction * 100), static_cast<unsigned long long>(done_),
               static_cast<unsigned long long>(total_), unit_.c_str(), rate);
  std::fflush(stderr);
}

absl::StatusOr<bool> ProgressEnabled(const Args& args) {
  const std::string mode = args.Str("progress", "auto");
  if (mode == "always") return true;
  if (mode == "never") return false;
  if (mode == "auto") return isatty(STDERR_FILENO) == 1;
  return absl::InvalidArgumentError("--progress must be auto, always or never");
}

double Quantile(std::vector<double>& values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  // Nearest rank: the smallest value with at least q of the values <= it.
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
  rank = std::clamp<size_t>(rank, 1, values.size());
  return values[rank - 1];
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace tqdb::cli
