// tqdb: a minimal command line client of tqdb-server (over client/client.h).
//
//   tqdb [--target HOST:PORT] [--token-file F] COMMAND ...
//     collections list
//     collections describe NAME
//     collections drop NAME
//     collections create-embedding NAME DIM [ip|cosine|l2]
//     collections create-kv NAME LAYERS KV_HEADS HEAD_DIM
//     search COLLECTION K V1,V2,...        (one query, comma-separated)
//     health
//
// Exit status: 0 on success, 1 when the server returns an error (printed as
// CODE: message), 2 on a usage error.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "client/client.h"

namespace {

constexpr char kUsage[] =
    "usage: tqdb [--target HOST:PORT] [--token-file F] COMMAND ...\n"
    "  collections list | describe NAME | drop NAME\n"
    "  collections create-embedding NAME DIM [ip|cosine|l2]\n"
    "  collections create-kv NAME LAYERS KV_HEADS HEAD_DIM\n"
    "  search COLLECTION K V1,V2,...\n"
    "  health\n";

int Usage() {
  std::fputs(kUsage, stderr);
  return 2;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "%s: %s\n", absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str());
  return 1;
}

const char* KindName(tqdb::client::CollectionKind kind) {
  return kind == tqdb::client::CollectionKind::kKv ? "kv" : "embedding";
}

void Print(const tqdb::client::CollectionDescription& d) {
  std::printf("name: %s\nkind: %s\n", d.name.c_str(), KindName(d.kind));
  if (d.kind == tqdb::client::CollectionKind::kKv) {
    const auto& c = d.kv;
    const auto& s = d.kv_stats;
    std::printf("layers: %d\nkv_heads: %d\nhead_dim: %d\nkey_format: %s\nvalue_format: %s\n",
                c.num_layers, c.num_kv_heads, c.head_dim, c.key_format.c_str(),
                c.value_format.c_str());
    std::printf("sequences: %llu\ntokens: %llu\ncode_bytes: %llu\ndisk_bytes: %llu\n",
                static_cast<unsigned long long>(s.sequences),
                static_cast<unsigned long long>(s.tokens),
                static_cast<unsigned long long>(s.code_bytes),
                static_cast<unsigned long long>(s.disk_bytes));
  } else {
    const auto& c = d.embedding;
    const auto& s = d.embedding_stats;
    const char* metric = c.metric == tqdb::client::Metric::kCosine ? "cosine"
                         : c.metric == tqdb::client::Metric::kL2   ? "l2"
                                                                   : "ip";
    std::printf("dim: %d\nmetric: %s\nformat: %s\n", c.dim, metric, c.format.c_str());
    std::printf("count: %llu\ncode_bytes: %llu\ndisk_bytes: %llu\n",
                static_cast<unsigned long long>(s.count),
                static_cast<unsigned long long>(s.code_bytes),
                static_cast<unsigned long long>(s.disk_bytes));
  }
}

}  // namespace

int main(int argc, char** argv) {
  tqdb::client::ClientOptions options;
  options.target = "127.0.0.1:50051";
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--target" || arg == "--token-file") && i + 1 < argc) {
      const std::string value = argv[++i];
      if (arg == "--target") {
        options.target = value;
      } else {
        std::ifstream in(value);
        std::stringstream s;
        s << in.rdbuf();
        if (!in) {
          std::fprintf(stderr, "tqdb: cannot read %s\n", value.c_str());
          return 2;
        }
        options.auth_token = std::string(absl::StripAsciiWhitespace(s.str()));
      }
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      args.push_back(arg);
    }
  }
  if (args.empty()) return Usage();
  auto connected = tqdb::client::Client::Connect(options);
  if (!connected.ok()) return Fail(connected.status());
  tqdb::client::Client& db = **connected;

  if (args[0] == "health" && args.size() == 1) {
    auto healthy = db.Healthy();
    if (!healthy.ok()) return Fail(healthy.status());
    std::puts(*healthy ? "SERVING" : "NOT_SERVING");
    return *healthy ? 0 : 1;
  }
  if (args[0] == "collections" && args.size() >= 2) {
    const std::string& verb = args[1];
    if (verb == "list" && args.size() == 2) {
      auto list = db.ListCollections();
      if (!list.ok()) return Fail(list.status());
      for (const auto& e : *list) std::printf("%s\t%s\n", e.name.c_str(), KindName(e.kind));
      return 0;
    }
    if (verb == "describe" && args.size() == 3) {
      auto d = db.DescribeCollection(args[2]);
      if (!d.ok()) return Fail(d.status());
      Print(*d);
      return 0;
    }
    if (verb == "drop" && args.size() == 3) {
      const absl::Status s = db.DropCollection(args[2]);
      return s.ok() ? 0 : Fail(s);
    }
    if (verb == "create-embedding" && (args.size() == 4 || args.size() == 5)) {
      tqdb::client::EmbeddingConfig config;
      if (!absl::SimpleAtoi(args[3], &config.dim)) return Usage();
      if (args.size() == 5) {
        if (args[4] == "cosine") {
          config.metric = tqdb::client::Metric::kCosine;
        } else if (args[4] == "l2") {
          config.metric = tqdb::client::Metric::kL2;
        } else if (args[4] != "ip") {
          return Usage();
        }
      }
      auto d = db.CreateEmbeddingCollection(args[2], config);
      if (!d.ok()) return Fail(d.status());
      Print(*d);
      return 0;
    }
    if (verb == "create-kv" && args.size() == 6) {
      tqdb::client::KvConfig config;
      if (!absl::SimpleAtoi(args[3], &config.num_layers) ||
          !absl::SimpleAtoi(args[4], &config.num_kv_heads) ||
          !absl::SimpleAtoi(args[5], &config.head_dim)) {
        return Usage();
      }
      auto d = db.CreateKvCollection(args[2], config);
      if (!d.ok()) return Fail(d.status());
      Print(*d);
      return 0;
    }
    return Usage();
  }
  if (args[0] == "search" && args.size() == 4) {
    int k = 0;
    if (!absl::SimpleAtoi(args[2], &k)) return Usage();
    std::vector<float> query;
    for (absl::string_view part : absl::StrSplit(args[3], ',')) {
      float v;
      if (!absl::SimpleAtof(part, &v)) return Usage();
      query.push_back(v);
    }
    auto hits = db.Search(args[1], query, k);
    if (!hits.ok()) return Fail(hits.status());
    for (const auto& h : *hits) {
      std::printf("%lld\t%g\n", static_cast<long long>(h.id), h.distance);
    }
    return 0;
  }
  return Usage();
}
