// The `store` suite: the durable store end to end (storage/), in a scratch
// directory that is deleted afterwards.
//
//   append_tokens_per_s     tokens (each: K and V of every layer and head)
//                           appended per second, one token per Append call,
//                           by `writers` threads on their own sequences
//   disk_bytes_over_code_bytes  SST bytes after a full compaction / code bytes
//   reopen_code_mb_per_s    code bytes per second rebuilt into scan segments
//                           after reopening (every sequence loaded)
//   score_ms_p50/p99, attend_ms_p50/p99  one layer, 8 KV heads × 4 query
//                           heads, `--tokens` tokens (default 32768)
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "storage/store.h"

namespace tqdb::bench {
namespace {

using storage::KvCollectionConfig;
using storage::SyncPolicy;

struct NamedSync {
  SyncPolicy policy;
  const char* name;
};
constexpr NamedSync kSyncs[] = {{SyncPolicy::kEveryWrite, "every_write"},
                                {SyncPolicy::kPeriodic, "periodic"},
                                {SyncPolicy::kNone, "none"}};

std::string Shape(const KvCollectionConfig& c) {
  return std::to_string(c.num_layers) + "x" + std::to_string(c.num_kv_heads) + "x" +
         std::to_string(c.head_dim);
}

// "K4V4" for tq4 keys and values.
std::string Formats(const KvCollectionConfig& c) {
  std::string out = "K";
  out.append(c.key_format, 2, std::string::npos);
  out += "V";
  out.append(c.value_format, 2, std::string::npos);
  return out;
}

// `floats` floats of random unit head vectors.
std::vector<float> Vectors(size_t floats, const KvCollectionConfig& c, uint64_t seed) {
  return RandomUnitVectors(floats / c.head_dim, c.head_dim, seed);
}

void Check(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "store bench: %s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

template <typename T>
T Check(absl::StatusOr<T> s, const char* what) {
  Check(s.status(), what);
  return *std::move(s);
}

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& base) {
    std::string pattern = base + "/tqdb_bench_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::exit(1);
    path_ = pattern;
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

JsonLine Line(const std::string& metric, const KvCollectionConfig& c) {
  JsonLine line;
  line.Add("suite", "store").Add("metric", metric).Add("shape", Shape(c)).Add("format", Formats(c));
  return line;
}

// Appends `tokens_each` single-token Appends per writer thread, each on its
// own sequence (ids first_seq + w); returns tokens per second.
double TimedAppends(storage::KvCollection& kv, int writers, int tokens_each, uint64_t first_seq) {
  const KvCollectionConfig& c = kv.config();
  const size_t floats = static_cast<size_t>(c.num_layers) * c.num_kv_heads * c.head_dim;
  const std::vector<float> keys = Vectors(floats, c, 1), values = Vectors(floats, c, 2);
  for (int w = 0; w < writers; ++w) Check(kv.CreateSequence(first_seq + w), "create sequence");
  const double t0 = Now();
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < tokens_each; ++i) {
        Check(kv.Append(first_seq + w, storage::FloatTokens(1, keys, values)), "append");
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return static_cast<double>(writers) * tokens_each / (Now() - t0);
}

void BenchAppend(const ScratchDir& scratch, const KvCollectionConfig& c, int seconds_budget,
                 const std::vector<std::string>& syncs, const std::vector<std::string>& writer_counts) {
  for (const std::string& sync_name : syncs) {
    const NamedSync* sync = std::find_if(std::begin(kSyncs), std::end(kSyncs),
                                         [&](const NamedSync& s) { return sync_name == s.name; });
    if (sync == std::end(kSyncs)) {
      std::fprintf(stderr, "store bench: --sync takes every_write, periodic or none, not %s\n",
                   sync_name.c_str());
      std::exit(2);
    }
    for (const std::string& w : writer_counts) {
      const int writers = std::atoi(w.c_str());
      if (writers < 1) {
        std::fprintf(stderr, "store bench: --writers takes counts of at least 1, not %s\n",
                     w.c_str());
        std::exit(2);
      }
      const std::string dir = scratch.Sub(std::string("append_") + sync->name + "_" + w);
      double tokens_per_s;
      int each;
      {
        storage::StoreOptions options;
        options.sync = sync->policy;
        auto store = Check(storage::Store::Open(options, dir), "open");
        auto kv = Check(store->CreateKvCollection("kv", c), "create");
        // Calibrate on a short run, then time about a second's worth.
        const double rate = TimedAppends(*kv, writers, 20, 0);
        each = std::max(20, static_cast<int>(rate * seconds_budget / writers));
        tokens_per_s = TimedAppends(*kv, writers, each, 100);
      }
      // Each configuration writes GBs: gone at once, so the next is not timed
      // while the kernel writes this one's dirty pages back.
      std::filesystem::remove_all(dir);
      Line("append_tokens_per_s", c)
          .Add("sync", sync->name)
          .Add("writers", writers)
          .Add("tokens", static_cast<long>(each) * writers)
          .Add("value", tokens_per_s)
          .Print();
    }
  }
}

void BenchFootprint(const ScratchDir& scratch, const KvCollectionConfig& c, int tokens) {
  const std::string dir = scratch.Sub("footprint");
  {
    auto store = Check(storage::Store::Open({}, dir), "open");
    auto kv = Check(store->CreateKvCollection("kv", c), "create");
    const size_t per_token = static_cast<size_t>(c.num_layers) * c.num_kv_heads * c.head_dim;
    constexpr int kSequences = 8, kChunk = 64;
    std::vector<float> keys = Vectors(per_token * kChunk, c, 3);
    std::vector<float> values = Vectors(per_token * kChunk, c, 4);
    for (int s = 0; s < kSequences; ++s) {
      Check(kv->CreateSequence(s), "create sequence");
      for (int t = 0; t < tokens / kSequences; t += kChunk) {
        Check(kv->Append(s, storage::FloatTokens(kChunk, keys, values)), "append");
      }
    }
    Check(store->Flush(/*compact=*/true), "compact");
    const storage::KvStats stats = Check(kv->Stats(), "stats");
    Line("disk_bytes_over_code_bytes", c)
        .Add("tokens", static_cast<size_t>(stats.stored_tokens))
        .Add("code_bytes", static_cast<size_t>(stats.code_bytes))
        .Add("disk_bytes", static_cast<size_t>(stats.disk_bytes))
        .Add("value", static_cast<double>(stats.disk_bytes) / stats.code_bytes)
        .Print();
  }
  // Reopen, then load every sequence (a Score per sequence touches them all).
  const double t0 = Now();
  auto store = Check(storage::Store::Open({}, dir), "reopen");
  auto kv = Check(store->GetKvCollection("kv"), "get");
  const double opened = Now() - t0;
  const std::vector<float> q = Vectors(static_cast<size_t>(c.num_kv_heads) * c.head_dim, c, 5);
  for (uint64_t s : kv->Sequences()) Check(kv->Score(s, 0, q).status(), "score");
  const double seconds = Now() - t0;
  const storage::KvStats stats = Check(kv->Stats(), "stats");
  Line("reopen_code_mb_per_s", c)
      .Add("code_bytes", static_cast<size_t>(stats.code_bytes))
      .Add("seconds", seconds)
      .Add("open_seconds", opened)
      .Add("value", stats.code_bytes / seconds / 1e6)
      .Print();
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

void BenchQueries(const ScratchDir& scratch, const KvCollectionConfig& c, int tokens, int reps) {
  const std::string dir = scratch.Sub("queries");
  storage::StoreOptions options;
  options.sync = SyncPolicy::kNone;  // loading data, not measuring durability
  auto store = Check(storage::Store::Open(options, dir), "open");
  auto kv = Check(store->CreateKvCollection("kv", c), "create");
  const size_t per_token = static_cast<size_t>(c.num_layers) * c.num_kv_heads * c.head_dim;
  constexpr int kChunk = 512;
  Check(kv->CreateSequence(1), "create sequence");
  for (int t = 0; t < tokens; t += kChunk) {
    const int n = std::min(kChunk, tokens - t);
    const std::vector<float> keys = Vectors(per_token * n, c, 10 + t);
    const std::vector<float> values = Vectors(per_token * n, c, 20 + t);
    Check(kv->Append(1, storage::FloatTokens(n, keys, values)), "append");
  }
  constexpr int kGroup = 4;
  const std::vector<float> q =
      Vectors(static_cast<size_t>(c.num_kv_heads) * kGroup * c.head_dim, c, 6);
  for (const char* what : {"score", "attend"}) {
    std::vector<double> ms;
    for (int r = 0; r < reps; ++r) {
      const double t0 = Now();
      if (what[0] == 's') {
        Check(kv->Score(1, r % c.num_layers, q).status(), "score");
      } else {
        Check(kv->Attend(1, r % c.num_layers, q).status(), "attend");
      }
      ms.push_back((Now() - t0) * 1e3);
    }
    for (auto [name, p] : {std::pair{"_ms_p50", 0.5}, std::pair{"_ms_p99", 0.99}}) {
      Line(std::string(what) + name, c)
          .Add("tokens", tokens)
          .Add("kv_heads", c.num_kv_heads)
          .Add("query_heads", c.num_kv_heads * kGroup)
          .Add("value", Percentile(ms, p))
          .Print();
    }
  }
}

}  // namespace

int RunStore(int argc, char** argv) {
  const Flags flags(argc, argv);
  const ScratchDir scratch(flags.Str("dir", std::filesystem::temp_directory_path().string()));
  KvCollectionConfig c;
  c.num_layers = static_cast<int>(flags.Int("layers", 32));
  c.num_kv_heads = static_cast<int>(flags.Int("heads", 8));
  c.head_dim = static_cast<int>(flags.Int("d", 128));
  c.key_format = flags.Str("key_format", "tq4");
  c.value_format = flags.Str("value_format", "tq4");
  const std::string parts = flags.Str("parts", "append,footprint,queries");
  auto wanted = [&](const char* part) { return parts.find(part) != std::string::npos; };
  // Queries first. Timed right after the append part, a few Score calls in
  // the first seconds took 5 ms (a time slice) instead of 0.5, though no
  // thread of the process ran then; after a 2 s pause none did. We take it
  // for the VM settling after the GBs that part wrote and freed.
  if (wanted("queries")) {
    // Queries touch one layer: a one-layer collection holds the same
    // per-layer data without writing the other 31.
    KvCollectionConfig one_layer = c;
    one_layer.num_layers = 1;
    BenchQueries(scratch, one_layer, static_cast<int>(flags.Int("tokens", 32768)),
                 static_cast<int>(flags.Int("reps", 200)));
  }
  if (wanted("footprint")) {
    BenchFootprint(scratch, c, static_cast<int>(flags.Int("footprint_tokens", 2048)));
  }
  if (wanted("append")) {
    BenchAppend(scratch, c, static_cast<int>(flags.Int("seconds", 1)),
                flags.List("sync", "every_write,periodic,none"), flags.List("writers", "1,8"));
  }
  return 0;
}

}  // namespace tqdb::bench
