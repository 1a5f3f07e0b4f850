// tqdb append and tqdb score: KV collections.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "client/internal/cli_commands.h"
#include "client/internal/cli_util.h"
#include "io/npy_file.h"

namespace tqdb::cli {
namespace {

using client::KvConfig;

// The configuration of KV collection `name`; InvalidArgument if it is an
// embedding collection.
absl::StatusOr<KvConfig> KvShape(client::Client& db, const std::string& name) {
  auto d = db.DescribeCollection(name);
  if (!d.ok()) return d.status();
  if (d->kind != client::CollectionKind::kKv) {
    return absl::InvalidArgumentError(name + " is an embedding collection, not a kv one");
  }
  return d->kv;
}

// Token tensors of a sequence held whole in memory: [layers·heads, n, dim]
// rows, as an .npy of shape [layers·heads·n, dim] stores them.
struct TokenFile {
  size_t n_tokens = 0;
  std::vector<float> keys, values;
};

absl::StatusOr<TokenFile> ReadTokenFiles(const std::string& keys_path,
                                         const std::string& values_path, const KvConfig& c) {
  auto keys = io::ReadNpy(keys_path);
  if (!keys.ok()) return keys.status();
  auto values = io::ReadNpy(values_path);
  if (!values.ok()) return values.status();
  const size_t rows_per_token = static_cast<size_t>(c.num_layers) * c.num_kv_heads;
  const auto check = [&](const std::string& path, const io::VectorSet<float>& set) {
    if (set.dim == c.head_dim && set.n % rows_per_token == 0) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": shape [", set.n, ", ", set.dim, "] is not [layers*kv_heads*n, head_dim] = [",
        c.num_layers, "*", c.num_kv_heads, "*n, ", c.head_dim, "]"));
  };
  if (absl::Status s = check(keys_path, *keys); !s.ok()) return s;
  if (absl::Status s = check(values_path, *values); !s.ok()) return s;
  if (keys->n != values->n) {
    return absl::InvalidArgumentError(absl::StrCat(keys_path, " has ", keys->n, " rows, ",
                                                   values_path, " ", values->n));
  }
  TokenFile out;
  out.n_tokens = keys->n / rows_per_token;
  out.keys = std::move(keys->data);
  out.values = std::move(values->data);
  return out;
}

// Tokens [begin, end) of `all` (rows [layers·heads][n_tokens][dim]) as a
// token tensor [layers·heads][end - begin][dim].
void SliceTokens(const std::vector<float>& all, size_t n_tokens, size_t rows_per_token, int dim,
                 size_t begin, size_t end, std::vector<float>* out) {
  out->resize(rows_per_token * (end - begin) * dim);
  const size_t chunk = (end - begin) * dim;
  for (size_t r = 0; r < rows_per_token; ++r) {
    std::memcpy(out->data() + r * chunk, all.data() + (r * n_tokens + begin) * dim,
                chunk * sizeof(float));
  }
}

}  // namespace

int RunAppend(client::Client& db, const std::vector<std::string>& words) {
  auto args = Args::Parse(words, {"tokens", "seed", "chunk", "keys", "values", "progress"},
                          {"random"});
  if (!args.ok()) return UsageError(std::string(args.status().message()));
  const auto& pos = args->positional();
  if (pos.size() != 2) return UsageError("append takes COLLECTION SEQ");
  uint64_t seq = 0;
  if (!absl::SimpleAtoi(pos[1], &seq)) return UsageError("SEQ must be an unsigned integer");
  const bool random = args->Has("random");
  const bool from_files = args->Has("keys") || args->Has("values");
  if (random == from_files || (random && !args->Has("tokens")) ||
      (from_files && !(args->Has("keys") && args->Has("values")))) {
    return UsageError("append needs --tokens N --random, or --keys K.npy --values V.npy");
  }
  auto tokens = args->Int("tokens", 0, 1, int64_t{1} << 32);
  auto seed = args->Int("seed", 1, 0, INT64_MAX);
  auto chunk = args->Int("chunk", 64, 1, 1 << 20);
  auto progress_on = ProgressEnabled(*args);
  for (const absl::Status& s : {tokens.status(), seed.status(), chunk.status(),
                                progress_on.status()}) {
    if (!s.ok()) return UsageError(std::string(s.message()));
  }
  const std::string& name = pos[0];
  auto config = KvShape(db, name);
  if (!config.ok()) return Fail(config.status());
  const size_t rows_per_token = static_cast<size_t>(config->num_layers) * config->num_kv_heads;
  const int dim = config->head_dim;

  TokenFile file;
  size_t n_tokens = static_cast<size_t>(*tokens);
  if (from_files) {
    auto read = ReadTokenFiles(args->Str("keys"), args->Str("values"), *config);
    if (!read.ok()) return Fail(read.status());
    file = std::move(*read);
    n_tokens = file.n_tokens;
  }
  // A demo needs no set-up: the sequence is created when missing.
  if (absl::Status s = db.CreateSequence(name, seq);
      !s.ok() && s.code() != absl::StatusCode::kAlreadyExists) {
    return Fail(s);
  }

  std::mt19937_64 rng(static_cast<uint64_t>(*seed));
  std::normal_distribution<float> normal;
  std::vector<float> keys, values;
  Progress progress("tokens", n_tokens, *progress_on);
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<client::AppendStream> stream = db.OpenAppendStream();
  absl::Status write_status;
  for (size_t begin = 0; begin < n_tokens && write_status.ok();
       begin += static_cast<size_t>(*chunk)) {
    const size_t end = std::min(n_tokens, begin + static_cast<size_t>(*chunk));
    if (from_files) {
      SliceTokens(file.keys, n_tokens, rows_per_token, dim, begin, end, &keys);
      SliceTokens(file.values, n_tokens, rows_per_token, dim, begin, end, &values);
    } else {
      keys.resize(rows_per_token * (end - begin) * dim);
      values.resize(keys.size());
      for (float& x : keys) x = normal(rng);
      for (float& x : values) x = normal(rng);
    }
    write_status = stream->Write(name, seq, end - begin, keys, values);
    progress.Update(end);
  }
  auto result = stream->Finish();
  progress.Finish();
  if (!result.ok()) return Fail(result.status());
  const double seconds = SecondsSince(start);
  std::printf("appended %llu tokens to %s/%llu (length %llu) in %.3f s: %.0f tokens/s\n",
              static_cast<unsigned long long>(result->appended), name.c_str(),
              static_cast<unsigned long long>(seq),
              static_cast<unsigned long long>(result->length), seconds,
              seconds > 0 ? result->appended / seconds : 0.0);
  return kExitOk;
}

int RunScore(client::Client& db, const std::vector<std::string>& words) {
  auto args = Args::Parse(
      words, {"layer", "queries", "query-heads", "seed", "begin", "end", "scale", "top"},
      {"random"});
  if (!args.ok()) return UsageError(std::string(args.status().message()));
  const auto& pos = args->positional();
  if (pos.size() != 2) return UsageError("score takes COLLECTION SEQ");
  uint64_t seq = 0;
  if (!absl::SimpleAtoi(pos[1], &seq)) return UsageError("SEQ must be an unsigned integer");
  if (args->Has("random") == args->Has("queries")) {
    return UsageError("score needs exactly one of --queries Q.npy and --random");
  }
  auto layer = args->Int("layer", 0, 0, 1 << 16);
  auto query_heads = args->Int("query-heads", 0, 1, 1 << 16);
  auto seed = args->Int("seed", 1, 0, INT64_MAX);
  auto begin = args->Int("begin", 0, 0, INT64_MAX);
  auto end = args->Int("end", -1, 0, INT64_MAX);
  auto top = args->Int("top", 5, 0, 1 << 30);
  auto scale = args->Double("scale", 0.0);
  for (const absl::Status& s : {layer.status(), query_heads.status(), seed.status(),
                                begin.status(), end.status(), top.status(), scale.status()}) {
    if (!s.ok()) return UsageError(std::string(s.message()));
  }
  const std::string& name = pos[0];
  auto config = KvShape(db, name);
  if (!config.ok()) return Fail(config.status());
  const int dim = config->head_dim;

  std::vector<float> queries;
  if (args->Has("queries")) {
    auto read = io::ReadNpy(args->Str("queries"));
    if (!read.ok()) return Fail(read.status());
    queries = std::move(read->data);
  } else {
    const int64_t heads = *query_heads > 0 ? *query_heads : config->num_kv_heads;
    std::mt19937_64 rng(static_cast<uint64_t>(*seed));
    std::normal_distribution<float> normal;
    queries.resize(static_cast<size_t>(heads) * dim);
    for (float& x : queries) x = normal(rng);
  }
  client::RangeOptions range;
  range.begin = static_cast<uint64_t>(*begin);
  if (*end >= 0) range.end = static_cast<uint64_t>(*end);
  range.scale = static_cast<float>(*scale);

  const auto t0 = std::chrono::steady_clock::now();
  auto logits = db.Score(name, seq, static_cast<int>(*layer), queries, range);
  const double ms = SecondsSince(t0) * 1e3;
  if (!logits.ok()) return Fail(logits.status());
  const size_t heads = queries.size() / dim;
  const size_t n = heads == 0 ? 0 : logits->size() / heads;
  // Each head's best tokens, as "head token logit" (token: its position).
  std::vector<size_t> order(n);
  for (size_t h = 0; h < heads; ++h) {
    const float* row = logits->data() + h * n;
    std::iota(order.begin(), order.end(), size_t{0});
    const size_t shown = std::min(n, static_cast<size_t>(*top));
    std::partial_sort(order.begin(), order.begin() + shown, order.end(),
                      [row](size_t a, size_t b) { return row[a] > row[b]; });
    for (size_t i = 0; i < shown; ++i) {
      std::printf("%zu\t%llu\t%g\n", h, static_cast<unsigned long long>(range.begin + order[i]),
                  row[order[i]]);
    }
  }
  std::fprintf(stderr, "scored %zu query heads x %zu tokens in %.3f ms\n", heads, n, ms);
  return kExitOk;
}

}  // namespace tqdb::cli
