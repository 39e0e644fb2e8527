#include "core/thread_pool.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace tern {

namespace {

bool read_int(const std::string& path, int* out) {
  std::ifstream f(path);
  return static_cast<bool>(f >> *out);
}

// Pause hint for spin loops (keeps the sibling hyperthread fed and saves power).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

constexpr int64_t kUnitsPerThread = 64;  // claims per thread when n allows: the tail a thread may wait for
constexpr int kSpinIterations = 1 << 14;  // ~tens of microseconds before sleeping
constexpr int kPureSpin = 1 << 10;        // after this many pauses, spin with sched_yield instead

// One step of a spin-wait: pause first, then yield, so that with more runnable threads than cores (another
// process compiling, or more threads than cores) the thread holding the work gets the core back.
inline void spin_step(int i) {
  if (i < kPureSpin) cpu_relax();
  else std::this_thread::yield();
}

}  // namespace

int physical_core_count() {
  std::set<std::pair<int, int>> cores;
  for (int cpu = 0;; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    int core = 0, package = 0;
    if (!read_int(base + "core_id", &core)) break;
    if (!read_int(base + "physical_package_id", &package)) package = 0;
    cores.insert({package, core});
  }
  if (!cores.empty()) return static_cast<int>(cores.size());
  const unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? static_cast<int>(hc) : 1;
}

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(n_threads > 0 ? n_threads : physical_core_count()), runs_(static_cast<size_t>(n_threads_)) {
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.store(++job_);
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

bool ThreadPool::claim(int id, int64_t& unit) {
  for (int k = 0; k < n_threads_; ++k) {
    const int v = (id + k) % n_threads_;
    std::atomic<uint64_t>& r = runs_[static_cast<size_t>(v)].range;
    uint64_t cur = r.load(std::memory_order_acquire);
    for (;;) {
      const uint64_t b = cur & 0xFFFFFFFF, e = cur >> 32;
      if (b >= e) break;
      // The owner takes its next unit; anyone else the last one, so that the owner's stream is not cut.
      const uint64_t next = k == 0 ? cur + 1 : ((e - 1) << 32) | b;
      if (r.compare_exchange_weak(cur, next, std::memory_order_acq_rel, std::memory_order_acquire)) {
        unit = static_cast<int64_t>(k == 0 ? b : e - 1);
        return true;
      }
    }
  }
  return false;
}

void ThreadPool::work(int id) {
  int64_t u = 0;
  while (claim(id, u)) {
    // A unit was claimed from a live job (a run is refilled only after the previous job's units are all
    // done, and the job's fields are written before the runs), so fn_, ctx_, n_ and n_units_ are that job's.
    const int64_t base = n_ / n_units_, extra = n_ % n_units_;
    const int64_t begin = u * base + std::min(u, extra);
    const int64_t end = begin + base + (u < extra ? 1 : 0);
    if (begin < end) fn_(ctx_, begin, end, id);
    done_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::worker_main(int id) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinIterations; ++spin) {
      spin_step(spin);
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load()) return;
    work(id);
  }
}

void ThreadPool::run(int64_t n, RawFn fn, void* ctx) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    fn(ctx, 0, n, 0);
    return;
  }
  fn_ = fn;
  ctx_ = ctx;
  n_ = n;
  const int64_t units = std::min<int64_t>(n, static_cast<int64_t>(n_threads_) * kUnitsPerThread);
  n_units_ = units;
  done_.store(0, std::memory_order_relaxed);
  for (int t = 0; t < n_threads_; ++t) {
    const uint64_t b = static_cast<uint64_t>(units * t / n_threads_),
                   e = static_cast<uint64_t>(units * (t + 1) / n_threads_);
    runs_[static_cast<size_t>(t)].range.store((e << 32) | b, std::memory_order_release);
  }
  const uint64_t g = ++job_;
  {
    // Publishing under the mutex means a worker that checked the generation and is about to wait cannot
    // miss the notification.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.store(g, std::memory_order_release);
  }
  cv_.notify_all();
  work(0);
  for (int spin = 0; done_.load(std::memory_order_acquire) != units; ++spin) spin_step(spin);
}

}  // namespace tern
