// tqdb import and tqdb search: embedding collections.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "client/internal/cli_commands.h"
#include "client/internal/cli_util.h"
#include "io/vector_file.h"

namespace tqdb::cli {
namespace {

absl::StatusOr<client::Metric> MetricFromName(const std::string& name) {
  if (name == "ip") return client::Metric::kInnerProduct;
  if (name == "cosine") return client::Metric::kCosine;
  if (name == "l2") return client::Metric::kL2;
  return absl::InvalidArgumentError("--metric must be ip, cosine or l2, got '" + name + "'");
}

absl::StatusOr<client::RawType> RawFromName(const std::string& name) {
  if (name == "none") return client::RawType::kNone;
  if (name == "f16") return client::RawType::kF16;
  if (name == "f32") return client::RawType::kF32;
  return absl::InvalidArgumentError("--keep-raw must be none, f16 or f32, got '" + name + "'");
}

// The embedding collection `name` of dimension `dim`: created when `create`,
// else checked (InvalidArgument for a KV collection or another dimension).
absl::Status PrepareCollection(client::Client& db, const std::string& name, int dim,
                               const Args& args, const std::string& file) {
  if (args.Has("create")) {
    client::EmbeddingConfig config;
    config.dim = dim;
    auto metric = MetricFromName(args.Str("metric", "ip"));
    if (!metric.ok()) return metric.status();
    auto raw = RawFromName(args.Str("keep-raw", "none"));
    if (!raw.ok()) return raw.status();
    config.metric = *metric;
    config.keep_raw = *raw;
    config.format = args.Str("format");
    return db.CreateEmbeddingCollection(name, config).status();
  }
  auto d = db.DescribeCollection(name);
  if (!d.ok()) return d.status();
  if (d->kind != client::CollectionKind::kEmbedding) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " is a kv collection; import needs an embedding collection"));
  }
  if (d->embedding.dim != dim) {
    return absl::InvalidArgumentError(absl::StrCat(file, " holds vectors of dim ", dim, "; ",
                                                   name, " has dim ", d->embedding.dim));
  }
  return absl::OkStatus();
}

}  // namespace

int RunImport(client::Client& db, const std::vector<std::string>& words) {
  auto args = Args::Parse(
      words, {"batch", "start-id", "limit", "metric", "format", "keep-raw", "progress"},
      {"create"});
  if (!args.ok()) return UsageError(std::string(args.status().message()));
  if (args->positional().size() != 2) return UsageError("import takes COLLECTION FILE");
  const std::string& name = args->positional()[0];
  const std::string& file = args->positional()[1];
  auto batch = args->Int("batch", 1000, 1, 1 << 20);
  auto start_id = args->Int("start-id", 0, 0, INT64_MAX);
  auto limit = args->Int("limit", INT64_MAX, 0, INT64_MAX);
  auto progress_on = ProgressEnabled(*args);
  for (const absl::Status& s :
       {batch.status(), start_id.status(), limit.status(), progress_on.status()}) {
    if (!s.ok()) return UsageError(std::string(s.message()));
  }
  if (!args->Has("create") &&
      (args->Has("metric") || args->Has("format") || args->Has("keep-raw"))) {
    return UsageError("--metric, --format and --keep-raw go with --create");
  }

  auto vectors = io::ReadVectors(file, static_cast<size_t>(*limit));
  if (!vectors.ok()) return Fail(vectors.status());
  if (absl::Status s = PrepareCollection(db, name, vectors->dim, *args, file); !s.ok()) {
    return Fail(s);
  }

  const auto start = std::chrono::steady_clock::now();
  Progress progress("vectors", vectors->n, *progress_on);
  std::vector<uint64_t> ids;
  for (size_t begin = 0; begin < vectors->n; begin += static_cast<size_t>(*batch)) {
    const size_t end = std::min(vectors->n, begin + static_cast<size_t>(*batch));
    ids.clear();
    for (size_t i = begin; i < end; ++i) ids.push_back(static_cast<uint64_t>(*start_id) + i);
    const absl::Span<const float> rows(vectors->row(begin), (end - begin) * vectors->dim);
    auto upserted = db.Upsert(name, ids, rows);
    if (!upserted.ok()) {
      progress.Finish();
      std::fprintf(stderr, "tqdb: stopped after %zu of %zu vectors\n", begin, vectors->n);
      return Fail(upserted.status());
    }
    progress.Update(end);
  }
  progress.Finish();
  const double seconds = SecondsSince(start);
  std::printf("imported %zu vectors (dim %d) into %s in %.3f s: %.0f vectors/s\n", vectors->n,
              vectors->dim, name.c_str(), seconds, seconds > 0 ? vectors->n / seconds : 0.0);
  return kExitOk;
}

int RunSearch(client::Client& db, const std::vector<std::string>& words) {
  auto args = Args::Parse(words, {"query", "queries", "limit", "k", "oversample", "gt"});
  if (!args.ok()) return UsageError(std::string(args.status().message()));
  const auto& pos = args->positional();
  // The first CLI's form: search COLLECTION K V1,V2,...
  if (pos.size() == 3 && !args->Has("query") && !args->Has("queries")) {
    int k = 0;
    if (!absl::SimpleAtoi(pos[1], &k)) return UsageError("K must be an integer");
    auto query = ParseFloats(pos[2]);
    if (!query.ok()) return UsageError(std::string(query.status().message()));
    auto hits = db.Search(pos[0], *query, k);
    if (!hits.ok()) return Fail(hits.status());
    for (const auto& h : *hits) std::printf("%lld\t%g\n", static_cast<long long>(h.id), h.distance);
    return kExitOk;
  }
  if (pos.size() != 1) return UsageError("search takes COLLECTION and --query or --queries");
  if (args->Has("query") == args->Has("queries")) {
    return UsageError("search needs exactly one of --query and --queries");
  }
  const std::string& name = pos[0];
  auto k = args->Int("k", 10, 1, 1 << 20);
  auto oversample = args->Int("oversample", 0, 0, 1 << 16);
  auto limit = args->Int("limit", INT64_MAX, 1, INT64_MAX);
  for (const absl::Status& s : {k.status(), oversample.status(), limit.status()}) {
    if (!s.ok()) return UsageError(std::string(s.message()));
  }

  if (args->Has("query")) {
    if (args->Has("gt") || args->Has("limit")) return UsageError("--gt and --limit go with --queries");
    auto query = ParseFloats(args->Str("query"));
    if (!query.ok()) return UsageError(std::string(query.status().message()));
    auto hits = db.Search(name, *query, static_cast<int>(*k), static_cast<int>(*oversample));
    if (!hits.ok()) return Fail(hits.status());
    for (const auto& h : *hits) std::printf("%lld\t%g\n", static_cast<long long>(h.id), h.distance);
    return kExitOk;
  }

  // A file of queries: one Search per query, hits as "query id distance"
  // lines; timing (and recall against --gt) on stderr.
  auto queries = io::ReadVectors(args->Str("queries"), static_cast<size_t>(*limit));
  if (!queries.ok()) return Fail(queries.status());
  absl::StatusOr<io::VectorSet<int32_t>> gt;
  if (args->Has("gt")) {
    gt = io::ReadIvecs(args->Str("gt"), queries->n);
    if (!gt.ok()) return Fail(gt.status());
    if (gt->n < queries->n || gt->dim < *k) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          args->Str("gt"), ": ", gt->n, " rows of ", gt->dim, " ids for ", queries->n,
          " queries at k = ", *k)));
    }
  }
  std::vector<double> latencies_ms;
  double recall_sum = 0;
  const auto start = std::chrono::steady_clock::now();
  for (size_t q = 0; q < queries->n; ++q) {
    const auto t0 = std::chrono::steady_clock::now();
    auto hits = db.Search(name, absl::MakeConstSpan(queries->row(q), queries->dim),
                          static_cast<int>(*k), static_cast<int>(*oversample));
    latencies_ms.push_back(SecondsSince(t0) * 1e3);
    if (!hits.ok()) return Fail(hits.status());
    for (const auto& h : *hits) {
      std::printf("%zu\t%lld\t%g\n", q, static_cast<long long>(h.id), h.distance);
    }
    if (gt.ok() && args->Has("gt")) {
      // k-R@k: the share of the true k nearest among the k found.
      const int32_t* truth = gt->row(q);
      int found = 0;
      for (const auto& h : *hits) found += std::count(truth, truth + *k, h.id) > 0;
      recall_sum += static_cast<double>(found) / static_cast<double>(*k);
    }
  }
  const double seconds = SecondsSince(start);
  const size_t nq = queries->n;
  std::fprintf(stderr, "%zu queries in %.3f s: %.0f queries/s, p50 %.3f ms, p99 %.3f ms", nq,
               seconds, seconds > 0 ? nq / seconds : 0.0, Quantile(latencies_ms, 0.5),
               Quantile(latencies_ms, 0.99));
  if (args->Has("gt") && nq > 0) {
    std::fprintf(stderr, ", %lld-R@%lld %.4f", static_cast<long long>(*k),
                 static_cast<long long>(*k), recall_sum / static_cast<double>(nq));
  }
  std::fputc('\n', stderr);
  return kExitOk;
}

}  // namespace tqdb::cli
