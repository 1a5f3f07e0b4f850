#include "server/internal/auth.h"

#include <grpc/grpc.h>
#include <grpcpp/server_context.h>

#include "absl/strings/match.h"

namespace tqdb::server::internal {
namespace {

constexpr absl::string_view kBearer = "Bearer ";

// Equality in time that depends on the lengths only.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

class AuthInterceptor : public grpc::experimental::Interceptor {
 public:
  AuthInterceptor(grpc::experimental::ServerRpcInfo* info, const TokenAuth* auth)
      : info_(info), auth_(auth) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      const auto* metadata = methods->GetRecvInitialMetadata();
      if (metadata != nullptr && !auth_->Check(*metadata)) {
        // Ends the call for the client now; the handler (reflection) then
        // sees a cancelled call. tqdb handlers check the token themselves.
        grpc_call_cancel_with_status(info_->server_context()->c_call(),
                                     GRPC_STATUS_UNAUTHENTICATED,
                                     "missing or wrong bearer token", nullptr);
      }
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* info_;
  const TokenAuth* auth_;
};

class AuthInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit AuthInterceptorFactory(const TokenAuth* auth) : auth_(auth) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    if (!auth_->enabled() || IsExemptMethod(info->method())) return nullptr;
    return new AuthInterceptor(info, auth_);
  }

 private:
  const TokenAuth* auth_;
};

}  // namespace

bool TokenAuth::Check(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const {
  if (token_.empty()) return true;
  bool ok = false;
  auto [begin, end] = metadata.equal_range("authorization");
  for (auto it = begin; it != end; ++it) {
    absl::string_view value(it->second.data(), it->second.size());
    if (value.size() > kBearer.size() && absl::StartsWithIgnoreCase(value, kBearer)) {
      ok |= ConstantTimeEquals(value.substr(kBearer.size()), token_);
    }
  }
  return ok;
}

bool IsExemptMethod(absl::string_view method) {
  return absl::StartsWith(method, "/grpc.health.v1.Health/");
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeAuthInterceptorFactory(
    const TokenAuth* auth) {
  return std::make_unique<AuthInterceptorFactory>(auth);
}

}  // namespace tqdb::server::internal
