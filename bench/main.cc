// tqdb-bench SUITE [--flag value …]: prints one JSON object per line.
//   codec   encode/decode speed and distortion of every format, FAISS beside
//   scan    fast-scan scoring speed and recall, FAISS indexes, memory bandwidth
//   store   the durable store: append rate, footprint, reopen, query latency
//   recall  recall of every format on a real vector set, FAISS baselines beside
//   grpc    tqdb-server end to end over loopback: append rate, Score/Attend
//           latency, search QPS and recall (starts its own server)
#include <malloc.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

namespace tqdb::bench {
int RunCodec(int argc, char** argv);
int RunScan(int argc, char** argv);
int RunStore(int argc, char** argv);
int RunRecall(int argc, char** argv);
int RunGrpc(int argc, char** argv);
}

namespace {

struct Suite {
  const char* name;
  int (*run)(int argc, char** argv);
  const char* usage;  // its flags, as the usage lists them
  std::set<std::string> flags;
};

const std::vector<Suite>& Suites() {
  static const auto* suites = new std::vector<Suite>{
      {"codec", tqdb::bench::RunCodec,
       "[--n N] [--d D] [--threads T] [--formats a,b,…] [--faiss 0|1] [--pq 0|1] [--table 1]",
       {"n", "d", "threads", "formats", "faiss", "pq", "table"}},
      {"scan", tqdb::bench::RunScan,
       "[--n N] [--d D] [--threads T] [--queries Q] [--formats a,b,…] [--faiss 0|1]\n"
       "        [--attend 0|1] [--tokens N] [--dataset DIR] [--center 0|1]",
       {"n", "d", "threads", "queries", "formats", "faiss", "attend", "tokens", "dataset",
        "center"}},
      {"store", tqdb::bench::RunStore,
       "[--layers L] [--heads H] [--d D] [--key_format F] [--value_format F]\n"
       "        [--seconds S] [--footprint_tokens N] [--tokens N] [--reps R] [--dir DIR]\n"
       "        [--parts append,footprint,queries] [--sync every_write,periodic,none]\n"
       "        [--writers 1,8]",
       {"layers", "heads", "d", "key_format", "value_format", "seconds", "footprint_tokens",
        "tokens", "reps", "dir", "parts", "sync", "writers"}},
      {"recall", tqdb::bench::RunRecall,
       "--dataset DIR [--metric ip|l2|cosine] [--formats a,b,…] [--queries Q]\n"
       "        [--center 0|1] [--faiss 0|1]",
       {"dataset", "metric", "formats", "queries", "center", "faiss"}},
      {"grpc", tqdb::bench::RunGrpc,
       "[--parts append,queries,search] [--append_tokens N] [--tokens_per_message M]\n"
       "        [--layers L] [--heads H] [--d D] [--tokens N] [--reps R] [--data DIR]\n"
       "        [--sets a,b] [--queries Q] [--format F] [--rerank R] [--server BIN] [--dir DIR]",
       {"parts", "append_tokens", "tokens_per_message", "layers", "heads", "d", "tokens", "reps",
        "data", "sets", "queries", "format", "rerank", "server", "dir"}},
  };
  return *suites;
}

void Usage(FILE* to) {
  std::fprintf(to, "usage: tqdb-bench SUITE [flags]\n");
  for (const Suite& s : Suites()) std::fprintf(to, "  %-6s %s\n", s.name, s.usage);
}

}  // namespace

int main(int argc, char** argv) {
  // As tqdb-server does: keep freed memory (RocksDB arenas, write batches,
  // scan segments) in the heap for reuse instead of unmapping it; page
  // faults on fresh memory cost ~10 µs each on this VM.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      Usage(stdout);
      return 0;
    }
  }
  const std::string name = argc > 1 ? argv[1] : "";
  for (const Suite& suite : Suites()) {
    if (name != suite.name) continue;
    // Flags come as --name value pairs, each a flag the suite knows.
    for (int i = 2; i < argc; i += 2) {
      const std::string key = argv[i];
      if (key.rfind("--", 0) != 0 || i + 1 >= argc || suite.flags.count(key.substr(2)) == 0) {
        std::fprintf(stderr, "tqdb-bench %s: unexpected '%s'\n", suite.name, key.c_str());
        Usage(stderr);
        return 2;
      }
    }
    return suite.run(argc - 2, argv + 2);
  }
  Usage(stderr);
  return 2;
}
