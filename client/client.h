// Client: a typed C++ client of tqdb-server (proto/tqdb/v1/tqdb.proto).
//
//   tqdb::client::ClientOptions options;
//   options.target = "127.0.0.1:50051";
//   auto client = tqdb::client::Client::Connect(options);
//   auto hits = (*client)->Search("docs", query, /*k=*/10);
//
// Every method returns the server's status as an absl::Status with the same
// code and message (INVALID_ARGUMENT, NOT_FOUND, ... as the proto documents);
// UNAVAILABLE when the server cannot be reached. Vectors are float arrays in
// the layouts the proto documents (token tensors [layer][kv head][token][dim],
// row-major matrices); they travel as packed f32 bytes unless the options
// ask for repeated floats. The *Bytes variants send f16/bf16/f32 data as is.
//
// gRPC never appears in this header.
//
// Thread-safety: every method may be called concurrently (one channel).
#ifndef TQDB_CLIENT_CLIENT_H_
#define TQDB_CLIENT_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tqdb::client {

enum class DType : uint8_t { kF32 = 1, kF16 = 2, kBF16 = 3 };
enum class Metric : uint8_t { kInnerProduct = 1, kCosine = 2, kL2 = 3 };
enum class RawType : uint8_t { kNone = 0, kF16 = 1, kF32 = 2 };
enum class CollectionKind : uint8_t { kKv = 1, kEmbedding = 2 };
// How float vectors travel.
enum class Encoding : uint8_t {
  kPacked = 1,  // Tensor.data, f32 little-endian
  kFloats = 2,  // Tensor.values (repeated float)
};

struct ClientOptions {
  // gRPC target, e.g. "127.0.0.1:50051". Required.
  std::string target;
  // Bearer token sent with every call; empty: none. Default: empty.
  std::string auth_token;
  // TLS: connect with TLS, trusting `tls_root_pem` (empty: the system's
  // roots). Default: plaintext.
  bool tls = false;
  std::string tls_root_pem;
  // Deadline of each call; 0: none. Default: 60 s.
  std::chrono::milliseconds timeout{60000};
  // Default: kPacked.
  Encoding encoding = Encoding::kPacked;
  // Largest message sent or received. Default: 256 MiB.
  int max_message_bytes = 256 << 20;
};

// Configurations: as the proto's KvConfig / EmbeddingConfig (zero or empty
// fields take the server's defaults).
struct KvConfig {
  int num_layers = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  std::string key_format;
  std::string value_format;
  int boundary_layers = 0;
  std::string boundary_key_format;
  std::string boundary_value_format;
  int page_tokens = 0;
  uint64_t seed = 0;
};

struct EmbeddingConfig {
  int dim = 0;
  Metric metric = Metric::kInnerProduct;
  std::string format;
  RawType keep_raw = RawType::kNone;
  std::vector<float> center;
  uint64_t seed = 0;
};

struct KvStats {
  uint64_t sequences = 0;
  uint64_t tokens = 0;
  uint64_t stored_tokens = 0;
  uint64_t code_bytes = 0;
  uint64_t disk_bytes = 0;
  uint64_t memory_bytes = 0;
  double compression_vs_fp16 = 0;
};

struct EmbeddingStats {
  uint64_t count = 0;
  uint64_t code_bytes = 0;
  uint64_t disk_bytes = 0;
  uint64_t memory_bytes = 0;
};

// A collection: its kind, and the config and stats of that kind.
struct CollectionDescription {
  std::string name;
  CollectionKind kind = CollectionKind::kKv;
  KvConfig kv;
  KvStats kv_stats;
  EmbeddingConfig embedding;
  EmbeddingStats embedding_stats;
};

struct CollectionEntry {
  std::string name;
  CollectionKind kind = CollectionKind::kKv;
};

struct AppendResult {
  uint64_t appended = 0;  // tokens appended
  uint64_t length = 0;    // sequence length after the (last) append
};

// Token range and logit scale of Score and Attend (0: the method's default).
struct RangeOptions {
  uint64_t begin = 0;
  std::optional<uint64_t> end;  // default: the sequence's end
  float scale = 0.0f;
  // The server sends the result in this type (f16/bf16: half the bytes,
  // rounded to nearest even); the client returns floats either way.
  // Default: unset, f32.
  std::optional<DType> result_dtype;
};

struct Hit {
  int64_t id = 0;
  float distance = 0.0f;
};

// Tokens of AppendStream messages.
class AppendStream {
 public:
  virtual ~AppendStream() = default;
  // Sends one append (applied atomically by the server when it arrives).
  // An error means the stream broke: Finish tells why.
  virtual absl::Status Write(const std::string& collection, uint64_t seq, size_t n_tokens,
                             absl::Span<const float> keys, absl::Span<const float> values) = 0;
  // The same with keys and values as packed little-endian `dtype` elements
  // (a runtime's f16/bf16 tensors as they are).
  virtual absl::Status WriteBytes(const std::string& collection, uint64_t seq, size_t n_tokens,
                                  DType dtype, absl::Span<const uint8_t> keys,
                                  absl::Span<const uint8_t> values) = 0;
  // Ends the stream: what was appended, or the first failing message's
  // status (the messages before it stay appended).
  virtual absl::StatusOr<AppendResult> Finish() = 0;
};

class Client {
 public:
  // Creates the channel (connecting lazily: an unreachable server shows as
  // UNAVAILABLE on the first call). InvalidArgument for an empty target.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // grpc.health.v1 Check of the server as a whole: true when SERVING.
  absl::StatusOr<bool> Healthy();

  // --- Collections
  absl::StatusOr<CollectionDescription> CreateKvCollection(const std::string& name,
                                                           const KvConfig& config);
  absl::StatusOr<CollectionDescription> CreateEmbeddingCollection(const std::string& name,
                                                                  const EmbeddingConfig& config);
  absl::Status DropCollection(const std::string& name);
  absl::StatusOr<std::vector<CollectionEntry>> ListCollections();
  absl::StatusOr<CollectionDescription> DescribeCollection(const std::string& name);

  // --- KV: token tensors are [num_layers][num_kv_heads][n_tokens][head_dim].
  absl::Status CreateSequence(const std::string& collection, uint64_t seq);
  absl::StatusOr<AppendResult> Append(const std::string& collection, uint64_t seq,
                                      size_t n_tokens, absl::Span<const float> keys,
                                      absl::Span<const float> values);
  // Keys and values as packed little-endian `dtype` elements.
  absl::StatusOr<AppendResult> AppendBytes(const std::string& collection, uint64_t seq,
                                           size_t n_tokens, DType dtype,
                                           absl::Span<const uint8_t> keys,
                                           absl::Span<const uint8_t> values);
  // A client-streaming append (one call, many messages).
  std::unique_ptr<AppendStream> OpenAppendStream();
  // Logits of H = queries.size() / head_dim query heads: H × n floats.
  absl::StatusOr<std::vector<float>> Score(const std::string& collection, uint64_t seq, int layer,
                                           absl::Span<const float> queries,
                                           const RangeOptions& options = {});
  // Attention output: H × head_dim floats.
  absl::StatusOr<std::vector<float>> Attend(const std::string& collection, uint64_t seq,
                                            int layer, absl::Span<const float> queries,
                                            const RangeOptions& options = {});
  // Decoded tokens [begin, end) (default end: the sequence's), gathered from
  // the server's chunks of `chunk_tokens` (0: the server's default).
  absl::Status Read(const std::string& collection, uint64_t seq, uint64_t begin,
                    std::optional<uint64_t> end, std::vector<float>* keys,
                    std::vector<float>* values, uint32_t chunk_tokens = 0);
  absl::Status Truncate(const std::string& collection, uint64_t seq, uint64_t length);
  absl::Status DropSequence(const std::string& collection, uint64_t seq);
  // Returns the new sequence's length.
  absl::StatusOr<uint64_t> Fork(const std::string& collection, uint64_t source, uint64_t target,
                                std::optional<uint64_t> length = std::nullopt);
  absl::StatusOr<uint64_t> SequenceLength(const std::string& collection, uint64_t seq);
  absl::StatusOr<std::vector<uint64_t>> ListSequences(const std::string& collection);

  // --- Vectors: ids.size() × dim row-major floats.
  absl::StatusOr<uint64_t> Upsert(const std::string& collection, absl::Span<const uint64_t> ids,
                                  absl::Span<const float> vectors);
  absl::StatusOr<uint64_t> UpsertBytes(const std::string& collection,
                                       absl::Span<const uint64_t> ids, DType dtype,
                                       absl::Span<const uint8_t> vectors);
  // Returns how many of the ids existed.
  absl::StatusOr<uint64_t> Delete(const std::string& collection, absl::Span<const uint64_t> ids);
  // vectors: ids.size() × dim floats (zeros where not found).
  absl::Status Get(const std::string& collection, absl::Span<const uint64_t> ids,
                   std::vector<float>* vectors, std::vector<bool>* found);
  absl::StatusOr<std::vector<Hit>> Search(const std::string& collection,
                                          absl::Span<const float> query, int k,
                                          int oversample = 0);
  // One result list per query (queries: nq × dim floats).
  absl::StatusOr<std::vector<std::vector<Hit>>> SearchBatch(const std::string& collection,
                                                            absl::Span<const float> queries,
                                                            int k, int oversample = 0);

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tqdb::client

#endif  // TQDB_CLIENT_CLIENT_H_
