// tqdb.v1.Vectors over the embedding collections of a storage::Store:
// request tensors to store vectors and queries, results to responses.
// SearchBatch searches in slices of queries and checks for cancellation
// between them.
//
// Thread-safety: the handlers run concurrently (the Store is thread-safe).
#ifndef TQDB_SERVER_INTERNAL_VECTORS_SERVICE_H_
#define TQDB_SERVER_INTERNAL_VECTORS_SERVICE_H_

#include "server/internal/auth.h"
#include "storage/store.h"
#include "tqdb/v1/tqdb.grpc.pb.h"

namespace tqdb::server::internal {

class VectorsService final : public tqdb::v1::Vectors::Service {
 public:
  // `store` and `auth` must outlive the service.
  VectorsService(storage::Store* store, const TokenAuth* auth) : store_(store), auth_(auth) {}

  grpc::Status Upsert(grpc::ServerContext* ctx, const tqdb::v1::UpsertRequest* req,
                      tqdb::v1::UpsertResponse* resp) override;
  grpc::Status Delete(grpc::ServerContext* ctx, const tqdb::v1::DeleteRequest* req,
                      tqdb::v1::DeleteResponse* resp) override;
  grpc::Status Get(grpc::ServerContext* ctx, const tqdb::v1::GetRequest* req,
                   tqdb::v1::GetResponse* resp) override;
  grpc::Status Search(grpc::ServerContext* ctx, const tqdb::v1::SearchRequest* req,
                      tqdb::v1::SearchResponse* resp) override;
  grpc::Status SearchBatch(grpc::ServerContext* ctx, const tqdb::v1::SearchBatchRequest* req,
                           tqdb::v1::SearchBatchResponse* resp) override;

 private:
  storage::Store* store_;
  const TokenAuth* auth_;
};

}  // namespace tqdb::server::internal

#endif  // TQDB_SERVER_INTERNAL_VECTORS_SERVICE_H_
