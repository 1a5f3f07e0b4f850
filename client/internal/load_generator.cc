#include "client/internal/load_generator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/internal/cli_util.h"
#include "common/status.h"

namespace tqdb::cli {
namespace {

using Clock = std::chrono::steady_clock;

enum class Op { kAppend, kScore, kSearch };

// What one client thread measured.
struct WorkerResult {
  std::vector<double> append_ms, score_ms, search_ms;
  uint64_t append_errors = 0, score_errors = 0, search_errors = 0;
  uint64_t truncations = 0, truncate_errors = 0;
  std::string first_error;
  absl::Status setup;  // a failure before the run (no client)

  void Error(const absl::Status& s) {
    if (first_error.empty()) {
      first_error = absl::StrCat(absl::StatusCodeToString(s.code()), ": ", s.message());
    }
  }
};

std::vector<float> Gaussian(size_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> out(n);
  for (float& x : out) x = normal(rng);
  return out;
}

// n random unit vectors of `dim` floats.
std::vector<float> UnitVectors(size_t n, int dim, std::mt19937_64& rng) {
  std::vector<float> out = Gaussian(n * dim, rng);
  for (size_t i = 0; i < n; ++i) {
    float* v = out.data() + i * dim;
    double norm2 = 0;
    for (int j = 0; j < dim; ++j) norm2 += double{v[j]} * v[j];
    const float inv = static_cast<float>(1.0 / std::sqrt(std::max(norm2, 1e-30)));
    for (int j = 0; j < dim; ++j) v[j] *= inv;
  }
  return out;
}

std::string KvName(const LoadOptions& o) { return o.prefix + "_kv"; }
std::string VecName(const LoadOptions& o) { return o.prefix + "_vec"; }

absl::Status SetUp(client::Client& db, const LoadOptions& o) {
  client::KvConfig kv;
  kv.num_layers = o.layers;
  kv.num_kv_heads = o.kv_heads;
  kv.head_dim = o.head_dim;
  TQDB_RETURN_IF_ERROR(db.CreateKvCollection(KvName(o), kv));
  std::mt19937_64 rng(o.seed);
  const size_t per_token = static_cast<size_t>(o.layers) * o.kv_heads * o.head_dim;
  for (int c = 0; c < o.clients; ++c) {
    const uint64_t seq = static_cast<uint64_t>(c) + 1;
    TQDB_RETURN_IF_ERROR(db.CreateSequence(KvName(o), seq));
    if (o.initial_tokens > 0) {
      const std::vector<float> keys = Gaussian(per_token * o.initial_tokens, rng);
      const std::vector<float> values = Gaussian(per_token * o.initial_tokens, rng);
      TQDB_RETURN_IF_ERROR(db.Append(KvName(o), seq, o.initial_tokens, keys, values));
    }
  }
  client::EmbeddingConfig embedding;
  embedding.dim = o.dim;
  TQDB_RETURN_IF_ERROR(db.CreateEmbeddingCollection(VecName(o), embedding));
  constexpr int kBatch = 1000;
  std::vector<uint64_t> ids;
  for (int begin = 0; begin < o.vectors; begin += kBatch) {
    const int n = std::min(kBatch, o.vectors - begin);
    ids.resize(n);
    for (int i = 0; i < n; ++i) ids[i] = static_cast<uint64_t>(begin + i);
    TQDB_RETURN_IF_ERROR(db.Upsert(VecName(o), ids, UnitVectors(n, o.dim, rng)));
  }
  return absl::OkStatus();
}

// One client: its own channel, its own sequence (id index + 1), the mix
// until `deadline` (starting when `go` turns true).
void Work(int index, const client::ClientOptions& client_options, const LoadOptions& o,
          const std::atomic<bool>& go, const Clock::time_point& deadline, WorkerResult* out) {
  auto connected = client::Client::Connect(client_options);
  if (!connected.ok()) {
    out->setup = connected.status();
    return;
  }
  client::Client& db = **connected;
  std::mt19937_64 rng(o.seed * 1000003 + static_cast<uint64_t>(index));
  const uint64_t seq = static_cast<uint64_t>(index) + 1;
  const size_t per_token = static_cast<size_t>(o.layers) * o.kv_heads * o.head_dim;
  // Small pools of inputs, cycled, so the client spends its time calling.
  constexpr int kPool = 8;
  const std::vector<float> token_keys = Gaussian(per_token * kPool, rng);
  const std::vector<float> token_values = Gaussian(per_token * kPool, rng);
  const size_t query_floats = static_cast<size_t>(o.kv_heads) * o.group * o.head_dim;
  const std::vector<float> score_queries = Gaussian(query_floats * kPool, rng);
  const std::vector<float> search_queries = UnitVectors(kPool, o.dim, rng);
  const int total_weight = o.append_weight + o.score_weight + o.search_weight;
  std::uniform_int_distribution<int> pick(0, total_weight - 1);
  const std::string kv_name = KvName(o), vec_name = VecName(o);

  while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
  for (uint64_t i = 0; Clock::now() < deadline; ++i) {
    const int draw = pick(rng);
    const Op op = draw < o.append_weight                    ? Op::kAppend
                  : draw < o.append_weight + o.score_weight ? Op::kScore
                                                            : Op::kSearch;
    const int slot = static_cast<int>(i % kPool);
    const Clock::time_point t0 = Clock::now();
    absl::Status status;
    switch (op) {
      case Op::kAppend: {
        auto r = db.Append(kv_name, seq, 1,
                           absl::MakeConstSpan(token_keys.data() + slot * per_token, per_token),
                           absl::MakeConstSpan(token_values.data() + slot * per_token, per_token));
        out->append_ms.push_back(SecondsSince(t0) * 1e3);
        status = r.status();
        if (!status.ok()) {
          ++out->append_errors;
        } else if (r->length >= static_cast<uint64_t>(o.max_tokens)) {
          ++out->truncations;
          const absl::Status t = db.Truncate(kv_name, seq, o.initial_tokens);
          if (!t.ok()) {
            ++out->truncate_errors;
            out->Error(t);
          }
        }
        break;
      }
      case Op::kScore: {
        const int layer = static_cast<int>(rng() % static_cast<uint64_t>(o.layers));
        auto r = db.Score(kv_name, seq, layer,
                          absl::MakeConstSpan(score_queries.data() + slot * query_floats,
                                              query_floats));
        out->score_ms.push_back(SecondsSince(t0) * 1e3);
        status = r.status();
        if (!status.ok()) ++out->score_errors;
        break;
      }
      case Op::kSearch: {
        auto r = db.Search(vec_name, absl::MakeConstSpan(search_queries.data() + slot * o.dim,
                                                         static_cast<size_t>(o.dim)),
                           o.k);
        out->search_ms.push_back(SecondsSince(t0) * 1e3);
        status = r.status();
        if (!status.ok()) ++out->search_errors;
        break;
      }
    }
    if (!status.ok()) out->Error(status);
  }
}

OpReport Summarize(std::vector<double> ms, uint64_t errors) {
  OpReport r;
  r.ops = ms.size();
  r.errors = errors;
  r.p50_ms = Quantile(ms, 0.5);
  r.p99_ms = Quantile(ms, 0.99);
  r.max_ms = ms.empty() ? 0.0 : ms.back();  // sorted by Quantile
  return r;
}

void AddOp(std::string* json, const char* name, const OpReport& r, double seconds) {
  absl::StrAppend(json, ",\"", name, "_ops\":", r.ops, ",\"", name, "_ops_per_s\":",
                  seconds > 0 ? std::round(r.ops / seconds * 10) / 10 : 0.0, ",\"", name,
                  "_p50_ms\":", std::round(r.p50_ms * 1000) / 1000, ",\"", name,
                  "_p99_ms\":", std::round(r.p99_ms * 1000) / 1000, ",\"", name,
                  "_errors\":", r.errors);
}

}  // namespace

std::string LoadReport::ToJson() const {
  std::string json = absl::StrCat(
      "{\"clients\":", clients, ",\"seconds\":", std::round(seconds * 1000) / 1000,
      ",\"ops\":", all.ops, ",\"ops_per_s\":",
      seconds > 0 ? std::round(all.ops / seconds * 10) / 10 : 0.0, ",\"errors\":", errors,
      ",\"p50_ms\":", std::round(all.p50_ms * 1000) / 1000,
      ",\"p99_ms\":", std::round(all.p99_ms * 1000) / 1000,
      ",\"max_ms\":", std::round(all.max_ms * 1000) / 1000);
  AddOp(&json, "append", append, seconds);
  AddOp(&json, "score", score, seconds);
  AddOp(&json, "search", search, seconds);
  absl::StrAppend(&json, ",\"truncations\":", truncations, "}");
  return json;
}

absl::StatusOr<LoadReport> RunLoad(const client::ClientOptions& client_options,
                                   const LoadOptions& o) {
  if (o.clients < 1 || o.seconds <= 0 || o.layers < 1 || o.kv_heads < 1 || o.head_dim < 1 ||
      o.group < 1 || o.dim < 1 || o.vectors < 1 || o.k < 1 || o.append_weight < 0 ||
      o.score_weight < 0 || o.search_weight < 0 ||
      o.append_weight + o.score_weight + o.search_weight == 0 || o.initial_tokens < 1 ||
      o.max_tokens <= o.initial_tokens) {
    return absl::InvalidArgumentError(
        "load options: need clients, seconds, shapes, k >= 1, a non-zero mix, "
        "initial_tokens >= 1 and max_tokens > initial_tokens");
  }
  TQDB_ASSIGN_OR_RETURN(std::unique_ptr<client::Client> admin,
                        client::Client::Connect(client_options));
  absl::Status setup = SetUp(*admin, o);
  const auto clean_up = [&]() -> absl::Status {
    if (o.keep) return absl::OkStatus();
    const absl::Status a = admin->DropCollection(KvName(o));
    const absl::Status b = admin->DropCollection(VecName(o));
    // A collection the failed set-up never created is not an error.
    for (const absl::Status& s : {a, b}) {
      if (!s.ok() && s.code() != absl::StatusCode::kNotFound) return s;
    }
    return absl::OkStatus();
  };
  if (!setup.ok()) {
    clean_up().IgnoreError();
    return setup;
  }

  std::vector<WorkerResult> results(o.clients);
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  Clock::time_point deadline;
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back(Work, c, std::cref(client_options), std::cref(o), std::cref(go),
                         std::cref(deadline), &results[c]);
  }
  // Give the threads a moment to connect and build their inputs, then start
  // them together (the deadline is written before `go` publishes it).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const Clock::time_point start = Clock::now();
  deadline = start + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(o.seconds));
  go.store(true, std::memory_order_release);
  for (std::thread& t : threads) t.join();

  LoadReport report;
  report.clients = o.clients;
  report.seconds = SecondsSince(start);
  std::vector<double> append_ms, score_ms, search_ms, all_ms;
  uint64_t append_errors = 0, score_errors = 0, search_errors = 0;
  for (WorkerResult& r : results) {
    if (!r.setup.ok()) {
      clean_up().IgnoreError();
      return r.setup;
    }
    append_ms.insert(append_ms.end(), r.append_ms.begin(), r.append_ms.end());
    score_ms.insert(score_ms.end(), r.score_ms.begin(), r.score_ms.end());
    search_ms.insert(search_ms.end(), r.search_ms.begin(), r.search_ms.end());
    append_errors += r.append_errors;
    score_errors += r.score_errors;
    search_errors += r.search_errors;
    report.truncations += r.truncations;
    report.errors += r.append_errors + r.score_errors + r.search_errors + r.truncate_errors;
    if (report.first_error.empty()) report.first_error = r.first_error;
  }
  all_ms.insert(all_ms.end(), append_ms.begin(), append_ms.end());
  all_ms.insert(all_ms.end(), score_ms.begin(), score_ms.end());
  all_ms.insert(all_ms.end(), search_ms.begin(), search_ms.end());
  report.append = Summarize(std::move(append_ms), append_errors);
  report.score = Summarize(std::move(score_ms), score_errors);
  report.search = Summarize(std::move(search_ms), search_errors);
  report.all = Summarize(std::move(all_ms), append_errors + score_errors + search_errors);
  TQDB_RETURN_IF_ERROR(clean_up());
  return report;
}

}  // namespace tqdb::cli
