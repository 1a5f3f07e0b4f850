// Bearer-token authentication of calls.
//
// A server started with a token accepts a call only if its metadata holds
// "authorization: Bearer <token>". Two layers enforce it:
//   - every tqdb handler checks the token itself (Call, call.h) before
//     touching the store, so an unauthenticated call never changes anything;
//   - a server interceptor fails every other unauthenticated call (server
//     reflection) with UNAUTHENTICATED, since gRPC C++ interceptors cannot
//     stop a handler from running but can end the call with a status.
// grpc.health.v1.Health is exempt: load balancers probe it without tokens.
//
// Thread-safety: TokenAuth is immutable after construction.
#ifndef TQDB_SERVER_INTERNAL_AUTH_H_
#define TQDB_SERVER_INTERNAL_AUTH_H_

#include <map>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"

#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/string_ref.h>

namespace tqdb::server::internal {

class TokenAuth {
 public:
  // An empty token disables authentication.
  explicit TokenAuth(std::string token) : token_(std::move(token)) {}

  bool enabled() const { return !token_.empty(); }
  // Whether `metadata` (a call's initial metadata) authenticates the call:
  // always when disabled. Compares in time independent of where the token
  // differs.
  bool Check(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const;

 private:
  std::string token_;
};

// Whether a fully qualified method ("/pkg.Service/Method") is exempt.
bool IsExemptMethod(absl::string_view method);

// The interceptor factory described above; `auth` must outlive the server.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeAuthInterceptorFactory(
    const TokenAuth* auth);

}  // namespace tqdb::server::internal

#endif  // TQDB_SERVER_INTERNAL_AUTH_H_
