// Workers: threads that run the handlers of methods served through gRPC's
// callback API, so a scan never runs on (and never blocks) gRPC's own
// callback threads. A handler schedules its work here and returns its
// reactor; the work finishes the reactor from a worker.
//
// Thread-safety: Schedule may be called from any thread.
#ifndef TQDB_SERVER_INTERNAL_WORKERS_H_
#define TQDB_SERVER_INTERNAL_WORKERS_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace tqdb::server::internal {

class Workers {
 public:
  explicit Workers(int threads);
  ~Workers();  // runs the work already scheduled, then joins the threads
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  // Runs `work` on a worker, in the order scheduled (first come, first
  // started).
  void Schedule(std::function<void()> work);

 private:
  void Main();

  // std::mutex, not absl::Mutex: Debian's abseil is not built for TSan.
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace tqdb::server::internal

#endif  // TQDB_SERVER_INTERNAL_WORKERS_H_
