// Options of the store and configurations of its collections.
//
// Thread-safety: plain values.
#ifndef TQDB_STORAGE_OPTIONS_H_
#define TQDB_STORAGE_OPTIONS_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "index/scan/searcher.h"

namespace tqdb::storage {

// When an acknowledged write reaches stable storage. Every policy writes the
// WAL before acknowledging, so a killed process (kill -9) loses nothing
// acknowledged under any of them; they differ on power loss / OS crash.
enum class SyncPolicy : uint8_t {
  // fsync before acknowledging; concurrent writers share one fsync (RocksDB's
  // group commit). Nothing acknowledged is ever lost.
  kEveryWrite = 1,
  // A background thread fsyncs the WAL every sync_interval: a power loss
  // loses at most that much.
  kPeriodic = 2,
  // The OS writes back when it likes.
  kNone = 3,
};

struct StoreOptions {
  // Create an empty store when `dir` holds none. Default: true.
  bool create_if_missing = true;
  // Default: kEveryWrite.
  SyncPolicy sync = SyncPolicy::kEveryWrite;
  // kPeriodic's interval. Default: 100 ms.
  std::chrono::milliseconds sync_interval{100};
  // Bytes of in-memory scan segments (codes laid out for scanning) kept
  // loaded; least recently used sequences beyond it are evicted and read back
  // from disk on demand. 0: unlimited. Default: 4 GiB.
  size_t memory_budget_bytes = size_t{4} << 30;
  // RocksDB block cache shared by every column family. Default: 256 MiB.
  size_t block_cache_bytes = size_t{256} << 20;
  // Memtable bytes of all column families together (RocksDB
  // db_write_buffer_size); each family's memtable is at most
  // write_buffer_bytes. Defaults: 2 GiB and 8 MiB. A 32 × 8 KV collection
  // fills 256 families at once, so each flushes at about the total / 256:
  // at 512 MiB that was 0.9 MiB tables, ~90 flushes a second at 4,000
  // tokens/s, and their file creations and compactions halved the append
  // rate. Memory is taken only as tokens arrive.
  size_t total_write_buffer_bytes = size_t{2048} << 20;
  size_t write_buffer_bytes = size_t{8} << 20;
  // Threads working on one query (the KV heads of Score and Attend) and on
  // rebuilding a sequence's scan segment, the caller included. 0: one per
  // core. Default: 0.
  int query_threads = 0;
};

// Element type of vectors handed to the store.
enum class DType : uint8_t { kF32 = 1, kF16 = 2, kBF16 = 3 };
size_t DTypeBytes(DType dtype);

struct KvCollectionConfig {
  int num_layers = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  // Codec format names (index/codec/format.h ParseFormat); values must be
  // MSE formats. Formats of ≤ 4 bits per coordinate take the fast-scan
  // kernels; wider ones (tq5 … tq8) work through exact float tables, an order
  // of magnitude slower (index/scan/scorer.h).
  // Defaults: "tq4" and "tq4".
  std::string key_format = "tq4";
  std::string value_format = "tq4";
  // The first and last boundary_layers layers use the boundary formats
  // (attention there is the most sensitive to quantization). Default: 0.
  int boundary_layers = 0;
  // Defaults: "tq4" and "tq4".
  std::string boundary_key_format = "tq4";
  std::string boundary_value_format = "tq4";
  // Tokens per stored page (disk_format.h). Default: 64.
  int page_tokens = 64;
  // Seed of the codecs' rotations and codebooks. Default: 0.
  uint64_t seed = 0;
  // The most recent exact_window tokens of every sequence are also kept
  // exactly (as exact_dtype) and take part in Score and Attend with those
  // values instead of their codes; Read returns them too. A fork starts with
  // an empty window, and truncating below the window's start empties it;
  // either refills as tokens are appended. Default: 0 (codes only).
  uint64_t exact_window = 0;
  // kF16, kBF16 or kF32 (bit-exact). Default: kF16.
  DType exact_dtype = DType::kF16;
};

// What an embedding collection keeps besides codes, for exact reranking.
enum class RawType : uint8_t { kNone = 0, kF16 = 1, kF32 = 2 };

struct EmbeddingCollectionConfig {
  int dim = 0;
  // Default: inner product.
  index::Metric metric = index::Metric::kInnerProduct;
  // Codec format name (as for KvCollectionConfig). Default: "tq4".
  std::string format = "tq4";
  // Default: kNone (no exact reranking).
  RawType keep_raw = RawType::kNone;
  // Center μ subtracted before encoding (code_blocks.h), dim floats or empty.
  // Data with a common offset (all-positive descriptors) needs it. Default: {}.
  std::vector<float> center;
  // Default: 0.
  uint64_t seed = 0;
};

}  // namespace tqdb::storage

#endif  // TQDB_STORAGE_OPTIONS_H_
