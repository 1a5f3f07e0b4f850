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
#include <string>

namespace tqdb::bench {
int RunCodec(int argc, char** argv);
int RunScan(int argc, char** argv);
int RunStore(int argc, char** argv);
int RunRecall(int argc, char** argv);
int RunGrpc(int argc, char** argv);
}

int main(int argc, char** argv) {
  // As tqdb-server does: keep freed memory (RocksDB arenas, write batches,
  // scan segments) in the heap for reuse instead of unmapping it; page
  // faults on fresh memory cost ~10 µs each on this VM.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  const std::string suite = argc > 1 ? argv[1] : "";
  if (suite == "codec") return tqdb::bench::RunCodec(argc - 2, argv + 2);
  if (suite == "scan") return tqdb::bench::RunScan(argc - 2, argv + 2);
  if (suite == "store") return tqdb::bench::RunStore(argc - 2, argv + 2);
  if (suite == "recall") return tqdb::bench::RunRecall(argc - 2, argv + 2);
  if (suite == "grpc") return tqdb::bench::RunGrpc(argc - 2, argv + 2);
  std::fprintf(stderr,
               "usage: tqdb-bench SUITE [flags]\n"
               "  codec [--n N] [--d D] [--threads T] [--formats a,b,…] [--faiss 0|1] "
               "[--pq 0|1] [--table 1]\n"
               "  scan  [--n N] [--d D] [--threads T] [--queries Q] [--formats a,b,…] [--faiss 0|1]\n"
               "        [--attend 0|1] [--tokens N] [--dataset DIR]\n"
               "  store [--layers L] [--heads H] [--d D] [--key_format F] [--value_format F]\n"
               "        [--seconds S] [--footprint_tokens N] [--tokens N] [--reps R] [--dir DIR]\n"
               "        [--parts append,footprint,queries]\n"
               "  recall --dataset DIR [--metric ip|l2|cosine] [--formats a,b,…] [--queries Q]\n"
               "        [--center 0|1] [--faiss 0|1]\n"
               "  grpc  [--parts append,queries,search] [--append_tokens N] [--tokens_per_message M]\n"
               "        [--tokens N] [--reps R] [--data DIR] [--sets a,b] [--rerank R] [--server BIN]\n"
               "        [--dir DIR]\n");
  return suite.empty() || suite == "--help" ? 0 : 2;
}
