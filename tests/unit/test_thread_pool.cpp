// ThreadPool: every index is visited exactly once, in non-empty contiguous chunks (at most 64 per thread), by
// thread ids in range; a held-up thread's share goes to the others; across
// many back-to-back jobs (the decode pattern) and with more threads than cores or than work items.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace {

using tern::ThreadPool;

TEST(ThreadPool, PhysicalCoreCountIsPositive) { EXPECT_GE(tern::physical_core_count(), 1); }

TEST(ThreadPool, DefaultSizeIsPhysicalCores) {
  ThreadPool pool;
  EXPECT_EQ(pool.size(), tern::physical_core_count());
}

TEST(ThreadPool, CoversEveryIndexOnceInChunks) {
  for (int threads : {1, 2, 3, 7}) {
    ThreadPool pool(threads);
    ASSERT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 5, 7, 100, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> bad_tid{0}, chunks{0};
      pool.parallel_for(n, [&](int64_t b, int64_t e, int tid) {
        if (tid < 0 || tid >= threads || b >= e) bad_tid.fetch_add(1);
        chunks.fetch_add(1);
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
      });
      EXPECT_LE(chunks.load(), std::max(1, 64 * threads));
      EXPECT_EQ(bad_tid.load(), 0);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n " << n << " i " << i;
    }
  }
}

// Each thread starts with its own contiguous run of the range; one that is held up loses the rest of its run to
// the others rather than making them wait for it.
TEST(ThreadPool, AHeldUpThreadsShareIsTakenByTheOthers) {
  ThreadPool pool(2);
  const int64_t n = 128;
  std::vector<int> owner(static_cast<size_t>(n), -1);
  std::atomic<bool> slept{false};
  pool.parallel_for(n, [&](int64_t b, int64_t e, int tid) {
    if (tid == 1 && !slept.exchange(true)) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (int64_t i = b; i < e; ++i) owner[static_cast<size_t>(i)] = tid;
  });
  int64_t by0 = 0;
  for (int o : owner) {
    ASSERT_GE(o, 0);
    by0 += o == 0;
  }
  // Thread 1's run is the second half; while it sleeps on its first chunk, thread 0 takes the rest of it.
  EXPECT_GT(by0, n * 3 / 4);
  // Thread 0 worked through its own run first, in order: the whole first half is its.
  for (int64_t i = 0; i < n / 2; ++i) EXPECT_EQ(owner[static_cast<size_t>(i)], 0) << i;
}

TEST(ThreadPool, ManyBackToBackJobs) {
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  for (int job = 0; job < 5000; ++job)
    pool.parallel_for(10, [&](int64_t b, int64_t e, int) { total.fetch_add(e - b); });
  EXPECT_EQ(total.load(), 50000);
}

}  // namespace
