// tqdb.v1.Kv over the KV collections of a storage::Store: request tensors to
// KvTokens and queries, results to response tensors. Long calls check for
// cancellation between units of work (AppendStream: between messages; Read:
// between chunks; Score and Attend: before the store call, which runs every
// head of the layer at once).
//
// Thread-safety: the handlers run concurrently (the Store is thread-safe).
#ifndef TQDB_SERVER_INTERNAL_KV_SERVICE_H_
#define TQDB_SERVER_INTERNAL_KV_SERVICE_H_

#include "server/internal/auth.h"
#include "storage/store.h"
#include "tqdb/v1/tqdb.grpc.pb.h"

namespace tqdb::server::internal {

class KvService final : public tqdb::v1::Kv::Service {
 public:
  // `store` and `auth` must outlive the service.
  KvService(storage::Store* store, const TokenAuth* auth) : store_(store), auth_(auth) {}

  grpc::Status CreateSequence(grpc::ServerContext* ctx, const tqdb::v1::CreateSequenceRequest* req,
                              tqdb::v1::CreateSequenceResponse* resp) override;
  grpc::Status Append(grpc::ServerContext* ctx, const tqdb::v1::AppendRequest* req,
                      tqdb::v1::AppendResponse* resp) override;
  grpc::Status AppendStream(grpc::ServerContext* ctx,
                            grpc::ServerReader<tqdb::v1::AppendRequest>* reader,
                            tqdb::v1::AppendResponse* resp) override;
  grpc::Status Score(grpc::ServerContext* ctx, const tqdb::v1::ScoreRequest* req,
                     tqdb::v1::ScoreResponse* resp) override;
  grpc::Status Attend(grpc::ServerContext* ctx, const tqdb::v1::AttendRequest* req,
                      tqdb::v1::AttendResponse* resp) override;
  grpc::Status Read(grpc::ServerContext* ctx, const tqdb::v1::ReadRequest* req,
                    grpc::ServerWriter<tqdb::v1::ReadChunk>* writer) override;
  grpc::Status Truncate(grpc::ServerContext* ctx, const tqdb::v1::TruncateRequest* req,
                        tqdb::v1::TruncateResponse* resp) override;
  grpc::Status DropSequence(grpc::ServerContext* ctx, const tqdb::v1::DropSequenceRequest* req,
                            tqdb::v1::DropSequenceResponse* resp) override;
  grpc::Status Fork(grpc::ServerContext* ctx, const tqdb::v1::ForkRequest* req,
                    tqdb::v1::ForkResponse* resp) override;
  grpc::Status GetSequence(grpc::ServerContext* ctx, const tqdb::v1::GetSequenceRequest* req,
                           tqdb::v1::GetSequenceResponse* resp) override;
  grpc::Status ListSequences(grpc::ServerContext* ctx, const tqdb::v1::ListSequencesRequest* req,
                             tqdb::v1::ListSequencesResponse* resp) override;

 private:
  storage::Store* store_;
  const TokenAuth* auth_;
};

}  // namespace tqdb::server::internal

#endif  // TQDB_SERVER_INTERNAL_KV_SERVICE_H_
