#include "server/internal/vectors_service.h"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "server/internal/call.h"
#include "server/internal/tensor.h"

namespace tqdb::server::internal {
namespace {

namespace pb = ::tqdb::v1;

// Queries per store call in SearchBatch: cancellation is checked between.
constexpr int64_t kQueriesPerSlice = 64;

absl::StatusOr<storage::EmbeddingSearchOptions> SearchOptions(int32_t k, int32_t oversample) {
  if (k <= 0) return absl::InvalidArgumentError(absl::StrCat("k must be positive, got ", k));
  if (oversample < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("oversample must be 0 or positive, got ", oversample));
  }
  storage::EmbeddingSearchOptions options;
  options.k = k;
  options.oversample = oversample;
  return options;
}

// Appends the non-padding hits of one query's k results.
void AddHits(const int64_t* labels, const float* distances, int k,
             google::protobuf::RepeatedPtrField<pb::Hit>* hits) {
  for (int i = 0; i < k; ++i) {
    if (labels[i] < 0) break;
    pb::Hit* hit = hits->Add();
    hit->set_id(labels[i]);
    hit->set_distance(distances[i]);
  }
}

}  // namespace

grpc::Status VectorsService::Upsert(grpc::ServerContext* ctx, const pb::UpsertRequest* req,
                                    pb::UpsertResponse* resp) {
  Call call(ctx, *auth_, "Vectors/Upsert", req->collection());
  return call.Run([&]() -> absl::Status {
    TQDB_ASSIGN_OR_RETURN(auto coll, store_->GetEmbeddingCollection(req->collection()));
    TQDB_ASSIGN_OR_RETURN(TensorView view, ViewTensor(req->vectors(), "vectors"));
    const std::array<Dim, 2> shape = {Dim{"ids", req->ids_size()},
                                      Dim{"dim", coll->config().dim}};
    TQDB_RETURN_IF_ERROR(CheckShape(view, "vectors", shape).status());
    const absl::Span<const uint64_t> ids(req->ids().data(), req->ids_size());
    if (view.packed) {
      TQDB_RETURN_IF_ERROR(coll->Upsert(ids, view.dtype, view.bytes));
    } else {
      TQDB_RETURN_IF_ERROR(coll->Upsert(ids, view.floats));
    }
    call.set_items(ids.size());
    resp->set_upserted(ids.size());
    return absl::OkStatus();
  });
}

grpc::Status VectorsService::Delete(grpc::ServerContext* ctx, const pb::DeleteRequest* req,
                                    pb::DeleteResponse* resp) {
  Call call(ctx, *auth_, "Vectors/Delete", req->collection());
  return call.Run([&]() -> absl::Status {
    TQDB_ASSIGN_OR_RETURN(auto coll, store_->GetEmbeddingCollection(req->collection()));
    const absl::Span<const uint64_t> ids(req->ids().data(), req->ids_size());
    TQDB_ASSIGN_OR_RETURN(size_t deleted, coll->Delete(ids));
    call.set_items(ids.size());
    resp->set_deleted(deleted);
    return absl::OkStatus();
  });
}

grpc::Status VectorsService::Get(grpc::ServerContext* ctx, const pb::GetRequest* req,
                                 pb::GetResponse* resp) {
  Call call(ctx, *auth_, "Vectors/Get", req->collection());
  return call.Run([&]() -> absl::Status {
    TQDB_ASSIGN_OR_RETURN(auto coll, store_->GetEmbeddingCollection(req->collection()));
    const absl::Span<const uint64_t> ids(req->ids().data(), req->ids_size());
    std::vector<float> vectors;
    std::vector<bool> found;
    TQDB_RETURN_IF_ERROR(coll->Get(ids, &vectors, &found));
    for (bool f : found) resp->add_found(f);
    FillTensor(vectors, {static_cast<int64_t>(ids.size()), coll->config().dim}, req->packed(),
               resp->mutable_vectors());
    call.set_items(ids.size());
    return absl::OkStatus();
  });
}

grpc::Status VectorsService::Search(grpc::ServerContext* ctx, const pb::SearchRequest* req,
                                    pb::SearchResponse* resp) {
  Call call(ctx, *auth_, "Vectors/Search", req->collection());
  return call.Run([&]() -> absl::Status {
    TQDB_ASSIGN_OR_RETURN(auto coll, store_->GetEmbeddingCollection(req->collection()));
    TQDB_ASSIGN_OR_RETURN(storage::EmbeddingSearchOptions options,
                          SearchOptions(req->k(), req->oversample()));
    TQDB_ASSIGN_OR_RETURN(TensorView view, ViewTensor(req->query(), "query"));
    const std::array<Dim, 1> shape = {Dim{"dim", coll->config().dim}};
    TQDB_RETURN_IF_ERROR(CheckShape(view, "query", shape).status());
    TQDB_ASSIGN_OR_RETURN(std::vector<float> query, ToFloats(view, "query"));
    std::vector<int64_t> labels;
    std::vector<float> distances;
    TQDB_RETURN_IF_ERROR(coll->Search(query, options, &labels, &distances));
    AddHits(labels.data(), distances.data(), options.k, resp->mutable_hits());
    call.set_items(1);
    return absl::OkStatus();
  });
}

grpc::Status VectorsService::SearchBatch(grpc::ServerContext* ctx,
                                         const pb::SearchBatchRequest* req,
                                         pb::SearchBatchResponse* resp) {
  Call call(ctx, *auth_, "Vectors/SearchBatch", req->collection());
  return call.Run([&]() -> absl::Status {
    TQDB_ASSIGN_OR_RETURN(auto coll, store_->GetEmbeddingCollection(req->collection()));
    TQDB_ASSIGN_OR_RETURN(storage::EmbeddingSearchOptions options,
                          SearchOptions(req->k(), req->oversample()));
    TQDB_ASSIGN_OR_RETURN(TensorView view, ViewTensor(req->queries(), "queries"));
    const int64_t dim = coll->config().dim;
    const std::array<Dim, 2> shape = {Dim{"nq", -1}, Dim{"dim", dim}};
    TQDB_ASSIGN_OR_RETURN(int64_t nq, CheckShape(view, "queries", shape));
    TQDB_ASSIGN_OR_RETURN(std::vector<float> queries, ToFloats(view, "queries"));
    std::vector<int64_t> labels;
    std::vector<float> distances;
    for (int64_t q0 = 0; q0 < nq; q0 += kQueriesPerSlice) {
      TQDB_RETURN_IF_ERROR(call.CheckCancelled());
      const int64_t n = std::min(kQueriesPerSlice, nq - q0);
      const absl::Span<const float> slice(queries.data() + q0 * dim, n * dim);
      TQDB_RETURN_IF_ERROR(coll->Search(slice, options, &labels, &distances));
      for (int64_t i = 0; i < n; ++i) {
        AddHits(labels.data() + i * options.k, distances.data() + i * options.k, options.k,
                resp->add_results()->mutable_hits());
      }
    }
    call.set_items(static_cast<uint64_t>(nq));
    return absl::OkStatus();
  });
}

}  // namespace tqdb::server::internal
