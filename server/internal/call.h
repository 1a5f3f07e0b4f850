// Call: what every tqdb handler does around its work — authentication, one
// structured log line, cancellation checks and the absl -> gRPC status
// mapping (a cast of the code: abseil's codes equal gRPC's).
//
//   grpc::Status KvService::Append(grpc::ServerContext* ctx, ...) {
//     Call call(ctx, *auth_, "Kv/Append", req->collection());
//     return call.Run([&]() -> absl::Status { ...; call.set_items(n); ... });
//   }
//
// The log line (stderr, logfmt, written with one write):
//   call method=Kv/Append collection=llama items=16 latency_us=412 code=OK
// plus msg="..." when the status is not OK.
//
// Thread-safety: a Call belongs to its handler's thread, except the function
// Cancelled() returns, which any thread may call while the Call lives.
#ifndef TQDB_SERVER_INTERNAL_CALL_H_
#define TQDB_SERVER_INTERNAL_CALL_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include "absl/strings/string_view.h"

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "server/internal/auth.h"

namespace tqdb::server::internal {

// The gRPC status of `status` (same code and message).
grpc::Status ToGrpcStatus(const absl::Status& status);

class Call {
 public:
  Call(grpc::ServerContextBase* ctx, const TokenAuth& auth, absl::string_view method,
       absl::string_view collection);
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  // Items the call handled (tokens, vectors, queries...), for the log line.
  void set_items(uint64_t items) { items_ = items; }
  void add_items(uint64_t items) { items_ += items; }
  void set_collection(absl::string_view collection) { collection_ = std::string(collection); }

  // OK, or Cancelled / DeadlineExceeded once the client gave up on the call:
  // long handlers check it between units of work.
  absl::Status CheckCancelled() const;

  // A test for the units of a long scan (KvScoreOptions::cancelled): true
  // once the call is past its deadline, compared with the clock on every
  // test, or the client cancelled it, which is asked of gRPC at most once per
  // kCancelPoll. The sync server's IsCancelled plucks the call's completion
  // queue under a lock: Score's 64 tests of it, from two threads, took
  // 0.5 ms of the call's 1.1.
  std::function<bool()> Cancelled();

  // Runs `work` (returning absl::Status) unless the call is not
  // authenticated (UNAUTHENTICATED), logs, and returns the gRPC status.
  template <typename Work>
  grpc::Status Run(Work&& work) {
    absl::Status status = Authenticated() ? work() : Unauthenticated();
    return Finish(status);
  }

 private:
  bool Authenticated() const;
  static absl::Status Unauthenticated();
  grpc::Status Finish(const absl::Status& status);

  grpc::ServerContextBase* ctx_;
  const TokenAuth& auth_;
  absl::string_view method_;
  std::string collection_;
  uint64_t items_ = 0;
  std::chrono::steady_clock::time_point start_;
  static constexpr std::chrono::microseconds kCancelPoll{250};
  std::atomic<int64_t> next_cancel_poll_{0};  // steady_clock ticks
  std::atomic<bool> cancelled_{false};
};

}  // namespace tqdb::server::internal

#endif  // TQDB_SERVER_INTERNAL_CALL_H_
