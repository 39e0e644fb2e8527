// A persistent pool of worker threads for data-parallel loops (matmul rows, attention heads).
// Workers are created once and live as long as the pool; between jobs they spin briefly (a decode step
// issues hundreds of small jobs per token, and waking a sleeping thread costs more than most of them take),
// then sleep on a condition variable. The calling thread takes part in every job as thread 0.
// A job's range is cut into units (up to 64 per thread), and each thread starts with a contiguous run of
// them that it claims one at a time from the front, so that it streams through memory in order (a decode
// step's matrix-vector products are bound by how well the prefetchers follow that stream). A thread whose
// run is empty takes units from the back of another's; when the machine is busy and a worker is descheduled,
// the others take its share instead of waiting for it, and at the end of a job no thread waits for more than
// one unit of another's.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <type_traits>
#include <mutex>
#include <thread>
#include <vector>

namespace tern {

// Physical cores of this machine: distinct (package, core_id) pairs under /sys/devices/system/cpu, or
// std::thread::hardware_concurrency() where sysfs is unavailable; at least 1.
int physical_core_count();

class ThreadPool {
 public:
  // n_threads <= 0 means physical_core_count(). The pool starts n_threads - 1 workers.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Splits [0, n) into contiguous chunks (at most 64 per thread) and calls fn(begin, end, thread_id) for
  // each, thread_id in [0, size()), each chunk exactly once; returns when all are done. One thread may run
  // several chunks, one after another. fn must not call parallel_for on the same pool.
  // fn is passed by reference through a plain function pointer (no std::function): a call allocates nothing.
  template <class F>
  void parallel_for(int64_t n, F&& fn) {
    using Fd = std::remove_reference_t<F>;
    run(n, [](void* ctx, int64_t b, int64_t e, int tid) { (*static_cast<Fd*>(ctx))(b, e, tid); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

  using RawFn = void (*)(void* ctx, int64_t begin, int64_t end, int thread_id);
  void run(int64_t n, RawFn fn, void* ctx);

 private:
  void worker_main(int id);
  void work(int id);
  bool claim(int id, int64_t& unit);  // the front of id's own run, else the back of another's

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};  // bumped once per job; workers wait for it to change
  // Each thread's run of unclaimed units, (end << 32) | begin, on a cache line of its own: its owner claims
  // from the front, others from the back.
  struct alignas(64) Run {
    std::atomic<uint64_t> range{0};
  };
  std::vector<Run> runs_;
  std::atomic<int64_t> done_{0};  // units of the current job finished
  std::atomic<bool> stop_{false};
  uint64_t job_ = 0;                     // the caller's generation counter
  // The current job; stable while any of its chunks is outstanding.
  RawFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  int64_t n_units_ = 0;
};

}  // namespace tern
