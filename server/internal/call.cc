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

Call::Call(grpc::ServerContextBase* ctx, const TokenAuth& auth, absl::string_view method,
           absl::string_view collection)
    : ctx_(ctx),
      auth_(auth),
      method_(method),
      collection_(std::string(collection)),
      start_(std::chrono::steady_clock::now()) {}

absl::Status Call::CheckCancelled() const {
  if (std::chrono::system_clock::now() >= ctx_->deadline()) {
    return absl::DeadlineExceededError("deadline exceeded");
  }
  if (!cancelled_.load(std::memory_order_relaxed) && !ctx_->IsCancelled()) {
    return absl::OkStatus();
  }
  return absl::CancelledError("call cancelled by the client");
}

std::function<bool()> Call::Cancelled() {
  const auto first_poll = std::chrono::steady_clock::now() + kCancelPoll;
  next_cancel_poll_.store(first_poll.time_since_epoch().count(), std::memory_order_relaxed);
  return [this, deadline = ctx_->deadline()] {
    if (cancelled_.load(std::memory_order_relaxed)) return true;
    if (std::chrono::system_clock::now() >= deadline) return true;
    const auto now = std::chrono::steady_clock::now();
    int64_t due = next_cancel_poll_.load(std::memory_order_relaxed);
    // One thread polls per interval: the one that moves the next poll on.
    if (now.time_since_epoch().count() < due ||
        !next_cancel_poll_.compare_exchange_strong(
            due, (now + kCancelPoll).time_since_epoch().count(), std::memory_order_relaxed)) {
      return false;
    }
    if (!ctx_->IsCancelled()) return false;
    cancelled_.store(true, std::memory_order_relaxed);
    return true;
  };
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
