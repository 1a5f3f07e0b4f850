// A fixed pool of worker threads for fork-join loops inside one query
// (Score and Attend over the KV heads of a layer, segment rebuilds).
//
// Thread-safety: ParallelFor may be called from many threads at once; their
// loops share the workers. The caller always works on its own loop too, so a
// loop finishes even when every worker is busy elsewhere.
#ifndef TQDB_STORAGE_INTERNAL_THREAD_POOL_H_
#define TQDB_STORAGE_INTERNAL_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace tqdb::storage::internal {

class ThreadPool {
 public:
  // `threads` workers besides the callers (0: none, loops run inline).
  explicit ThreadPool(int threads);
  ~ThreadPool();  // finishes queued work, joins the workers
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Runs body(i) for every i in [0, n) and returns when all have run.
  void ParallelFor(size_t n, const std::function<void(size_t)>& body);

 private:
  struct Loop {
    const std::function<void(size_t)>* body;
    size_t n;
    // Iterations are claimed `grain` at a time: one atomic add per iteration
    // made the shared counter's cache line, bouncing between cores, the cost
    // of loops of many small bodies (an append's 256 families).
    size_t grain;
    alignas(64) std::atomic<size_t> next{0};
    alignas(64) size_t done ABSL_GUARDED_BY(mu) = 0;  // with mu, off next's line
    std::mutex mu;
    std::condition_variable finished;
    // Runs iterations until none is left.
    void Work();
  };
  void WorkerMain();

  // std::mutex, not absl::Mutex: Debian's abseil is not built for TSan, which
  // would not see its synchronization.
  std::mutex mu_;
  std::condition_variable work_;
  std::deque<std::shared_ptr<Loop>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace tqdb::storage::internal

#endif  // TQDB_STORAGE_INTERNAL_THREAD_POOL_H_
