#include "server/internal/health_service.h"

#include "absl/time/time.h"

namespace tqdb::server::internal {
namespace {

using grpc::health::v1::HealthCheckResponse;

// How often a Watch notices its client went away (the server's shutdown
// wakes it at once).
constexpr absl::Duration kWatchPoll = absl::Milliseconds(500);

}  // namespace

grpc::Status HealthService::Check(grpc::ServerContext* /*ctx*/,
                                  const grpc::health::v1::HealthCheckRequest* req,
                                  HealthCheckResponse* resp) {
  if (!req->service().empty() && services_.count(req->service()) == 0) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service " + req->service());
  }
  absl::MutexLock lock(&mu_);
  resp->set_status(shutdown_ ? HealthCheckResponse::NOT_SERVING : HealthCheckResponse::SERVING);
  return grpc::Status::OK;
}

grpc::Status HealthService::Watch(grpc::ServerContext* ctx,
                                  const grpc::health::v1::HealthCheckRequest* req,
                                  grpc::ServerWriter<HealthCheckResponse>* writer) {
  HealthCheckResponse resp;
  if (!req->service().empty() && services_.count(req->service()) == 0) {
    resp.set_status(HealthCheckResponse::SERVICE_UNKNOWN);
    writer->Write(resp);
    // The protocol keeps the stream open: the service may appear later. Ours
    // never do, so wait for the end of the call or of the server.
  } else {
    bool down;
    {
      absl::MutexLock lock(&mu_);
      down = shutdown_;
    }
    resp.set_status(down ? HealthCheckResponse::NOT_SERVING : HealthCheckResponse::SERVING);
    if (!writer->Write(resp) || down) return grpc::Status::OK;
  }
  bool down;
  {
    absl::MutexLock lock(&mu_);
    while (!shutdown_ && !ctx->IsCancelled()) {
      mu_.AwaitWithTimeout(absl::Condition(&shutdown_), kWatchPoll);
    }
    down = shutdown_;
  }
  if (down && !ctx->IsCancelled()) {
    resp.set_status(HealthCheckResponse::NOT_SERVING);
    writer->Write(resp);
  }
  return grpc::Status::OK;
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
}

}  // namespace tqdb::server::internal
