// tqdb.v1.Kv over the KV collections of a storage::Store: request tensors to
// KvTokens and queries, results to response tensors. Long calls check for
// cancellation between units of work (AppendStream: between messages; Read:
// between chunks; Score and Attend: before the store call and between the
// slices of its scan, through Call::Cancelled).
//
// Score is served through gRPC's callback API with raw messages, so its
// megabytes of logits go out without protobuf copies (ResultWriter): the
// handler parses the request, schedules the scan on the service's Workers
// and returns; the worker finishes the call. The other methods are sync.
//
// Thread-safety: the handlers run concurrently (the Store is thread-safe).
#ifndef TQDB_SERVER_INTERNAL_KV_SERVICE_H_
#define TQDB_SERVER_INTERNAL_KV_SERVICE_H_

#include "server/internal/auth.h"
#include "server/internal/call.h"
#include "server/internal/workers.h"
#include "storage/store.h"
#include "tqdb/v1/tqdb.grpc.pb.h"

namespace tqdb::server::internal {

class KvService final : public tqdb::v1::Kv::WithRawCallbackMethod_Score<tqdb::v1::Kv::Service> {
 public:
  // `store` and `auth` must outlive the service, and the gRPC server must be
  // shut down before the service is destroyed (its workers finish calls).
  KvService(storage::Store* store, const TokenAuth* auth);

  grpc::Status CreateSequence(grpc::ServerContext* ctx, const tqdb::v1::CreateSequenceRequest* req,
                              tqdb::v1::CreateSequenceResponse* resp) override;
  grpc::Status Append(grpc::ServerContext* ctx, const tqdb::v1::AppendRequest* req,
                      tqdb::v1::AppendResponse* resp) override;
  grpc::Status AppendStream(grpc::ServerContext* ctx,
                            grpc::ServerReader<tqdb::v1::AppendRequest>* reader,
                            tqdb::v1::AppendResponse* resp) override;
  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                  grpc::ByteBuffer* resp) override;
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
  // Score's work, on a worker: `req` is the serialized ScoreRequest.
  grpc::Status ScoreNow(Call& call, const grpc::ByteBuffer& req, grpc::ByteBuffer* resp);

  storage::Store* store_;
  const TokenAuth* auth_;
  Workers workers_;
};

}  // namespace tqdb::server::internal

#endif  // TQDB_SERVER_INTERNAL_KV_SERVICE_H_
