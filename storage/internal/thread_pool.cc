#include "storage/internal/thread_pool.h"

namespace tqdb::storage::internal {

ThreadPool::ThreadPool(int threads) {
  for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { WorkerMain(); });
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::Loop::Work() {
  for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
    (*body)(i);
    if (done.fetch_add(1) + 1 == n) {
      absl::MutexLock lock(&mu);  // wakes the caller waiting on `done`
    }
  }
}

void ThreadPool::WorkerMain() {
  for (;;) {
    std::shared_ptr<Loop> loop;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](ThreadPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
            return p->stopping_ || !p->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping, nothing left
      loop = queue_.front();
      queue_.pop_front();
    }
    loop->Work();
  }
}

void ThreadPool::ParallelFor(size_t n, const std::function<void(size_t)>& body) {
  if (n == 0) return;
  auto loop = std::make_shared<Loop>();
  loop->body = &body;
  loop->n = n;
  const size_t helpers = std::min(workers_.size(), n - 1);
  if (helpers > 0) {
    absl::MutexLock lock(&mu_);
    for (size_t h = 0; h < helpers; ++h) queue_.push_back(loop);
  }
  loop->Work();
  absl::MutexLock lock(&loop->mu);
  loop->mu.Await(absl::Condition(
      +[](Loop* l) { return l->done.load() == l->n; }, loop.get()));
}

}  // namespace tqdb::storage::internal
