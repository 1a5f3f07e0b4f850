// tqdb bench: the load generator (client/internal/load_generator.h) from the
// command line. Prints one JSON line on stdout at the end; exits 1 if any
// call failed (the first failure on stderr).
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/internal/cli_commands.h"
#include "client/internal/cli_util.h"
#include "client/internal/load_generator.h"

namespace tqdb::cli {
namespace {

// "append=1,score=2,search=0" into the weights; InvalidArgument otherwise.
absl::Status ParseMix(const std::string& text, LoadOptions* o) {
  o->append_weight = o->score_weight = o->search_weight = 0;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, '=');
    int weight = 0;
    if (!absl::SimpleAtoi(kv.second, &weight) || weight < 0) {
      return absl::InvalidArgumentError(absl::StrCat("--mix: bad weight in '", part, "'"));
    }
    if (kv.first == "append") {
      o->append_weight = weight;
    } else if (kv.first == "score") {
      o->score_weight = weight;
    } else if (kv.first == "search") {
      o->search_weight = weight;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--mix: '", kv.first, "' is not append, score or search"));
    }
  }
  if (o->append_weight + o->score_weight + o->search_weight == 0) {
    return absl::InvalidArgumentError("--mix: every weight is 0");
  }
  return absl::OkStatus();
}

}  // namespace

int RunBench(const client::ClientOptions& options, const std::vector<std::string>& words) {
  auto args = Args::Parse(words,
                          {"clients", "seconds", "mix", "layers", "kv-heads", "head-dim", "group",
                           "dim", "vectors", "initial-tokens", "max-tokens", "k", "prefix",
                           "seed"},
                          {"keep"});
  if (!args.ok()) return UsageError(std::string(args.status().message()));
  if (!args->positional().empty()) return UsageError("bench takes only flags");
  LoadOptions o;
  const auto set_int = [&](const char* name, int* field, int min, int max) {
    auto v = args->Int(name, *field, min, max);
    if (v.ok()) *field = static_cast<int>(*v);
    return v.status();
  };
  auto seconds = args->Double("seconds", o.seconds);
  auto seed = args->Int("seed", static_cast<int64_t>(o.seed), 0, INT64_MAX);
  for (const absl::Status& s : {
           set_int("clients", &o.clients, 1, 4096),
           set_int("layers", &o.layers, 1, 1 << 10),
           set_int("kv-heads", &o.kv_heads, 1, 1 << 10),
           set_int("head-dim", &o.head_dim, 1, 1 << 12),
           set_int("group", &o.group, 1, 1 << 10),
           set_int("dim", &o.dim, 1, 1 << 16),
           set_int("vectors", &o.vectors, 1, 1 << 26),
           set_int("initial-tokens", &o.initial_tokens, 1, 1 << 24),
           set_int("max-tokens", &o.max_tokens, 2, 1 << 26),
           set_int("k", &o.k, 1, 1 << 16),
           seconds.status(),
           seed.status(),
           args->Has("mix") ? ParseMix(args->Str("mix"), &o) : absl::OkStatus(),
       }) {
    if (!s.ok()) return UsageError(std::string(s.message()));
  }
  if (*seconds <= 0) return UsageError("--seconds must be > 0");
  if (o.max_tokens <= o.initial_tokens) return UsageError("--max-tokens must exceed --initial-tokens");
  o.seconds = *seconds;
  o.seed = static_cast<uint64_t>(*seed);
  o.keep = args->Has("keep");
  // The pid keeps concurrent runs against one server apart.
  o.prefix = args->Str("prefix", absl::StrCat("tqdb_bench_", getpid()));

  auto report = RunLoad(options, o);
  if (!report.ok()) return Fail(report.status());
  std::printf("%s\n", report->ToJson().c_str());
  std::fflush(stdout);
  if (report->errors > 0) {
    std::fprintf(stderr, "tqdb bench: %llu calls failed; the first: %s\n",
                 static_cast<unsigned long long>(report->errors), report->first_error.c_str());
    return kExitError;
  }
  return kExitOk;
}

}  // namespace tqdb::cli
