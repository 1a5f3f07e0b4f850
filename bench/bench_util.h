// Small helpers shared by the benchmark suites: flags, timing, JSON lines,
// data generation, a thread pool-free parallel for.
#ifndef TQDB_BENCH_BENCH_UTIL_H_
#define TQDB_BENCH_BENCH_UTIL_H_

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace tqdb::bench {

// --name value flags after the suite name.
class Flags {
 public:
  Flags(int argc, char** argv) {
    for (int i = 0; i + 1 < argc; i += 2) {
      std::string key = argv[i];
      if (key.rfind("--", 0) == 0) values_[key.substr(2)] = argv[i + 1];
    }
  }
  long Int(const std::string& name, long fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : std::stol(it->second);
  }
  std::string Str(const std::string& name, const std::string& fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  // A comma-separated flag ("a,b,c"), empty items dropped.
  std::vector<std::string> List(const std::string& name, const std::string& fallback) const {
    std::vector<std::string> items;
    const std::string all = Str(name, fallback);
    for (size_t at = 0; at <= all.size();) {
      const size_t comma = std::min(all.find(',', at), all.size());
      if (comma > at) items.push_back(all.substr(at, comma - at));
      at = comma + 1;
    }
    return items;
  }

 private:
  std::map<std::string, std::string> values_;
};

// One JSON object, fields in insertion order, printed as one line.
class JsonLine {
 public:
  JsonLine& Add(const std::string& key, const std::string& value) {
    Sep();
    out_ += "\"" + key + "\":\"" + value + "\"";
    return *this;
  }
  JsonLine& Add(const std::string& key, const char* value) { return Add(key, std::string(value)); }
  JsonLine& Add(const std::string& key, double value) {
    Sep();
    char buf[64];
    if (std::isfinite(value)) {
      std::snprintf(buf, sizeof(buf), "%.6g", value);
    } else {
      std::snprintf(buf, sizeof(buf), "null");
    }
    out_ += "\"" + key + "\":" + buf;
    return *this;
  }
  JsonLine& Add(const std::string& key, long value) { return Add(key, static_cast<double>(value)); }
  JsonLine& Add(const std::string& key, int value) { return Add(key, static_cast<double>(value)); }
  JsonLine& Add(const std::string& key, size_t value) { return Add(key, static_cast<double>(value)); }
  void Print() const {
    std::printf("{%s}\n", out_.c_str());
    std::fflush(stdout);
  }

 private:
  void Sep() {
    if (!out_.empty()) out_ += ",";
  }
  std::string out_;
};

inline double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Runs body(begin, end) over [0, n) split across `threads` threads.
inline void ParallelFor(size_t n, int threads, const std::function<void(size_t, size_t)>& body) {
  if (threads <= 1) {
    body(0, n);
    return;
  }
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    const size_t begin = n * t / threads, end = n * (t + 1) / threads;
    pool.emplace_back([&body, begin, end] { body(begin, end); });
  }
  for (std::thread& th : pool) th.join();
}

// Best wall time of `reps` runs of fn.
inline double BestSeconds(int reps, const std::function<void()>& fn) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const double t0 = Now();
    fn();
    best = std::min(best, Now() - t0);
  }
  return best;
}

// n uniformly random unit vectors of `dim` coordinates (normalised Gaussians).
inline std::vector<float> RandomUnitVectors(size_t n, int dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> x(n * dim);
  for (size_t v = 0; v < n; ++v) {
    float* p = &x[v * dim];
    double norm2 = 0;
    for (int i = 0; i < dim; ++i) {
      p[i] = normal(rng);
      norm2 += double{p[i]} * p[i];
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(norm2));
    for (int i = 0; i < dim; ++i) p[i] *= inv;
  }
  return x;
}

}  // namespace tqdb::bench

#endif  // TQDB_BENCH_BENCH_UTIL_H_
