#include "server/internal/kv_service.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "server/internal/call.h"
#include "server/internal/tensor.h"

namespace tqdb::server::internal {
namespace {

// Threads that run Score calls. With two cores, more concurrent scans only
// share them; a few keep short calls from waiting behind a long one.
constexpr int kScoreWorkers = 8;

namespace pb = ::tqdb::v1;

// Bytes of Read's chunks when the request leaves chunk_tokens 0.
constexpr size_t kDefaultChunkBytes = size_t{1} << 20;

// Validates one append's tensors and appends them; returns the tokens added
// and sets *length to the sequence's length after them. defer_sync: see
// KvCollection::Append (the stream syncs once before it acknowledges).
absl::StatusOr<uint64_t> AppendTokens(storage::KvCollection& kv, const pb::AppendRequest& req,
                                      uint64_t* length, bool defer_sync = false) {
  const storage::KvCollectionConfig& c = kv.config();
  TQDB_ASSIGN_OR_RETURN(TensorView keys, ViewTensor(req.keys(), "keys"));
  TQDB_ASSIGN_OR_RETURN(TensorView values, ViewTensor(req.values(), "values"));
  if (keys.packed != values.packed || keys.dtype != values.dtype) {
    return absl::InvalidArgumentError("keys and values must use the same encoding and dtype");
  }
  if (req.n_tokens() > keys.size) {
    return absl::InvalidArgumentError(absl::StrCat("n_tokens=", req.n_tokens(), " but keys hold ",
                                                   keys.size, " elements"));
  }
  std::array<Dim, 4> shape = {Dim{"num_layers", c.num_layers}, Dim{"num_kv_heads", c.num_kv_heads},
                              Dim{"n_tokens", -1}, Dim{"head_dim", c.head_dim}};
  if (req.n_tokens() > 0) shape[2].size = static_cast<int64_t>(req.n_tokens());
  TQDB_ASSIGN_OR_RETURN(int64_t n, CheckShape(keys, "keys", shape));
  if (req.n_tokens() > 0) n = static_cast<int64_t>(req.n_tokens());
  shape[2].size = n;
  TQDB_RETURN_IF_ERROR(CheckShape(values, "values", shape).status());
  storage::KvTokens tokens;
  if (keys.packed) {
    tokens.n_tokens = static_cast<size_t>(n);
    tokens.dtype = keys.dtype;
    tokens.keys = keys.bytes;
    tokens.values = values.bytes;
  } else {
    tokens = storage::FloatTokens(static_cast<size_t>(n), keys.floats, values.floats);
  }
  TQDB_ASSIGN_OR_RETURN(*length, kv.Append(req.sequence_id(), tokens, defer_sync));
  return static_cast<uint64_t>(n);
}

// Queries of Score/Attend as floats: [H, head_dim]; `heads` receives H.
absl::StatusOr<std::vector<float>> Queries(const storage::KvCollection& kv, const pb::Tensor& t,
                                           bool* packed, int64_t* heads) {
  TQDB_ASSIGN_OR_RETURN(TensorView view, ViewTensor(t, "queries"));
  const std::array<Dim, 2> shape = {Dim{"query_heads", -1}, Dim{"head_dim", kv.config().head_dim}};
  TQDB_ASSIGN_OR_RETURN(*heads, CheckShape(view, "queries", shape));
  *packed = view.packed;
  return ToFloats(view, "queries");
}

absl::Status CheckScale(float scale) {
  if (std::isfinite(scale)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("scale is not finite (", scale, ")"));
}

}  // namespace

KvService::KvService(storage::Store* store, const TokenAuth* auth)
    : store_(store), auth_(auth), workers_(kScoreWorkers) {}

grpc::Status KvService::CreateSequence(grpc::ServerContext* ctx,
                                       const pb::CreateSequenceRequest* req,
                                       pb::CreateSequenceResponse* /*resp*/) {
  Call call(ctx, *auth_, "Kv/CreateSequence", req->collection());
  return call.Run([&]() -> absl::Status {
    TQDB_ASSIGN_OR_RETURN(auto kv, store_->GetKvCollection(req->collection()));
    return kv->CreateSequence(req->sequence_id());
  });
}

grpc::Status KvService::Append(grpc::ServerContext* ctx, const pb::AppendRequest* req,
                               pb::AppendResponse* resp) {
  Call call(ctx, *auth_, "Kv/Append", req->collection());
  return call.Run([&]() -> absl::Status {
    TQDB_ASSIGN_OR_RETURN(auto kv, store_->GetKvCollection(req->collection()));
    uint64_t length = 0;
    TQDB_ASSIGN_OR_RETURN(uint64_t n, AppendTokens(*kv, *req, &length));
    call.set_items(n);
    resp->set_appended(n);
    resp->set_length(length);
    return absl::OkStatus();
  });
}

grpc::Status KvService::AppendStream(grpc::ServerContext* ctx,
                                     grpc::ServerReader<pb::AppendRequest>* reader,
                                     pb::AppendResponse* resp) {
  Call call(ctx, *auth_, "Kv/AppendStream", "");
  return call.Run([&]() -> absl::Status {
    pb::AppendRequest req;
    std::shared_ptr<storage::KvCollection> kv;
    uint64_t appended = 0;
    uint64_t length = 0;
    while (reader->Read(&req)) {
      TQDB_RETURN_IF_ERROR(call.CheckCancelled());
      if (kv == nullptr || kv->name() != req.collection()) {
        TQDB_ASSIGN_OR_RETURN(kv, store_->GetKvCollection(req.collection()));
        call.set_collection(req.collection());
      }
      // The stream is acknowledged once, at its end: one fsync for all of it.
      TQDB_ASSIGN_OR_RETURN(uint64_t n, AppendTokens(*kv, req, &length, /*defer_sync=*/true));
      appended += n;
      call.add_items(n);
    }
    // Read also ends when the client cancels: never report that as success.
    TQDB_RETURN_IF_ERROR(call.CheckCancelled());
    TQDB_RETURN_IF_ERROR(store_->Sync());
    resp->set_appended(appended);
    resp->set_length(length);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* KvService::Score(grpc::CallbackServerContext* ctx,
                                           const grpc::ByteBuffer* req, grpc::ByteBuffer* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  // Made here, so the call's logged latency includes its wait for a worker.
  auto call = std::make_shared<Call>(ctx, *auth_, "Kv/Score", "");
  // gRPC keeps ctx, req and resp until the reactor is finished.
  workers_.Schedule([this, call, req, resp, reactor] {
    reactor->Finish(ScoreNow(*call, *req, resp));
  });
  return reactor;
}

grpc::Status KvService::ScoreNow(Call& call, const grpc::ByteBuffer& raw, grpc::ByteBuffer* resp) {
  pb::ScoreRequest parsed;
  grpc::ByteBuffer copy = raw;  // shares the slices; Deserialize consumes its buffer
  const bool valid = grpc::SerializationTraits<pb::ScoreRequest>::Deserialize(&copy, &parsed).ok();
  const pb::ScoreRequest* req = &parsed;
  call.set_collection(req->collection());
  return call.Run([&]() -> absl::Status {
    if (!valid) return absl::InvalidArgumentError("the request is not a tqdb.v1.ScoreRequest");
    TQDB_ASSIGN_OR_RETURN(auto kv, store_->GetKvCollection(req->collection()));
    bool packed = false;
    int64_t heads = 0;
    TQDB_ASSIGN_OR_RETURN(std::vector<float> queries, Queries(*kv, req->queries(), &packed, &heads));
    TQDB_RETURN_IF_ERROR(CheckScale(req->scale()));
    TQDB_ASSIGN_OR_RETURN(ResultForm form, ResultFormFor(packed, req->result_dtype()));
    storage::KvScoreOptions options;
    options.scale = req->scale() == 0.0f ? 1.0f : req->scale();
    options.begin = req->begin();
    options.end = req->has_end() ? req->end() : storage::kToEnd;
    options.cancelled = call.Cancelled();
    TQDB_RETURN_IF_ERROR(call.CheckCancelled());
    // The logits are written straight into the buffer gRPC sends.
    ResultWriter logits(form);
    absl::StatusOr<uint64_t> scored = kv->ScoreInto(
        req->sequence_id(), req->layer(), queries,
        [&](uint64_t tokens) { return logits.Floats(static_cast<size_t>(heads) * tokens); },
        options);
    if (absl::IsCancelled(scored.status())) return call.CheckCancelled();  // deadline or client
    TQDB_RETURN_IF_ERROR(scored.status());
    const auto n = static_cast<int64_t>(*scored);
    call.set_items(static_cast<uint64_t>(heads));
    pb::ScoreResponse rest;
    rest.set_begin(req->begin());
    rest.set_end(req->begin() + static_cast<uint64_t>(n));
    const int64_t shape[] = {heads, n};
    *resp = logits.Finish(rest, pb::ScoreResponse::kLogitsFieldNumber, shape);
    return absl::OkStatus();
  });
}

grpc::Status KvService::Attend(grpc::ServerContext* ctx, const pb::AttendRequest* req,
                               pb::AttendResponse* resp) {
  Call call(ctx, *auth_, "Kv/Attend", req->collection());
  return call.Run([&]() -> absl::Status {
    TQDB_ASSIGN_OR_RETURN(auto kv, store_->GetKvCollection(req->collection()));
    bool packed = false;
    int64_t heads = 0;
    TQDB_ASSIGN_OR_RETURN(std::vector<float> queries, Queries(*kv, req->queries(), &packed, &heads));
    TQDB_RETURN_IF_ERROR(CheckScale(req->scale()));
    TQDB_ASSIGN_OR_RETURN(ResultForm form, ResultFormFor(packed, req->result_dtype()));
    storage::KvAttendOptions options;
    options.scale = req->scale();
    options.begin = req->begin();
    options.end = req->has_end() ? req->end() : storage::kToEnd;
    options.cancelled = call.Cancelled();
    TQDB_RETURN_IF_ERROR(call.CheckCancelled());
    absl::StatusOr<std::vector<float>> attended =
        kv->Attend(req->sequence_id(), req->layer(), queries, options);
    if (absl::IsCancelled(attended.status())) return call.CheckCancelled();
    TQDB_ASSIGN_OR_RETURN(std::vector<float> out, std::move(attended));
    call.set_items(static_cast<uint64_t>(heads));
    FillTensor(out, {heads, kv->config().head_dim}, form, resp->mutable_output());
    return absl::OkStatus();
  });
}

grpc::Status KvService::Read(grpc::ServerContext* ctx, const pb::ReadRequest* req,
                             grpc::ServerWriter<pb::ReadChunk>* writer) {
  Call call(ctx, *auth_, "Kv/Read", req->collection());
  return call.Run([&]() -> absl::Status {
    TQDB_ASSIGN_OR_RETURN(auto kv, store_->GetKvCollection(req->collection()));
    TQDB_ASSIGN_OR_RETURN(uint64_t length, kv->Length(req->sequence_id()));
    const uint64_t begin = req->begin();
    const uint64_t end = req->has_end() ? req->end() : length;
    if (begin > end || end > length) {
      return absl::InvalidArgumentError(absl::StrCat("range [", begin, ", ", end,
                                                     ") is not within [0, length=", length, "]"));
    }
    const storage::KvCollectionConfig& c = kv->config();
    const int64_t per_token = int64_t{c.num_layers} * c.num_kv_heads * c.head_dim;
    uint64_t chunk = req->chunk_tokens();
    if (chunk == 0) {
      chunk = std::max<uint64_t>(1, kDefaultChunkBytes / (2 * sizeof(float) * per_token));
    }
    std::vector<float> keys;
    std::vector<float> values;
    pb::ReadChunk out;
    for (uint64_t b = begin; b < end; b += chunk) {
      TQDB_RETURN_IF_ERROR(call.CheckCancelled());
      const uint64_t e = std::min(end, b + chunk);
      TQDB_RETURN_IF_ERROR(kv->Read(req->sequence_id(), b, e, &keys, &values));
      const std::vector<int64_t> shape = {c.num_layers, c.num_kv_heads,
                                          static_cast<int64_t>(e - b), c.head_dim};
      out.set_begin(b);
      out.set_end(e);
      FillTensor(keys, shape, req->packed(), out.mutable_keys());
      FillTensor(values, shape, req->packed(), out.mutable_values());
      if (!writer->Write(out)) {
        return absl::CancelledError("the client went away during Read");
      }
      call.add_items(e - b);
    }
    return absl::OkStatus();
  });
}

grpc::Status KvService::Truncate(grpc::ServerContext* ctx, const pb::TruncateRequest* req,
                                 pb::TruncateResponse* /*resp*/) {
  Call call(ctx, *auth_, "Kv/Truncate", req->collection());
  return call.Run([&]() -> absl::Status {
    TQDB_ASSIGN_OR_RETURN(auto kv, store_->GetKvCollection(req->collection()));
    return kv->Truncate(req->sequence_id(), req->length());
  });
}

grpc::Status KvService::DropSequence(grpc::ServerContext* ctx,
                                     const pb::DropSequenceRequest* req,
                                     pb::DropSequenceResponse* /*resp*/) {
  Call call(ctx, *auth_, "Kv/DropSequence", req->collection());
  return call.Run([&]() -> absl::Status {
    TQDB_ASSIGN_OR_RETURN(auto kv, store_->GetKvCollection(req->collection()));
    return kv->DropSequence(req->sequence_id());
  });
}

grpc::Status KvService::Fork(grpc::ServerContext* ctx, const pb::ForkRequest* req,
                             pb::ForkResponse* resp) {
  Call call(ctx, *auth_, "Kv/Fork", req->collection());
  return call.Run([&]() -> absl::Status {
    TQDB_ASSIGN_OR_RETURN(auto kv, store_->GetKvCollection(req->collection()));
    TQDB_RETURN_IF_ERROR(kv->Fork(req->source_id(), req->target_id(),
                                  req->has_length() ? req->length() : storage::kToEnd));
    TQDB_ASSIGN_OR_RETURN(uint64_t length, kv->Length(req->target_id()));
    resp->set_length(length);
    return absl::OkStatus();
  });
}

grpc::Status KvService::GetSequence(grpc::ServerContext* ctx, const pb::GetSequenceRequest* req,
                                    pb::GetSequenceResponse* resp) {
  Call call(ctx, *auth_, "Kv/GetSequence", req->collection());
  return call.Run([&]() -> absl::Status {
    TQDB_ASSIGN_OR_RETURN(auto kv, store_->GetKvCollection(req->collection()));
    TQDB_ASSIGN_OR_RETURN(uint64_t length, kv->Length(req->sequence_id()));
    resp->set_length(length);
    return absl::OkStatus();
  });
}

grpc::Status KvService::ListSequences(grpc::ServerContext* ctx,
                                      const pb::ListSequencesRequest* req,
                                      pb::ListSequencesResponse* resp) {
  Call call(ctx, *auth_, "Kv/ListSequences", req->collection());
  return call.Run([&]() -> absl::Status {
    TQDB_ASSIGN_OR_RETURN(auto kv, store_->GetKvCollection(req->collection()));
    std::vector<uint64_t> ids = kv->Sequences();
    resp->mutable_sequence_ids()->Assign(ids.begin(), ids.end());
    call.set_items(ids.size());
    return absl::OkStatus();
  });
}

}  // namespace tqdb::server::internal
