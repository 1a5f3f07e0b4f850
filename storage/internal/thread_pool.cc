#include "storage/internal/thread_pool.h"

#include <algorithm>

namespace tqdb::storage::internal {

ThreadPool::ThreadPool(int threads) {
  for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { WorkerMain(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::Loop::Work() {
  size_t ran = 0;
  for (size_t i = next.fetch_add(grain); i < n; i = next.fetch_add(grain)) {
    const size_t end = std::min(n, i + grain);
    for (size_t j = i; j < end; ++j) (*body)(j);
    ran += end - i;
  }
  if (ran == 0) return;
  std::lock_guard<std::mutex> lock(mu);
  done += ran;
  if (done == n) finished.notify_all();
}

void ThreadPool::WorkerMain() {
  for (;;) {
    std::shared_ptr<Loop> loop;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      loop = std::move(queue_.front());
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
  // About 8 claims per thread: few atomics, and the threads still finish
  // together when bodies take unequal time.
  loop->grain = std::max<size_t>(1, n / (8 * (helpers + 1)));
  if (helpers > 0) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t h = 0; h < helpers; ++h) queue_.push_back(loop);
    }
    work_.notify_all();
  }
  loop->Work();
  std::unique_lock<std::mutex> lock(loop->mu);
  loop->finished.wait(lock, [&] { return loop->done == n; });
}

}  // namespace tqdb::storage::internal
