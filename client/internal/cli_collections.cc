// tqdb collections list|create|describe|drop, and tqdb stats.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "client/internal/cli_commands.h"
#include "client/internal/cli_util.h"

namespace tqdb::cli {
namespace {

using client::CollectionDescription;
using client::CollectionKind;
using client::Metric;
using client::RawType;

using ull = unsigned long long;

const char* KindName(CollectionKind kind) {
  return kind == CollectionKind::kKv ? "kv" : "embedding";
}

const char* MetricName(Metric metric) {
  switch (metric) {
    case Metric::kCosine:
      return "cosine";
    case Metric::kL2:
      return "l2";
    case Metric::kInnerProduct:
      break;
  }
  return "ip";
}

const char* RawName(RawType raw) {
  switch (raw) {
    case RawType::kF16:
      return "f16";
    case RawType::kF32:
      return "f32";
    case RawType::kNone:
      break;
  }
  return "none";
}

absl::StatusOr<Metric> ParseMetric(const std::string& name) {
  if (name == "ip") return Metric::kInnerProduct;
  if (name == "cosine") return Metric::kCosine;
  if (name == "l2") return Metric::kL2;
  return absl::InvalidArgumentError("metric must be ip, cosine or l2, got '" + name + "'");
}

absl::StatusOr<RawType> ParseRaw(const std::string& name) {
  if (name == "none") return RawType::kNone;
  if (name == "f16") return RawType::kF16;
  if (name == "f32") return RawType::kF32;
  return absl::InvalidArgumentError("--keep-raw must be none, f16 or f32, got '" + name + "'");
}

void Print(const CollectionDescription& d) {
  std::printf("name: %s\nkind: %s\n", d.name.c_str(), KindName(d.kind));
  if (d.kind == CollectionKind::kKv) {
    const auto& c = d.kv;
    const auto& s = d.kv_stats;
    std::printf("layers: %d\nkv_heads: %d\nhead_dim: %d\nkey_format: %s\nvalue_format: %s\n",
                c.num_layers, c.num_kv_heads, c.head_dim, c.key_format.c_str(),
                c.value_format.c_str());
    std::printf("boundary_layers: %d\npage_tokens: %d\nseed: %llu\n", c.boundary_layers,
                c.page_tokens, static_cast<ull>(c.seed));
    std::printf(
        "sequences: %llu\ntokens: %llu\nstored_tokens: %llu\ncode_bytes: %llu\n"
        "disk_bytes: %llu\nmemory_bytes: %llu\ncompression_vs_fp16: %.2f\n",
        static_cast<ull>(s.sequences), static_cast<ull>(s.tokens),
        static_cast<ull>(s.stored_tokens), static_cast<ull>(s.code_bytes),
        static_cast<ull>(s.disk_bytes), static_cast<ull>(s.memory_bytes), s.compression_vs_fp16);
  } else {
    const auto& c = d.embedding;
    const auto& s = d.embedding_stats;
    std::printf("dim: %d\nmetric: %s\nformat: %s\nkeep_raw: %s\nseed: %llu\n", c.dim,
                MetricName(c.metric), c.format.c_str(), RawName(c.keep_raw),
                static_cast<ull>(c.seed));
    std::printf("count: %llu\ncode_bytes: %llu\ndisk_bytes: %llu\nmemory_bytes: %llu\n",
                static_cast<ull>(s.count), static_cast<ull>(s.code_bytes),
                static_cast<ull>(s.disk_bytes), static_cast<ull>(s.memory_bytes));
  }
}

// collections create NAME (--dim D ... | --layers L --kv-heads H --head-dim D ...)
int Create(client::Client& db, const std::vector<std::string>& words) {
  auto args = Args::Parse(words,
                          {"dim", "metric", "format", "keep-raw", "seed", "layers", "kv-heads",
                           "head-dim", "key-format", "value-format", "boundary-layers",
                           "boundary-key-format", "boundary-value-format", "page-tokens"});
  if (!args.ok()) return UsageError(std::string(args.status().message()));
  if (args->positional().size() != 1) return UsageError("collections create takes one NAME");
  const std::string& name = args->positional()[0];
  auto seed = args->Int("seed", 0, 0, INT64_MAX);
  if (!seed.ok()) return UsageError(std::string(seed.status().message()));
  const bool embedding = args->Has("dim");
  const bool kv = args->Has("layers") || args->Has("kv-heads") || args->Has("head-dim");
  if (embedding == kv) {
    return UsageError("collections create needs --dim D (embedding) or --layers, --kv-heads "
                      "and --head-dim (kv)");
  }
  absl::StatusOr<CollectionDescription> created;
  if (embedding) {
    client::EmbeddingConfig config;
    auto dim = args->Int("dim", 0, 1, 1 << 20);
    auto metric = ParseMetric(args->Str("metric", "ip"));
    auto raw = ParseRaw(args->Str("keep-raw", "none"));
    for (const absl::Status& s : {dim.status(), metric.status(), raw.status()}) {
      if (!s.ok()) return UsageError(std::string(s.message()));
    }
    config.dim = static_cast<int>(*dim);
    config.metric = *metric;
    config.keep_raw = *raw;
    config.format = args->Str("format");
    config.seed = static_cast<uint64_t>(*seed);
    created = db.CreateEmbeddingCollection(name, config);
  } else {
    client::KvConfig config;
    auto layers = args->Int("layers", 0, 1, 1 << 16);
    auto heads = args->Int("kv-heads", 0, 1, 1 << 16);
    auto head_dim = args->Int("head-dim", 0, 1, 1 << 16);
    auto boundary = args->Int("boundary-layers", 0, 0, 1 << 16);
    auto page = args->Int("page-tokens", 0, 0, 1 << 20);
    for (const absl::Status& s :
         {layers.status(), heads.status(), head_dim.status(), boundary.status(), page.status()}) {
      if (!s.ok()) return UsageError(std::string(s.message()));
    }
    if (!args->Has("layers") || !args->Has("kv-heads") || !args->Has("head-dim")) {
      return UsageError("a kv collection needs --layers, --kv-heads and --head-dim");
    }
    config.num_layers = static_cast<int>(*layers);
    config.num_kv_heads = static_cast<int>(*heads);
    config.head_dim = static_cast<int>(*head_dim);
    config.key_format = args->Str("key-format");
    config.value_format = args->Str("value-format");
    config.boundary_layers = static_cast<int>(*boundary);
    config.boundary_key_format = args->Str("boundary-key-format");
    config.boundary_value_format = args->Str("boundary-value-format");
    config.page_tokens = static_cast<int>(*page);
    config.seed = static_cast<uint64_t>(*seed);
    created = db.CreateKvCollection(name, config);
  }
  if (!created.ok()) return Fail(created.status());
  Print(*created);
  return kExitOk;
}

// The positional forms of the first CLI: create-embedding NAME DIM [METRIC]
// and create-kv NAME LAYERS KV_HEADS HEAD_DIM.
int CreateShort(client::Client& db, const std::vector<std::string>& a) {
  if (a[0] == "create-embedding" && (a.size() == 3 || a.size() == 4)) {
    client::EmbeddingConfig config;
    if (!absl::SimpleAtoi(a[2], &config.dim)) return UsageError("DIM must be an integer");
    if (a.size() == 4) {
      auto metric = ParseMetric(a[3]);
      if (!metric.ok()) return UsageError(std::string(metric.status().message()));
      config.metric = *metric;
    }
    auto d = db.CreateEmbeddingCollection(a[1], config);
    if (!d.ok()) return Fail(d.status());
    Print(*d);
    return kExitOk;
  }
  if (a[0] == "create-kv" && a.size() == 5) {
    client::KvConfig config;
    if (!absl::SimpleAtoi(a[2], &config.num_layers) ||
        !absl::SimpleAtoi(a[3], &config.num_kv_heads) ||
        !absl::SimpleAtoi(a[4], &config.head_dim)) {
      return UsageError("LAYERS, KV_HEADS and HEAD_DIM must be integers");
    }
    auto d = db.CreateKvCollection(a[1], config);
    if (!d.ok()) return Fail(d.status());
    Print(*d);
    return kExitOk;
  }
  return UsageError("usage: collections " + a[0] + " ...");
}

void PrintStatsJson(const CollectionDescription& d) {
  if (d.kind == CollectionKind::kKv) {
    const auto& s = d.kv_stats;
    std::printf(
        "{\"name\":\"%s\",\"kind\":\"kv\",\"sequences\":%llu,\"tokens\":%llu,"
        "\"stored_tokens\":%llu,\"code_bytes\":%llu,\"disk_bytes\":%llu,\"memory_bytes\":%llu,"
        "\"compression_vs_fp16\":%.3f}\n",
        d.name.c_str(), static_cast<ull>(s.sequences), static_cast<ull>(s.tokens),
        static_cast<ull>(s.stored_tokens), static_cast<ull>(s.code_bytes),
        static_cast<ull>(s.disk_bytes), static_cast<ull>(s.memory_bytes), s.compression_vs_fp16);
  } else {
    const auto& s = d.embedding_stats;
    std::printf(
        "{\"name\":\"%s\",\"kind\":\"embedding\",\"count\":%llu,\"code_bytes\":%llu,"
        "\"disk_bytes\":%llu,\"memory_bytes\":%llu}\n",
        d.name.c_str(), static_cast<ull>(s.count), static_cast<ull>(s.code_bytes),
        static_cast<ull>(s.disk_bytes), static_cast<ull>(s.memory_bytes));
  }
}

void PrintStatsRow(const CollectionDescription& d) {
  if (d.kind == CollectionKind::kKv) {
    const auto& s = d.kv_stats;
    std::printf("%-24s %-9s %12llu %14llu %14llu %14llu  sequences=%llu stored_tokens=%llu "
                "compression_vs_fp16=%.2f\n",
                d.name.c_str(), "kv", static_cast<ull>(s.tokens), static_cast<ull>(s.code_bytes),
                static_cast<ull>(s.disk_bytes), static_cast<ull>(s.memory_bytes),
                static_cast<ull>(s.sequences), static_cast<ull>(s.stored_tokens),
                s.compression_vs_fp16);
  } else {
    const auto& s = d.embedding_stats;
    std::printf("%-24s %-9s %12llu %14llu %14llu %14llu\n", d.name.c_str(), "embedding",
                static_cast<ull>(s.count), static_cast<ull>(s.code_bytes),
                static_cast<ull>(s.disk_bytes), static_cast<ull>(s.memory_bytes));
  }
}

}  // namespace

int RunCollections(client::Client& db, const std::vector<std::string>& words) {
  if (words.empty()) return UsageError("collections needs list, create, describe or drop");
  const std::string& verb = words[0];
  if (verb == "list") {
    if (words.size() != 1) return UsageError("collections list takes no arguments");
    auto list = db.ListCollections();
    if (!list.ok()) return Fail(list.status());
    for (const auto& e : *list) std::printf("%s\t%s\n", e.name.c_str(), KindName(e.kind));
    return kExitOk;
  }
  if (verb == "describe" || verb == "drop") {
    if (words.size() != 2) return UsageError("collections " + verb + " takes one NAME");
    if (verb == "drop") {
      const absl::Status s = db.DropCollection(words[1]);
      return s.ok() ? kExitOk : Fail(s);
    }
    auto d = db.DescribeCollection(words[1]);
    if (!d.ok()) return Fail(d.status());
    Print(*d);
    return kExitOk;
  }
  if (verb == "create") {
    return Create(db, std::vector<std::string>(words.begin() + 1, words.end()));
  }
  if (verb == "create-embedding" || verb == "create-kv") return CreateShort(db, words);
  return UsageError("unknown collections verb '" + verb + "'");
}

int RunStats(client::Client& db, const std::vector<std::string>& words) {
  auto args = Args::Parse(words, {}, {"json"});
  if (!args.ok()) return UsageError(std::string(args.status().message()));
  std::vector<std::string> names = args->positional();
  if (names.empty()) {
    auto list = db.ListCollections();
    if (!list.ok()) return Fail(list.status());
    for (const auto& e : *list) names.push_back(e.name);
  }
  const bool json = args->Has("json");
  if (!json) {
    std::printf("%-24s %-9s %12s %14s %14s %14s\n", "NAME", "KIND", "ITEMS", "CODE_BYTES",
                "DISK_BYTES", "MEMORY_BYTES");
  }
  for (const std::string& name : names) {
    auto d = db.DescribeCollection(name);
    if (!d.ok()) return Fail(d.status());
    if (json) {
      PrintStatsJson(*d);
    } else {
      PrintStatsRow(*d);
    }
  }
  return kExitOk;
}

}  // namespace tqdb::cli
