#include "client/client.h"

#include <bit>
#include <cstring>
#include <utility>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include "absl/strings/str_cat.h"
#include "client/internal/tensor_reader.h"
#include "common/status.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tqdb/v1/tqdb.grpc.pb.h"

namespace tqdb::client {
namespace {

namespace pb = ::tqdb::v1;

static_assert(std::endian::native == std::endian::little,
              "Tensor.data is little-endian; a big-endian host needs byte swaps");

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

pb::DType ToProto(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return pb::DTYPE_F32;
    case DType::kF16:
      return pb::DTYPE_F16;
    case DType::kBF16:
      return pb::DTYPE_BF16;
  }
  return pb::DTYPE_UNSPECIFIED;
}

void SetFloats(absl::Span<const float> values, Encoding encoding, pb::Tensor* out) {
  if (encoding == Encoding::kPacked) {
    out->set_dtype(pb::DTYPE_F32);
    out->set_data(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  } else {
    out->mutable_values()->Assign(values.begin(), values.end());
  }
}

void SetBytes(DType dtype, absl::Span<const uint8_t> bytes, pb::Tensor* out) {
  out->set_dtype(ToProto(dtype));
  out->set_data(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// A response tensor's elements (the server sends floats, or f32 bytes, or
// f16/bf16 bytes when asked to).
absl::StatusOr<std::vector<float>> ToFloats(const pb::Tensor& t) {
  if (t.data().empty()) return std::vector<float>(t.values().begin(), t.values().end());
  return internal::DataToFloats(t.dtype(), t.data().data(), t.data().size());
}

KvConfig FromProto(const pb::KvConfig& c) {
  KvConfig out;
  out.num_layers = c.num_layers();
  out.num_kv_heads = c.num_kv_heads();
  out.head_dim = c.head_dim();
  out.key_format = c.key_format();
  out.value_format = c.value_format();
  out.boundary_layers = c.boundary_layers();
  out.boundary_key_format = c.boundary_key_format();
  out.boundary_value_format = c.boundary_value_format();
  out.page_tokens = c.page_tokens();
  out.seed = c.seed();
  return out;
}

EmbeddingConfig FromProto(const pb::EmbeddingConfig& c) {
  EmbeddingConfig out;
  out.dim = c.dim();
  out.metric = c.metric() == pb::METRIC_COSINE ? Metric::kCosine
               : c.metric() == pb::METRIC_L2   ? Metric::kL2
                                               : Metric::kInnerProduct;
  out.format = c.format();
  out.keep_raw = c.keep_raw() == pb::RAW_TYPE_F16   ? RawType::kF16
                 : c.keep_raw() == pb::RAW_TYPE_F32 ? RawType::kF32
                                                    : RawType::kNone;
  out.center.assign(c.center().begin(), c.center().end());
  out.seed = c.seed();
  return out;
}

CollectionDescription FromProto(const pb::CollectionDescription& d) {
  CollectionDescription out;
  out.name = d.name();
  out.kind = d.kind() == pb::COLLECTION_KIND_EMBEDDING ? CollectionKind::kEmbedding
                                                       : CollectionKind::kKv;
  if (d.has_kv()) out.kv = FromProto(d.kv());
  if (d.has_embedding()) out.embedding = FromProto(d.embedding());
  if (d.has_kv_stats()) {
    const pb::KvStats& s = d.kv_stats();
    out.kv_stats = {s.sequences(),  s.tokens(),       s.stored_tokens(),       s.code_bytes(),
                    s.disk_bytes(), s.memory_bytes(), s.compression_vs_fp16()};
  }
  if (d.has_embedding_stats()) {
    const pb::EmbeddingStats& s = d.embedding_stats();
    out.embedding_stats = {s.count(), s.code_bytes(), s.disk_bytes(), s.memory_bytes()};
  }
  return out;
}

std::vector<Hit> FromProto(const google::protobuf::RepeatedPtrField<pb::Hit>& hits) {
  std::vector<Hit> out;
  out.reserve(hits.size());
  for (const pb::Hit& h : hits) out.push_back({h.id(), h.distance()});
  return out;
}

}  // namespace

struct Client::Impl {
  ClientOptions options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::Collections::Stub> collections;
  std::unique_ptr<pb::Kv::Stub> kv;
  std::unique_ptr<pb::Vectors::Stub> vectors;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;

  // A context with the call's deadline and token.
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (options.timeout.count() > 0) {
      ctx->set_deadline(std::chrono::system_clock::now() + options.timeout);
    }
    if (!options.auth_token.empty()) {
      ctx->AddMetadata("authorization", "Bearer " + options.auth_token);
    }
    return ctx;
  }

  // Runs a unary call of `stub`.
  template <typename Stub, typename Req, typename Resp>
  absl::Status Unary(Stub* stub,
                     grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                     const Req& req, Resp* resp) const {
    auto ctx = Context();
    return FromGrpc((stub->*method)(ctx.get(), req, resp));
  }

  // Runs the unary call `method` ("/tqdb.v1.Kv/Score") and leaves its
  // response as gRPC received it, for a reader that skips protobuf's parse.
  template <typename Req>
  absl::Status RawUnary(const std::string& method, const Req& req, grpc::ByteBuffer* resp) const {
    grpc::TemplatedGenericStub<Req, grpc::ByteBuffer> stub(channel);
    auto ctx = Context();
    grpc::CompletionQueue cq;
    auto call = stub.PrepareUnaryCall(ctx.get(), method, req, &cq);
    call->StartCall();
    grpc::Status status;
    call->Finish(resp, &status, &status);
    void* tag = nullptr;
    bool ok = false;
    // Finish's tag always comes back (ok or not), with `status` set.
    const bool got = cq.Next(&tag, &ok);
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    if (!got) return absl::InternalError("the completion queue shut down during " + method);
    return FromGrpc(status);
  }
};

namespace {

class AppendStreamImpl : public AppendStream {
 public:
  AppendStreamImpl(pb::Kv::Stub* stub, std::unique_ptr<grpc::ClientContext> ctx,
                   Encoding encoding)
      : ctx_(std::move(ctx)), encoding_(encoding) {
    writer_ = stub->AppendStream(ctx_.get(), &resp_);
  }

  absl::Status Write(const std::string& collection, uint64_t seq, size_t n_tokens,
                     absl::Span<const float> keys, absl::Span<const float> values) override {
    pb::AppendRequest req = Request(collection, seq, n_tokens);
    SetFloats(keys, encoding_, req.mutable_keys());
    SetFloats(values, encoding_, req.mutable_values());
    return Send(req);
  }

  absl::Status WriteBytes(const std::string& collection, uint64_t seq, size_t n_tokens,
                          DType dtype, absl::Span<const uint8_t> keys,
                          absl::Span<const uint8_t> values) override {
    pb::AppendRequest req = Request(collection, seq, n_tokens);
    SetBytes(dtype, keys, req.mutable_keys());
    SetBytes(dtype, values, req.mutable_values());
    return Send(req);
  }

  absl::StatusOr<AppendResult> Finish() override {
    writer_->WritesDone();
    TQDB_RETURN_IF_ERROR(FromGrpc(writer_->Finish()));
    return AppendResult{resp_.appended(), resp_.length()};
  }

 private:
  static pb::AppendRequest Request(const std::string& collection, uint64_t seq, size_t n_tokens) {
    pb::AppendRequest req;
    req.set_collection(collection);
    req.set_sequence_id(seq);
    req.set_n_tokens(n_tokens);
    return req;
  }

  absl::Status Send(const pb::AppendRequest& req) {
    if (!writer_->Write(req)) {
      return absl::UnavailableError("the append stream broke (Finish has the status)");
    }
    return absl::OkStatus();
  }

  std::unique_ptr<grpc::ClientContext> ctx_;
  Encoding encoding_;
  pb::AppendResponse resp_;
  std::unique_ptr<grpc::ClientWriter<pb::AppendRequest>> writer_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  if (options.target.empty()) return absl::InvalidArgumentError("no target to connect to");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls_root_pem;
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  impl->channel = grpc::CreateCustomChannel(options.target, creds, args);
  impl->collections = pb::Collections::NewStub(impl->channel);
  impl->kv = pb::Kv::NewStub(impl->channel);
  impl->vectors = pb::Vectors::NewStub(impl->channel);
  impl->health = grpc::health::v1::Health::NewStub(impl->channel);
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

absl::StatusOr<bool> Client::Healthy() {
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  TQDB_RETURN_IF_ERROR(
      impl_->Unary(impl_->health.get(), &grpc::health::v1::Health::Stub::Check, req, &resp));
  return resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

// --- Collections

absl::StatusOr<CollectionDescription> Client::CreateKvCollection(const std::string& name,
                                                                 const KvConfig& c) {
  pb::CreateCollectionRequest req;
  req.set_name(name);
  pb::KvConfig* kv = req.mutable_kv();
  kv->set_num_layers(c.num_layers);
  kv->set_num_kv_heads(c.num_kv_heads);
  kv->set_head_dim(c.head_dim);
  kv->set_key_format(c.key_format);
  kv->set_value_format(c.value_format);
  kv->set_boundary_layers(c.boundary_layers);
  kv->set_boundary_key_format(c.boundary_key_format);
  kv->set_boundary_value_format(c.boundary_value_format);
  kv->set_page_tokens(c.page_tokens);
  kv->set_seed(c.seed);
  pb::CreateCollectionResponse resp;
  TQDB_RETURN_IF_ERROR(impl_->Unary(impl_->collections.get(),
                                    &pb::Collections::Stub::CreateCollection, req, &resp));
  return FromProto(resp.collection());
}

absl::StatusOr<CollectionDescription> Client::CreateEmbeddingCollection(
    const std::string& name, const EmbeddingConfig& c) {
  pb::CreateCollectionRequest req;
  req.set_name(name);
  pb::EmbeddingConfig* e = req.mutable_embedding();
  e->set_dim(c.dim);
  e->set_metric(static_cast<pb::Metric>(c.metric));
  e->set_format(c.format);
  e->set_keep_raw(static_cast<pb::RawType>(c.keep_raw));
  e->mutable_center()->Assign(c.center.begin(), c.center.end());
  e->set_seed(c.seed);
  pb::CreateCollectionResponse resp;
  TQDB_RETURN_IF_ERROR(impl_->Unary(impl_->collections.get(),
                                    &pb::Collections::Stub::CreateCollection, req, &resp));
  return FromProto(resp.collection());
}

absl::Status Client::DropCollection(const std::string& name) {
  pb::DropCollectionRequest req;
  req.set_name(name);
  pb::DropCollectionResponse resp;
  return impl_->Unary(impl_->collections.get(), &pb::Collections::Stub::DropCollection, req,
                      &resp);
}

absl::StatusOr<std::vector<CollectionEntry>> Client::ListCollections() {
  pb::ListCollectionsRequest req;
  pb::ListCollectionsResponse resp;
  TQDB_RETURN_IF_ERROR(impl_->Unary(impl_->collections.get(),
                                    &pb::Collections::Stub::ListCollections, req, &resp));
  std::vector<CollectionEntry> out;
  for (const auto& e : resp.collections()) {
    out.push_back({e.name(), e.kind() == pb::COLLECTION_KIND_EMBEDDING ? CollectionKind::kEmbedding
                                                                       : CollectionKind::kKv});
  }
  return out;
}

absl::StatusOr<CollectionDescription> Client::DescribeCollection(const std::string& name) {
  pb::DescribeCollectionRequest req;
  req.set_name(name);
  pb::DescribeCollectionResponse resp;
  TQDB_RETURN_IF_ERROR(impl_->Unary(impl_->collections.get(),
                                    &pb::Collections::Stub::DescribeCollection, req, &resp));
  return FromProto(resp.collection());
}

// --- KV

absl::Status Client::CreateSequence(const std::string& collection, uint64_t seq) {
  pb::CreateSequenceRequest req;
  req.set_collection(collection);
  req.set_sequence_id(seq);
  pb::CreateSequenceResponse resp;
  return impl_->Unary(impl_->kv.get(), &pb::Kv::Stub::CreateSequence, req, &resp);
}

absl::StatusOr<AppendResult> Client::Append(const std::string& collection, uint64_t seq,
                                            size_t n_tokens, absl::Span<const float> keys,
                                            absl::Span<const float> values) {
  pb::AppendRequest req;
  req.set_collection(collection);
  req.set_sequence_id(seq);
  req.set_n_tokens(n_tokens);
  SetFloats(keys, impl_->options.encoding, req.mutable_keys());
  SetFloats(values, impl_->options.encoding, req.mutable_values());
  pb::AppendResponse resp;
  TQDB_RETURN_IF_ERROR(impl_->Unary(impl_->kv.get(), &pb::Kv::Stub::Append, req, &resp));
  return AppendResult{resp.appended(), resp.length()};
}

absl::StatusOr<AppendResult> Client::AppendBytes(const std::string& collection, uint64_t seq,
                                                 size_t n_tokens, DType dtype,
                                                 absl::Span<const uint8_t> keys,
                                                 absl::Span<const uint8_t> values) {
  pb::AppendRequest req;
  req.set_collection(collection);
  req.set_sequence_id(seq);
  req.set_n_tokens(n_tokens);
  SetBytes(dtype, keys, req.mutable_keys());
  SetBytes(dtype, values, req.mutable_values());
  pb::AppendResponse resp;
  TQDB_RETURN_IF_ERROR(impl_->Unary(impl_->kv.get(), &pb::Kv::Stub::Append, req, &resp));
  return AppendResult{resp.appended(), resp.length()};
}

std::unique_ptr<AppendStream> Client::OpenAppendStream() {
  return std::make_unique<AppendStreamImpl>(impl_->kv.get(), impl_->Context(),
                                            impl_->options.encoding);
}

namespace {

// Score and Attend requests share their fields.
template <typename Request>
void FillRangeRequest(const std::string& collection, uint64_t seq, int layer,
                      absl::Span<const float> queries, const RangeOptions& options,
                      Encoding encoding, Request* req) {
  req->set_collection(collection);
  req->set_sequence_id(seq);
  req->set_layer(layer);
  SetFloats(queries, encoding, req->mutable_queries());
  req->set_scale(options.scale);
  req->set_begin(options.begin);
  if (options.end.has_value()) req->set_end(*options.end);
  if (options.result_dtype.has_value()) req->set_result_dtype(ToProto(*options.result_dtype));
}

}  // namespace

absl::StatusOr<std::vector<float>> Client::Score(const std::string& collection, uint64_t seq,
                                                 int layer, absl::Span<const float> queries,
                                                 const RangeOptions& options) {
  pb::ScoreRequest req;
  FillRangeRequest(collection, seq, layer, queries, options, impl_->options.encoding, &req);
  // Megabytes of logits: read off the received slices (one copy) rather
  // than parsed into a ScoreResponse and copied out of it.
  static const std::string kMethod = absl::StrCat("/", pb::Kv::service_full_name(), "/Score");
  grpc::ByteBuffer resp;
  TQDB_RETURN_IF_ERROR(impl_->RawUnary(kMethod, req, &resp));
  grpc::ProtoBufferReader reader(&resp);
  return internal::ReadTensorFloats(&reader, pb::ScoreResponse::kLogitsFieldNumber);
}

absl::StatusOr<std::vector<float>> Client::Attend(const std::string& collection, uint64_t seq,
                                                  int layer, absl::Span<const float> queries,
                                                  const RangeOptions& options) {
  pb::AttendRequest req;
  FillRangeRequest(collection, seq, layer, queries, options, impl_->options.encoding, &req);
  pb::AttendResponse resp;
  TQDB_RETURN_IF_ERROR(impl_->Unary(impl_->kv.get(), &pb::Kv::Stub::Attend, req, &resp));
  return ToFloats(resp.output());
}

absl::Status Client::Read(const std::string& collection, uint64_t seq, uint64_t begin,
                          std::optional<uint64_t> end, std::vector<float>* keys,
                          std::vector<float>* values, uint32_t chunk_tokens) {
  pb::ReadRequest req;
  req.set_collection(collection);
  req.set_sequence_id(seq);
  req.set_begin(begin);
  if (end.has_value()) req.set_end(*end);
  req.set_packed(impl_->options.encoding == Encoding::kPacked);
  req.set_chunk_tokens(chunk_tokens);
  auto ctx = impl_->Context();
  auto reader = impl_->kv->Read(ctx.get(), req);
  // Chunks are [L][H][n_c][D]; the result is [L][H][Σ n_c][D].
  struct Chunk {
    std::vector<float> keys, values;
    int64_t tokens;
  };
  std::vector<Chunk> chunks;
  int64_t lh = 0;
  int64_t dim = 0;
  int64_t total = 0;
  pb::ReadChunk chunk;
  absl::Status bad;
  while (reader->Read(&chunk)) {
    if (!bad.ok()) continue;
    const auto& shape = chunk.keys().shape();
    if (shape.size() != 4) {
      bad = absl::InternalError("the server sent a chunk without a 4-d shape");
      continue;
    }
    lh = shape[0] * shape[1];
    dim = shape[3];
    auto k = ToFloats(chunk.keys());
    auto v = ToFloats(chunk.values());
    if (!k.ok() || !v.ok()) {
      bad = !k.ok() ? k.status() : v.status();
      continue;
    }
    chunks.push_back({*std::move(k), *std::move(v), shape[2]});
    total += shape[2];
  }
  TQDB_RETURN_IF_ERROR(FromGrpc(reader->Finish()));
  TQDB_RETURN_IF_ERROR(bad);
  keys->assign(static_cast<size_t>(lh * total * dim), 0.0f);
  values->assign(keys->size(), 0.0f);
  int64_t offset = 0;
  for (const Chunk& c : chunks) {
    for (int64_t i = 0; i < lh; ++i) {
      const size_t n = static_cast<size_t>(c.tokens * dim);
      const size_t src = static_cast<size_t>(i * c.tokens * dim);
      const size_t dst = static_cast<size_t>((i * total + offset) * dim);
      std::memcpy(keys->data() + dst, c.keys.data() + src, n * sizeof(float));
      std::memcpy(values->data() + dst, c.values.data() + src, n * sizeof(float));
    }
    offset += c.tokens;
  }
  return absl::OkStatus();
}

absl::Status Client::Truncate(const std::string& collection, uint64_t seq, uint64_t length) {
  pb::TruncateRequest req;
  req.set_collection(collection);
  req.set_sequence_id(seq);
  req.set_length(length);
  pb::TruncateResponse resp;
  return impl_->Unary(impl_->kv.get(), &pb::Kv::Stub::Truncate, req, &resp);
}

absl::Status Client::DropSequence(const std::string& collection, uint64_t seq) {
  pb::DropSequenceRequest req;
  req.set_collection(collection);
  req.set_sequence_id(seq);
  pb::DropSequenceResponse resp;
  return impl_->Unary(impl_->kv.get(), &pb::Kv::Stub::DropSequence, req, &resp);
}

absl::StatusOr<uint64_t> Client::Fork(const std::string& collection, uint64_t source,
                                      uint64_t target, std::optional<uint64_t> length) {
  pb::ForkRequest req;
  req.set_collection(collection);
  req.set_source_id(source);
  req.set_target_id(target);
  if (length.has_value()) req.set_length(*length);
  pb::ForkResponse resp;
  TQDB_RETURN_IF_ERROR(impl_->Unary(impl_->kv.get(), &pb::Kv::Stub::Fork, req, &resp));
  return resp.length();
}

absl::StatusOr<uint64_t> Client::SequenceLength(const std::string& collection, uint64_t seq) {
  pb::GetSequenceRequest req;
  req.set_collection(collection);
  req.set_sequence_id(seq);
  pb::GetSequenceResponse resp;
  TQDB_RETURN_IF_ERROR(impl_->Unary(impl_->kv.get(), &pb::Kv::Stub::GetSequence, req, &resp));
  return resp.length();
}

absl::StatusOr<std::vector<uint64_t>> Client::ListSequences(const std::string& collection) {
  pb::ListSequencesRequest req;
  req.set_collection(collection);
  pb::ListSequencesResponse resp;
  TQDB_RETURN_IF_ERROR(
      impl_->Unary(impl_->kv.get(), &pb::Kv::Stub::ListSequences, req, &resp));
  return std::vector<uint64_t>(resp.sequence_ids().begin(), resp.sequence_ids().end());
}

// --- Vectors

absl::StatusOr<uint64_t> Client::Upsert(const std::string& collection,
                                        absl::Span<const uint64_t> ids,
                                        absl::Span<const float> vectors) {
  pb::UpsertRequest req;
  req.set_collection(collection);
  req.mutable_ids()->Assign(ids.begin(), ids.end());
  SetFloats(vectors, impl_->options.encoding, req.mutable_vectors());
  pb::UpsertResponse resp;
  TQDB_RETURN_IF_ERROR(
      impl_->Unary(impl_->vectors.get(), &pb::Vectors::Stub::Upsert, req, &resp));
  return resp.upserted();
}

absl::StatusOr<uint64_t> Client::UpsertBytes(const std::string& collection,
                                             absl::Span<const uint64_t> ids, DType dtype,
                                             absl::Span<const uint8_t> vectors) {
  pb::UpsertRequest req;
  req.set_collection(collection);
  req.mutable_ids()->Assign(ids.begin(), ids.end());
  SetBytes(dtype, vectors, req.mutable_vectors());
  pb::UpsertResponse resp;
  TQDB_RETURN_IF_ERROR(
      impl_->Unary(impl_->vectors.get(), &pb::Vectors::Stub::Upsert, req, &resp));
  return resp.upserted();
}

absl::StatusOr<uint64_t> Client::Delete(const std::string& collection,
                                        absl::Span<const uint64_t> ids) {
  pb::DeleteRequest req;
  req.set_collection(collection);
  req.mutable_ids()->Assign(ids.begin(), ids.end());
  pb::DeleteResponse resp;
  TQDB_RETURN_IF_ERROR(
      impl_->Unary(impl_->vectors.get(), &pb::Vectors::Stub::Delete, req, &resp));
  return resp.deleted();
}

absl::Status Client::Get(const std::string& collection, absl::Span<const uint64_t> ids,
                         std::vector<float>* vectors, std::vector<bool>* found) {
  pb::GetRequest req;
  req.set_collection(collection);
  req.mutable_ids()->Assign(ids.begin(), ids.end());
  req.set_packed(impl_->options.encoding == Encoding::kPacked);
  pb::GetResponse resp;
  TQDB_RETURN_IF_ERROR(impl_->Unary(impl_->vectors.get(), &pb::Vectors::Stub::Get, req, &resp));
  TQDB_ASSIGN_OR_RETURN(*vectors, ToFloats(resp.vectors()));
  found->assign(resp.found().begin(), resp.found().end());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Hit>> Client::Search(const std::string& collection,
                                                absl::Span<const float> query, int k,
                                                int oversample) {
  pb::SearchRequest req;
  req.set_collection(collection);
  SetFloats(query, impl_->options.encoding, req.mutable_query());
  req.set_k(k);
  req.set_oversample(oversample);
  pb::SearchResponse resp;
  TQDB_RETURN_IF_ERROR(
      impl_->Unary(impl_->vectors.get(), &pb::Vectors::Stub::Search, req, &resp));
  return FromProto(resp.hits());
}

absl::StatusOr<std::vector<std::vector<Hit>>> Client::SearchBatch(
    const std::string& collection, absl::Span<const float> queries, int k, int oversample) {
  pb::SearchBatchRequest req;
  req.set_collection(collection);
  SetFloats(queries, impl_->options.encoding, req.mutable_queries());
  req.set_k(k);
  req.set_oversample(oversample);
  pb::SearchBatchResponse resp;
  TQDB_RETURN_IF_ERROR(
      impl_->Unary(impl_->vectors.get(), &pb::Vectors::Stub::SearchBatch, req, &resp));
  std::vector<std::vector<Hit>> out;
  for (const auto& r : resp.results()) out.push_back(FromProto(r.hits()));
  return out;
}

}  // namespace tqdb::client
