// ThreadPool::ParallelFor runs every index exactly once, whatever the loop's
// size against the grain it claims at a time, with loops from several callers
// at once.
#include "storage/internal/thread_pool.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace tqdb::storage::internal {
namespace {

TEST(ThreadPoolTest, EveryIndexRunsExactlyOnce) {
  for (int workers : {0, 1, 3}) {
    ThreadPool pool(workers);
    for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{63}, size_t{64}, size_t{1000}}) {
      std::vector<std::atomic<int>> runs(n);
      pool.ParallelFor(n, [&](size_t i) { runs[i].fetch_add(1); });
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(runs[i].load(), 1) << "workers " << workers << ", n " << n << ", index " << i;
      }
    }
  }
}

TEST(ThreadPoolTest, ConcurrentCallersShareTheWorkers) {
  ThreadPool pool(1);
  constexpr int kCallers = 4;
  constexpr size_t kN = 257;
  std::vector<std::vector<std::atomic<int>>> runs(kCallers);
  for (auto& r : runs) r = std::vector<std::atomic<int>>(kN);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int rep = 0; rep < 20; ++rep) {
        pool.ParallelFor(kN, [&](size_t i) { runs[c][i].fetch_add(1); });
      }
    });
  }
  for (std::thread& t : callers) t.join();
  for (int c = 0; c < kCallers; ++c) {
    for (size_t i = 0; i < kN; ++i) ASSERT_EQ(runs[c][i].load(), 20) << c << " " << i;
  }
}

}  // namespace
}  // namespace tqdb::storage::internal
