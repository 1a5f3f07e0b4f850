// tqdb.v1.Collections over a storage::Store: proto configurations to store
// configurations and back, stats. No storage logic.
//
// Thread-safety: the handlers run concurrently (the Store is thread-safe).
#ifndef TQDB_SERVER_INTERNAL_COLLECTIONS_SERVICE_H_
#define TQDB_SERVER_INTERNAL_COLLECTIONS_SERVICE_H_

#include <string>

#include "absl/status/status.h"
#include "server/internal/auth.h"
#include "storage/store.h"
#include "tqdb/v1/tqdb.grpc.pb.h"

namespace tqdb::server::internal {

class CollectionsService final : public tqdb::v1::Collections::Service {
 public:
  // `store` and `auth` must outlive the service.
  CollectionsService(storage::Store* store, const TokenAuth* auth) : store_(store), auth_(auth) {}

  grpc::Status CreateCollection(grpc::ServerContext* ctx,
                                const tqdb::v1::CreateCollectionRequest* req,
                                tqdb::v1::CreateCollectionResponse* resp) override;
  grpc::Status DropCollection(grpc::ServerContext* ctx, const tqdb::v1::DropCollectionRequest* req,
                              tqdb::v1::DropCollectionResponse* resp) override;
  grpc::Status ListCollections(grpc::ServerContext* ctx,
                               const tqdb::v1::ListCollectionsRequest* req,
                               tqdb::v1::ListCollectionsResponse* resp) override;
  grpc::Status DescribeCollection(grpc::ServerContext* ctx,
                                  const tqdb::v1::DescribeCollectionRequest* req,
                                  tqdb::v1::DescribeCollectionResponse* resp) override;

 private:
  // Fills `out` with the configuration and stats of collection `name`.
  absl::Status Describe(const std::string& name, tqdb::v1::CollectionDescription* out);

  storage::Store* store_;
  const TokenAuth* auth_;
};

}  // namespace tqdb::server::internal

#endif  // TQDB_SERVER_INTERNAL_COLLECTIONS_SERVICE_H_
