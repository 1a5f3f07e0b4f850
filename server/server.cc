#include "server/server.h"

#include <cstdio>
#include <set>
#include <utility>
#include <vector>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "server/internal/auth.h"
#include "server/internal/collections_service.h"
#include "server/internal/health_service.h"
#include "server/internal/kv_service.h"
#include "server/internal/vectors_service.h"
#include "storage/store.h"

namespace tqdb::server {
namespace {

// The host part of a listen address ("[::1]:50051" -> "[::1]"); a Unix
// socket ("unix:PATH") is its own host and has no port.
std::string HostOf(const std::string& listen) {
  if (absl::StartsWith(listen, "unix:")) return listen;
  const size_t colon = listen.rfind(':');
  return colon == std::string::npos ? listen : listen.substr(0, colon);
}

bool IsLoopback(const std::string& host) {
  return absl::StartsWith(host, "127.") || host == "localhost" || host == "[::1]" ||
         host == "::1" || absl::StartsWith(host, "unix:");
}

}  // namespace

struct Server::Impl {
  // Declaration order is destruction order in reverse: the gRPC server goes
  // first, then the services, then the store.
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<internal::TokenAuth> auth;
  std::unique_ptr<internal::CollectionsService> collections;
  std::unique_ptr<internal::KvService> kv;
  std::unique_ptr<internal::VectorsService> vectors;
  std::unique_ptr<internal::HealthService> health;
  std::unique_ptr<grpc::Server> grpc_server;
  std::string host;
  int port = 0;

  absl::Mutex mu;
  bool shut_down ABSL_GUARDED_BY(mu) = false;
};

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  if (options.max_message_bytes <= 0) {
    return absl::InvalidArgumentError("max message size must be positive");
  }
  if (options.tls_cert_pem.empty() != options.tls_key_pem.empty()) {
    return absl::InvalidArgumentError("TLS needs both a certificate and a key");
  }
  auto impl = std::make_unique<Impl>();
  impl->host = HostOf(options.listen);
  TQDB_ASSIGN_OR_RETURN(impl->store, storage::Store::Open(options.store, options.data_dir));
  impl->auth = std::make_unique<internal::TokenAuth>(options.auth_token);
  impl->collections =
      std::make_unique<internal::CollectionsService>(impl->store.get(), impl->auth.get());
  impl->kv = std::make_unique<internal::KvService>(impl->store.get(), impl->auth.get());
  impl->vectors = std::make_unique<internal::VectorsService>(impl->store.get(), impl->auth.get());
  impl->health = std::make_unique<internal::HealthService>(std::set<std::string>{
      "tqdb.v1.Collections", "tqdb.v1.Kv", "tqdb.v1.Vectors"});

  if (!IsLoopback(impl->host) && !impl->auth->enabled()) {
    std::fprintf(stderr,
                 "warning: listening on non-loopback address %s without an auth token: "
                 "anyone who can reach it can read and change the store\n",
                 options.listen.c_str());
  }

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (!options.tls_cert_pem.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({options.tls_key_pem, options.tls_cert_pem});
    creds = grpc::SslServerCredentials(ssl);
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  builder.AddListeningPort(options.listen, creds, &impl->port);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  // The sync server's thread manager ends a handler thread that finds more
  // than MAX_POLLERS others polling, and starts one when fewer than
  // MIN_POLLERS are: at the defaults (1 and 2), one client calling back to
  // back made it start and end about a hundred threads a second, each with a
  // new stack and malloc arena whose pages faulted in again.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 8);
  builder.RegisterService(impl->collections.get());
  builder.RegisterService(impl->kv.get());
  builder.RegisterService(impl->vectors.get());
  builder.RegisterService(impl->health.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(internal::MakeAuthInterceptorFactory(impl->auth.get()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  impl->grpc_server = builder.BuildAndStart();
  if (impl->grpc_server == nullptr || impl->port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Shutdown(std::chrono::seconds(10)); }

int Server::port() const { return impl_->port; }

std::string Server::address() const {
  if (absl::StartsWith(impl_->host, "unix:")) return impl_->host;
  return absl::StrCat(impl_->host, ":", impl_->port);
}

void Server::Shutdown(std::chrono::milliseconds grace) {
  {
    absl::MutexLock lock(&impl_->mu);
    if (impl_->shut_down) return;
    impl_->shut_down = true;
  }
  impl_->health->Shutdown();
  impl_->grpc_server->Shutdown(std::chrono::system_clock::now() + grace);
  impl_->grpc_server->Wait();
  impl_->store.reset();
}

void Server::Wait() { impl_->grpc_server->Wait(); }

}  // namespace tqdb::server
