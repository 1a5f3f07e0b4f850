// Server: the tqdb gRPC server over one data directory — the Collections, Kv
// and Vectors services (proto/tqdb/v1/tqdb.proto), grpc.health.v1.Health and
// server reflection, with optional bearer-token auth and TLS.
//
//   tqdb::server::ServerOptions options;
//   options.data_dir = "/var/lib/tqdb";
//   auto server = tqdb::server::Server::Start(options);
//   ... (*server)->port() ...
//   (*server)->Shutdown(std::chrono::seconds(10));
//
// gRPC never appears in this header: it lives in server/internal/.
//
// Thread-safety: Shutdown and Wait may be called from any thread, Shutdown
// more than once.
#ifndef TQDB_SERVER_SERVER_H_
#define TQDB_SERVER_SERVER_H_

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "storage/options.h"

namespace tqdb::server {

struct ServerOptions {
  // The store's directory (created if missing). Default: "./tqdb-data".
  std::string data_dir = "./tqdb-data";
  // host:port to listen on; port 0 picks a free port (see Server::port).
  // Default: "127.0.0.1:50051" (loopback only).
  std::string listen = "127.0.0.1:50051";
  // Largest message received or sent, in bytes; larger ones fail with
  // RESOURCE_EXHAUSTED. Default: 64 MiB.
  int max_message_bytes = 64 << 20;
  // Bearer token every call but health checks must carry ("authorization:
  // Bearer <token>"); empty: no authentication. Default: empty.
  std::string auth_token;
  // PEM certificate chain and private key for TLS; both empty: plaintext.
  // Default: empty.
  std::string tls_cert_pem;
  std::string tls_key_pem;
  // Options of the store. Default: StoreOptions's defaults.
  storage::StoreOptions store;
};

class Server {
 public:
  // Opens the store and starts serving. Errors: the store's (e.g.
  // FailedPrecondition if another process has the directory open);
  // InvalidArgument for bad options; Unavailable if the address cannot be
  // bound. Logs a warning when binding a non-loopback address without a
  // token.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);
  // Shuts down (with a 10 s grace) if not done yet.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (the chosen one when listening on port 0).
  int port() const;
  // The host of `listen` and the bound port, e.g. "127.0.0.1:41913"; for a
  // Unix socket, `listen` itself ("unix:/run/tqdb.sock").
  std::string address() const;

  // Graceful shutdown: health turns NOT_SERVING, new calls fail with
  // UNAVAILABLE, calls in flight get up to `grace` to finish (then are
  // cancelled), and the store closes. Idempotent.
  void Shutdown(std::chrono::milliseconds grace);
  // Blocks until the server has shut down.
  void Wait();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tqdb::server

#endif  // TQDB_SERVER_SERVER_H_
