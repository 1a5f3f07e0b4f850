// KvCollection: the attention keys and values of many sequences, for every
// layer and KV head, stored as TurboQuant codes (disk_format.h) and answered
// from in-memory scan segments (index/scan/code_blocks.h).
//
// Sequences are identified by the caller's uint64 ids. A sequence's tokens
// are appended in order; Score and Attend run over the compressed keys (and
// values) of one layer, GQA-aware: with H query heads and h KV heads, query
// head i reads KV head i / (H / h). Fork makes a new sequence whose first
// tokens are another's without copying their codes; Truncate and Drop keep
// every fork intact (the shared tokens a fork still needs are kept, or copied
// to it when its source rewrites them).
//
// Durability: Append is one atomic RocksDB WriteBatch over every layer and
// head, acknowledged after the write succeeded under the store's SyncPolicy;
// a crash never leaves half a token. Readers see every token acknowledged
// before they started.
//
// Thread-safety: every method may be called concurrently. Appends to one
// sequence are applied in call order; appends to different sequences and all
// reads run in parallel. A handle outlives neither its Store (methods return
// FailedPrecondition after the store closed) nor a drop of its collection
// (NotFound).
#ifndef TQDB_STORAGE_KV_COLLECTION_H_
#define TQDB_STORAGE_KV_COLLECTION_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "storage/options.h"

namespace tqdb::storage {

namespace internal {
class Engine;
}

// n_tokens tokens of every layer and KV head, laid out
// [layer][kv head][token][head_dim] (each layer's usual [heads, tokens, dim]
// tensor), as `dtype` elements: keys and values each hold
// num_layers · num_kv_heads · n_tokens · head_dim of them.
struct KvTokens {
  size_t n_tokens = 0;
  DType dtype = DType::kF32;
  absl::Span<const uint8_t> keys;    // bytes
  absl::Span<const uint8_t> values;  // bytes
};

// Views float arrays as KvTokens.
KvTokens FloatTokens(size_t n_tokens, absl::Span<const float> keys,
                     absl::Span<const float> values);

inline constexpr uint64_t kToEnd = std::numeric_limits<uint64_t>::max();

struct KvScoreOptions {
  // Multiplies every logit. Default: 1 (plain ⟨q, k̂⟩).
  float scale = 1.0f;
  // Polled before each KV head's work; true stops the call with Cancelled
  // (a server's deadline or client cancellation). Default: none.
  std::function<bool()> cancelled;
  // Tokens [begin, min(end, length)). Default: all.
  uint64_t begin = 0;
  uint64_t end = kToEnd;
};

struct KvAttendOptions {
  // Logit scale. Default: 0, meaning 1/√head_dim.
  float scale = 0.0f;
  // As KvScoreOptions::cancelled. Default: none.
  std::function<bool()> cancelled;
  // Tokens [begin, min(end, length)). Default: all.
  uint64_t begin = 0;
  uint64_t end = kToEnd;
  // Tokens not appended (yet), attended exactly after the range in the same
  // softmax: tail_tokens keys and values of this layer, each laid out
  // [kv head][token][head_dim] floats. A decoder attends over the stored
  // context plus the token being decoded this way. Default: none.
  size_t tail_tokens = 0;
  absl::Span<const float> tail_keys;
  absl::Span<const float> tail_values;
};

struct KvStats {
  uint64_t sequences = 0;      // live (not dropped) sequences
  uint64_t tokens = 0;         // Σ length over live sequences (a fork counts its prefix)
  uint64_t stored_tokens = 0;  // tokens stored once (forks share their prefix)
  uint64_t code_bytes = 0;     // stored_tokens × Σ over layers and heads of K+V code bytes
  uint64_t disk_bytes = 0;     // SST files of its families (Flush first)
  uint64_t memory_bytes = 0;   // loaded scan segments
  // fp16 bytes of the stored tokens' K and V / disk_bytes.
  double compression_vs_fp16 = 0;
};

class KvCollection {
 public:
  ~KvCollection();
  KvCollection(const KvCollection&) = delete;
  KvCollection& operator=(const KvCollection&) = delete;

  const std::string& name() const;
  const KvCollectionConfig& config() const;
  // Bytes of one token's codes, K and V, over every layer and head.
  size_t token_code_bytes() const;

  // AlreadyExists if `seq` exists.
  absl::Status CreateSequence(uint64_t seq);
  // Appends tokens at the end of `seq`; returns its length after them.
  // InvalidArgument, writing nothing, on n_tokens = 0, spans of the wrong
  // size (the message names the expected shape), or a value that is not
  // finite; NotFound for an unknown sequence.
  // With defer_sync, the write reaches the WAL (it survives a killed process)
  // but is not fsynced even under SyncPolicy::kEveryWrite: a caller
  // acknowledging many appends at once calls Store::Sync() before that.
  absl::StatusOr<uint64_t> Append(uint64_t seq, const KvTokens& tokens, bool defer_sync = false);

  // Logits of H = queries.size() / head_dim query heads (row-major) against
  // the keys of `layer`: H × n floats, n = tokens in the range, out[i·n + t].
  // Computed over the codes with quantized tables (index/scan/scorer.h; the
  // error per logit is bounded there), and exactly for tokens in the exact
  // window (KvCollectionConfig::exact_window). InvalidArgument if H is not a positive
  // multiple of num_kv_heads, the layer is out of range or a query is not
  // finite. An empty range gives an empty result.
  absl::StatusOr<std::vector<float>> Score(uint64_t seq, int layer,
                                           absl::Span<const float> queries,
                                           const KvScoreOptions& options = {});
  // Score into the caller's memory (a response buffer, say): `output(n)` is
  // called once, with the token count n of the range, before any logit is
  // written, and returns room for H × n floats, which the call fills as
  // Score's result (every element written). Returns n; `output` is not
  // called on an error found before the scoring starts.
  absl::StatusOr<uint64_t> ScoreInto(uint64_t seq, int layer, absl::Span<const float> queries,
                                     absl::FunctionRef<float*(uint64_t n)> output,
                                     const KvScoreOptions& options = {});
  // softmax(scale · q·K̂ᵀ)·V̂ for H query heads over the range and the
  // options' exact tail: H × head_dim floats (index/scan/attend.h). Errors as
  // for Score, and InvalidArgument for no token at all or a tail of the wrong
  // size or not finite.
  absl::StatusOr<std::vector<float>> Attend(uint64_t seq, int layer,
                                            absl::Span<const float> queries,
                                            const KvAttendOptions& options = {});
  // The decoded keys and values of tokens [begin, end) (the exact values of
  // tokens in the exact window), laid out as KvTokens
  // ([layer][kv head][token][head_dim] floats). InvalidArgument if the range
  // is not within [0, length].
  absl::Status Read(uint64_t seq, uint64_t begin, uint64_t end, std::vector<float>* keys,
                    std::vector<float>* values);

  // Keeps the first `length` tokens. InvalidArgument if length > Length(seq).
  absl::Status Truncate(uint64_t seq, uint64_t length);
  // Forgets `seq`; its id may be created again. Tokens forks still share are
  // kept until the last of them is dropped.
  absl::Status DropSequence(uint64_t seq);
  // Creates `dst` holding the first `length` tokens of `src` (kToEnd: all)
  // without copying their codes. AlreadyExists if dst exists; InvalidArgument
  // if length > Length(src).
  absl::Status Fork(uint64_t src, uint64_t dst, uint64_t length = kToEnd);

  absl::StatusOr<uint64_t> Length(uint64_t seq);
  // Live sequence ids, ascending.
  std::vector<uint64_t> Sequences();
  absl::StatusOr<KvStats> Stats();

 private:
  friend class Store;
  struct State;
  explicit KvCollection(std::unique_ptr<State> state);
  // Creates the collection's column families and catalog entry, then loads it.
  static absl::StatusOr<std::shared_ptr<KvCollection>> Create(internal::Engine* engine,
                                                              const std::string& name,
                                                              const KvCollectionConfig& config);
  // Opens a stored collection from its catalog entry (sequences are read
  // from disk on first use).
  static absl::StatusOr<std::shared_ptr<KvCollection>> Load(internal::Engine* engine,
                                                            const std::string& name,
                                                            std::string_view stored);
  // Makes every later call fail with `why` and releases memory.
  void Close(const absl::Status& why);
  std::vector<std::string> FamilyNames() const;
  std::unique_ptr<State> s_;
};

}  // namespace tqdb::storage

#endif  // TQDB_STORAGE_KV_COLLECTION_H_
