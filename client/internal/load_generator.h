// LoadGenerator: the engine of `tqdb bench`. N client threads, each with its
// own Client (channel), run a weighted random mix of KV Append (one token),
// Score (all query heads of one layer over the whole sequence) and vector
// Search (top k) against a live server for a fixed time, and report
// throughput, latency percentiles and the errors.
//
// Set-up (not timed): a KV collection PREFIX_kv with one sequence per client
// holding `initial_tokens` random tokens, and an embedding collection
// PREFIX_vec of `vectors` random unit vectors. A sequence that reaches
// `max_tokens` is truncated back to `initial_tokens` (not timed; its errors
// count), so Score costs stay bounded however long the run. Both collections
// are dropped at the end unless `keep`.
//
// Thread-safety: Run may be called from one thread at a time.
#ifndef TQDB_CLIENT_INTERNAL_LOAD_GENERATOR_H_
#define TQDB_CLIENT_INTERNAL_LOAD_GENERATOR_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "client/client.h"

namespace tqdb::cli {

struct LoadOptions {
  // Concurrent clients (threads). Default: 16.
  int clients = 16;
  // Length of the measured run. Default: 10 s.
  double seconds = 10.0;
  // Relative weights of the operations (0 leaves one out). Default: 1 each.
  int append_weight = 1;
  int score_weight = 1;
  int search_weight = 1;
  // Shape of the KV collection. Default: 2 layers × 4 KV heads × 64.
  int layers = 2;
  int kv_heads = 4;
  int head_dim = 64;
  // Query heads per KV head in a Score. Default: 4.
  int group = 4;
  // Tokens each sequence starts with, and the length at which it is
  // truncated back. Defaults: 256, 2048.
  int initial_tokens = 256;
  int max_tokens = 2048;
  // Embedding collection: dimension and size; results per Search.
  // Defaults: 128, 5000, 10.
  int dim = 128;
  int vectors = 5000;
  int k = 10;
  // Names of the collections: PREFIX_kv, PREFIX_vec. Default: "tqdb_bench".
  std::string prefix = "tqdb_bench";
  // Keep the collections after the run. Default: false.
  bool keep = false;
  // Seed of the random data and the mix. Default: 1.
  uint64_t seed = 1;
};

// Latencies of one kind of operation, in milliseconds.
struct OpReport {
  uint64_t ops = 0;     // completed (ok or not)
  uint64_t errors = 0;  // of those, failed
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

struct LoadReport {
  int clients = 0;
  double seconds = 0;  // measured wall time
  OpReport all, append, score, search;
  uint64_t truncations = 0;
  uint64_t errors = 0;       // every failed call of the run, truncations included
  std::string first_error;   // "CODE: message" of the first failure; empty if none
  // One JSON object on one line: clients, seconds, ops, ops_per_s, errors,
  // p50_ms, p99_ms, then append_/score_/search_ ops, ops_per_s, p50_ms,
  // p99_ms, errors.
  std::string ToJson() const;
};

// Sets up, runs and cleans up. Errors of the set-up (or of a clean-up after a
// clean run) are returned; errors during the run are counted in the report.
absl::StatusOr<LoadReport> RunLoad(const client::ClientOptions& client_options,
                                   const LoadOptions& options);

}  // namespace tqdb::cli

#endif  // TQDB_CLIENT_INTERNAL_LOAD_GENERATOR_H_
