// grpc.health.v1.Health: SERVING for the server as a whole ("") and for each
// tqdb service while the server runs, NOT_SERVING once it shuts down. Watch
// streams end (after sending NOT_SERVING) when Shutdown is called, so they
// never hold up a graceful shutdown. No authentication (probes have none).
//
// Thread-safety: every method may be called concurrently.
#ifndef TQDB_SERVER_INTERNAL_HEALTH_SERVICE_H_
#define TQDB_SERVER_INTERNAL_HEALTH_SERVICE_H_

#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace tqdb::server::internal {

class HealthService final : public grpc::health::v1::Health::Service {
 public:
  // `services`: the fully qualified names Check knows besides "".
  explicit HealthService(std::set<std::string> services) : services_(std::move(services)) {}

  grpc::Status Check(grpc::ServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req,
                     grpc::health::v1::HealthCheckResponse* resp) override;
  grpc::Status Watch(grpc::ServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req,
                     grpc::ServerWriter<grpc::health::v1::HealthCheckResponse>* writer) override;

  // Every status becomes NOT_SERVING; Watch calls return.
  void Shutdown();

 private:
  const std::set<std::string> services_;
  absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tqdb::server::internal

#endif  // TQDB_SERVER_INTERNAL_HEALTH_SERVICE_H_
