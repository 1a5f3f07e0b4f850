#include "server/internal/call.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace tqdb::server::internal {
namespace {

// logfmt value: quoted, with quotes, backslashes and control characters
// escaped.
std::string Quote(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

Call::Call(grpc::ServerContext* ctx, const TokenAuth& auth, absl::string_view method,
           absl::string_view collection)
    : ctx_(ctx),
      auth_(auth),
      method_(method),
      collection_(std::string(collection)),
      start_(std::chrono::steady_clock::now()) {}

absl::Status Call::CheckCancelled() const {
  if (!ctx_->IsCancelled()) return absl::OkStatus();
  if (std::chrono::system_clock::now() >= ctx_->deadline()) {
    return absl::DeadlineExceededError("deadline exceeded");
  }
  return absl::CancelledError("call cancelled by the client");
}

bool Call::Authenticated() const { return auth_.Check(ctx_->client_metadata()); }

absl::Status Call::Unauthenticated() {
  return absl::UnauthenticatedError("missing or wrong bearer token");
}

grpc::Status Call::Finish(const absl::Status& status) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - start_)
                      .count();
  std::string line = absl::StrCat("call method=", method_, " collection=", Quote(collection_),
                                  " items=", items_, " latency_us=", us,
                                  " code=", absl::StatusCodeToString(status.code()));
  if (!status.ok()) absl::StrAppend(&line, " msg=", Quote(status.message()));
  line += '\n';
  // One write(2) per line, so concurrent calls' lines do not interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
  return ToGrpcStatus(status);
}

}  // namespace tqdb::server::internal
