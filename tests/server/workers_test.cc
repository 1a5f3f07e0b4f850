// server/internal/workers.h: every scheduled piece of work runs exactly
// once, on the workers (never on the scheduling thread), from any number of
// scheduling threads at once, and the destructor runs what is still queued.
#include "server/internal/workers.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace tqdb::server::internal {
namespace {

TEST(WorkersTest, RunsEachPieceOnceOffTheSchedulingThreads) {
  constexpr int kSchedulers = 4, kEach = 500;
  std::vector<std::atomic<int>> runs(kSchedulers * kEach);
  std::atomic<int> on_scheduler{0};
  {
    Workers workers(3);
    std::vector<std::thread> schedulers;
    for (int s = 0; s < kSchedulers; ++s) {
      schedulers.emplace_back([&, s] {
        const std::thread::id me = std::this_thread::get_id();
        for (int i = 0; i < kEach; ++i) {
          workers.Schedule([&, me, k = s * kEach + i] {
            if (std::this_thread::get_id() == me) on_scheduler.fetch_add(1);
            runs[k].fetch_add(1);
          });
        }
      });
    }
    for (std::thread& t : schedulers) t.join();
  }  // the destructor runs what is left
  for (size_t k = 0; k < runs.size(); ++k) ASSERT_EQ(runs[k].load(), 1) << k;
  EXPECT_EQ(on_scheduler.load(), 0);
}

TEST(WorkersTest, DestructorRunsQueuedWorkBeforeJoining) {
  std::atomic<int> ran{0};
  std::atomic<bool> release{false};
  {
    Workers workers(1);
    // The one worker is held, so the next pieces are still queued when the
    // destructor starts.
    workers.Schedule([&] {
      while (!release.load()) std::this_thread::yield();
      ran.fetch_add(1);
    });
    for (int i = 0; i < 10; ++i) workers.Schedule([&] { ran.fetch_add(1); });
    release.store(true);
  }
  EXPECT_EQ(ran.load(), 11);
}

}  // namespace
}  // namespace tqdb::server::internal
