#include "perf/hwprobe.h"

#include <sched.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "perf/accounting.h"
#include "perf/hwprobe_kernels.h"
#include "perf/kernel_probe.h"

namespace tern::perf {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  if (!f) return "";
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// "0-3,8,10-11" -> 7
int count_cpu_list(const std::string& list) {
  int n = 0;
  std::stringstream ss(list);
  std::string part;
  while (std::getline(ss, part, ',')) {
    if (part.empty()) continue;
    const size_t dash = part.find('-');
    if (dash == std::string::npos)
      ++n;
    else
      n += std::atoi(part.c_str() + dash + 1) - std::atoi(part.c_str()) + 1;
  }
  return n;
}

// "32K" -> 32768, "1024K", "32M"
int64_t parse_size(const std::string& s) {
  if (s.empty()) return 0;
  int64_t v = std::atoll(s.c_str());
  switch (s.back()) {
    case 'K': return v * 1024;
    case 'M': return v * 1024 * 1024;
    case 'G': return v * 1024 * 1024 * 1024;
    default: return v;
  }
}

int usable_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

void probe_system(HwprobeResult& r) {
  struct utsname u {};
  if (uname(&u) == 0) r.arch = u.machine;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        r.cpu_model = line.substr(colon + 1);
        r.cpu_model.erase(0, r.cpu_model.find_first_not_of(' '));
        break;
      }
    }
  }
  if (r.cpu_model.empty()) r.cpu_model = "unknown CPU";
  r.logical_cpus = usable_cpus();

  // Physical cores: distinct (package, core) pairs.
  std::set<std::pair<std::string, std::string>> cores;
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  for (long cpu = 0; cpu < online; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    const std::string core = read_text(base + "core_id");
    if (core.empty()) continue;
    cores.insert({read_text(base + "physical_package_id"), core});
  }
  r.physical_cores = cores.empty() ? r.logical_cpus : static_cast<int>(cores.size());

  for (int i = 0;; ++i) {
    const std::string base = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    const std::string level = read_text(base + "level");
    if (level.empty()) break;
    CacheLevel c;
    c.level = std::atoi(level.c_str());
    c.type = read_text(base + "type");
    c.size_bytes = parse_size(read_text(base + "size"));
    const int sharing = std::max(1, count_cpu_list(read_text(base + "shared_cpu_list")));
    c.instances = std::max(1, static_cast<int>(online) / sharing);
    r.caches.push_back(c);
  }

  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);)
    if (line.rfind("MemTotal:", 0) == 0) r.mem_total_bytes = std::atoll(line.c_str() + 9) * 1024;
  if (r.mem_total_bytes == 0)
    r.mem_total_bytes = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  r.isa = kernels::cpu_isa();
}

// Runs fn(thread index) on n threads started together; returns the wall time from the common start to the
// last finish.
template <class Fn>
double run_threads(int n, Fn fn) {
  std::barrier start(n + 1);
  std::vector<double> end(static_cast<size_t>(n));
  Clock::time_point t0;
  std::vector<std::thread> pool;
  for (int t = 0; t < n; ++t)
    pool.emplace_back([&, t] {
      start.arrive_and_wait();
      fn(t);
      end[static_cast<size_t>(t)] = seconds_since(t0);
    });
  t0 = Clock::now();
  start.arrive_and_wait();
  for (auto& th : pool) th.join();
  return *std::max_element(end.begin(), end.end());
}

volatile float g_flop_sink;
volatile uint64_t g_read_sink;

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

void measure_bandwidth(HwprobeResult& r, const HwprobeOptions& opts) {
  int64_t llc = 0;
  for (const CacheLevel& c : r.caches) llc = std::max(llc, c.size_bytes * c.instances);
  if (llc == 0) llc = 32 << 20;
  // Each array several times the last-level cache so that no pass is served from it.
  int64_t array = std::max<int64_t>((opts.quick ? 4 : 8) * llc, 64 << 20);
  array = std::min<int64_t>(array, r.mem_total_bytes / 16);
  const int T = r.threads;
  array = array / (256 * T) * (256 * T);
  r.array_bytes = array;
  const size_t n = static_cast<size_t>(array) / sizeof(double);
  std::unique_ptr<double, AlignedFree> a(
      static_cast<double*>(std::aligned_alloc(64, 3 * static_cast<size_t>(array))));
  if (!a) return;
  double* A = a.get();
  double* B = A + n;
  double* C = B + n;
  const size_t per = n / static_cast<size_t>(T);
  // First touch by the thread that will stream the slice (its NUMA node).
  run_threads(T, [&](int t) {
    const size_t lo = per * static_cast<size_t>(t);
    for (size_t i = lo; i < lo + per; ++i) {
      A[i] = 1.0;
      B[i] = 2.0;
      C[i] = 0.5;
    }
  });
  const int reps = opts.quick ? 4 : 10;
  auto best = [&](int threads, auto body) {
    double t_best = 1e30;
    for (int rep = 0; rep < reps; ++rep) t_best = std::min(t_best, run_threads(threads, body));
    return t_best;
  };
  const double t_read = best(T, [&](int t) {
    g_read_sink = kernels::read_stream(reinterpret_cast<const uint8_t*>(B + per * t), per * sizeof(double));
  });
  r.read_bw = static_cast<double>(per * T * sizeof(double)) / t_read;
  const double t_read1 = best(1, [&](int) {
    g_read_sink = kernels::read_stream(reinterpret_cast<const uint8_t*>(B), per * T * sizeof(double));
  });
  r.read_bw_one_thread = static_cast<double>(per * T * sizeof(double)) / t_read1;
  const double t_copy = best(T, [&](int t) { kernels::copy_stream(A + per * t, B + per * t, per); });
  r.copy_bw = 2.0 * static_cast<double>(per * T * sizeof(double)) / t_copy;
  const double t_triad =
      best(T, [&](int t) { kernels::triad_stream(A + per * t, B + per * t, C + per * t, 3.0, per); });
  r.triad_bw = 3.0 * static_cast<double>(per * T * sizeof(double)) / t_triad;
}

void measure_peaks(HwprobeResult& r, const HwprobeOptions& opts) {
  const double target = opts.quick ? 0.015 : 0.1;  // seconds per timed run
  const int reps = opts.quick ? 2 : 3;
  for (const kernels::FlopKernel& k : kernels::flop_kernels()) {
    if (!k.available()) continue;
    // Calibrate the iteration count on one thread.
    int64_t iters = 1 << 14;
    double t = 0;
    for (;;) {
      const auto t0 = Clock::now();
      g_flop_sink = k.run(iters);
      t = seconds_since(t0);
      if (t > target / 8 || iters > (int64_t{1} << 40)) break;
      iters *= 4;
    }
    iters =
        std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(iters) * target / std::max(t, 1e-9)));
    const double flops = k.flops_per_iter * static_cast<double>(iters);
    PeakPath p;
    p.path = k.path;
    p.dtype = k.dtype;
    p.what = k.what;
    double t1 = 1e30, tn = 1e30;
    for (int rep = 0; rep < reps; ++rep) {
      t1 = std::min(t1, run_threads(1, [&](int) { g_flop_sink = k.run(iters); }));
      tn = std::min(tn, run_threads(r.threads, [&](int) { g_flop_sink = k.run(iters); }));
    }
    p.one_thread = flops / t1;
    p.all_threads = flops * r.threads / tn;
    r.peaks.push_back(p);
  }
}

// The matmul kernels' ceilings on the probe's threads. --quick measures smaller shapes: a GEMV weight of
// twice the last-level cache is still streamed from DRAM, but with more noise.
Status measure_matmul(HwprobeResult& r, const HwprobeOptions& opts) {
  int64_t llc = 0;
  for (const CacheLevel& c : r.caches) llc = std::max(llc, c.size_bytes * c.instances);
  MatmulProbeShape& s = r.matmul_shape;
  if (opts.quick) {
    s.gemm_rows = 256;
    s.gemm_cols = 1024;
    s.gemm_tokens = 64;
    s.gemv_bytes = std::max<int64_t>(2 * llc, 32 << 20);
    s.gemv_sizes = {int64_t{1} << 20, int64_t{4} << 20};
    s.rounds = 3;
  } else {
    s.gemv_bytes = std::max<int64_t>(8 * llc, s.gemv_bytes);
  }
  s.gemv_bytes = std::min<int64_t>(s.gemv_bytes, r.mem_total_bytes / 16);
  if (opts.gemm_rows > 0) s.gemm_rows = opts.gemm_rows;
  if (opts.gemm_cols > 0) s.gemm_cols = opts.gemm_cols;
  if (opts.gemm_tokens > 0) s.gemm_tokens = opts.gemm_tokens;
  auto m = measure_matmul_ceilings(s, r.threads);
  if (!m) return m.status();
  r.matmul = std::move(m.value());
  return Status();
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string human(double v, const char* unit) {
  const char* prefixes[] = {"", "K", "M", "G", "T", "P"};
  int i = 0;
  while (v >= 1000 && i < 5) {
    v /= 1000;
    ++i;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, v >= 100 ? "%.0f %s%s" : "%.1f %s%s", v, prefixes[i], unit);
  return buf;
}

std::string binary(int64_t bytes) {
  char buf[64];
  if (bytes >= (int64_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1 << 30));
  else if (bytes >= (1 << 20))
    std::snprintf(buf, sizeof buf, "%lld MiB", static_cast<long long>(bytes >> 20));
  else
    std::snprintf(buf, sizeof buf, "%lld KiB", static_cast<long long>(bytes >> 10));
  return buf;
}

}  // namespace

double HwprobeResult::best_peak(const std::string& dtype) const {
  double best = 0;
  for (const PeakPath& p : peaks)
    if (p.dtype == dtype) best = std::max(best, p.all_threads);
  return best;
}

Result<HwprobeResult> run_hwprobe(const HwprobeOptions& opts) {
  const auto t0 = Clock::now();
  HwprobeResult r;
  r.date = utc_now();
  r.quick = opts.quick;
  probe_system(r);
  if (opts.threads < 0) return error("hwprobe: threads must be 0 (all) or positive");
  r.threads = opts.threads > 0 ? opts.threads : r.logical_cpus;
  measure_bandwidth(r, opts);
  if (r.read_bw <= 0) return error("hwprobe: could not allocate the bandwidth arrays");
  measure_peaks(r, opts);
  if (Status s = measure_matmul(r, opts); !s) return error("hwprobe: " + s.message());
  r.seconds = seconds_since(t0);
  return r;
}

std::string hwprobe_to_json(const HwprobeResult& r) {
  nlohmann::ordered_json j;
  j["tern_hwprobe"] = 1;
  j["date"] = r.date;
  j["quick"] = r.quick;
  j["cpu"] = r.cpu_model;
  j["arch"] = r.arch;
  j["logical_cpus"] = r.logical_cpus;
  j["physical_cores"] = r.physical_cores;
  j["threads"] = r.threads;
  j["mem_total_bytes"] = r.mem_total_bytes;
  j["isa"] = r.isa;
  j["caches"] = nlohmann::ordered_json::array();
  for (const CacheLevel& c : r.caches)
    j["caches"].push_back(
        {{"level", c.level}, {"type", c.type}, {"size_bytes", c.size_bytes}, {"instances", c.instances}});
  j["bandwidth"] = {{"array_bytes", r.array_bytes},
                    {"read_bytes_per_s", r.read_bw},
                    {"read_one_thread_bytes_per_s", r.read_bw_one_thread},
                    {"copy_bytes_per_s", r.copy_bw},
                    {"triad_bytes_per_s", r.triad_bw}};
  j["peaks"] = nlohmann::ordered_json::array();
  for (const PeakPath& p : r.peaks)
    j["peaks"].push_back({{"path", p.path},
                          {"dtype", p.dtype},
                          {"what", p.what},
                          {"one_thread_per_s", p.one_thread},
                          {"all_threads_per_s", p.all_threads}});
  if (!r.matmul.empty()) {
    const MatmulProbeShape& s = r.matmul_shape;
    auto types = nlohmann::ordered_json::array();
    for (const MatmulCeiling& m : r.matmul) {
      auto sized = nlohmann::ordered_json::array();
      for (const SizedRate& z : m.gemv_by_size)
        sized.push_back({{"matrix_bytes", z.matrix_bytes}, {"bytes_per_s", z.bytes_per_s}});
      types.push_back({{"weights", dtype_name(m.weights)},
                       {"gemm_ops_per_s", m.gemm_ops_per_s},
                       {"gemv_bytes_per_s", m.gemv_bytes_per_s},
                       {"gemv_by_size", sized}});
    }
    j["matmul_kernels"] = {
        {"backend", "cpu"},
        {"threads", r.threads},
        {"rounds", s.rounds},
        {"gemm", {{"rows", s.gemm_rows}, {"cols", s.gemm_cols}, {"tokens", s.gemm_tokens}}},
        {"gemv", {{"cols", s.gemv_cols}, {"min_weight_bytes", s.gemv_bytes}}},
        {"types", types}};
  }
  j["seconds"] = r.seconds;
  return j.dump(2) + "\n";
}

Result<HwprobeResult> hwprobe_from_json(const std::string& text, const std::string& source) {
  try {
    const auto j = nlohmann::json::parse(text);
    if (!j.is_object() || j.value("tern_hwprobe", 0) != 1)
      return error(source + ": not a tern hwprobe file (missing \"tern_hwprobe\": 1)");
    HwprobeResult r;
    r.date = j.value("date", "");
    r.quick = j.value("quick", false);
    r.cpu_model = j.value("cpu", "");
    r.arch = j.value("arch", "");
    r.logical_cpus = j.value("logical_cpus", 0);
    r.physical_cores = j.value("physical_cores", 0);
    r.threads = j.value("threads", 0);
    r.mem_total_bytes = j.value("mem_total_bytes", int64_t{0});
    r.isa = j.value("isa", std::vector<std::string>{});
    for (const auto& c : j.value("caches", nlohmann::json::array()))
      r.caches.push_back({c.value("level", 0), c.value("type", ""), c.value("size_bytes", int64_t{0}),
                          c.value("instances", 0)});
    const auto bw = j.value("bandwidth", nlohmann::json::object());
    r.array_bytes = bw.value("array_bytes", int64_t{0});
    r.read_bw = bw.value("read_bytes_per_s", 0.0);
    r.read_bw_one_thread = bw.value("read_one_thread_bytes_per_s", 0.0);
    r.copy_bw = bw.value("copy_bytes_per_s", 0.0);
    r.triad_bw = bw.value("triad_bytes_per_s", 0.0);
    for (const auto& p : j.value("peaks", nlohmann::json::array()))
      r.peaks.push_back({p.value("path", ""), p.value("dtype", ""), p.value("what", ""),
                         p.value("one_thread_per_s", 0.0), p.value("all_threads_per_s", 0.0)});
    // Absent from files written before hwprobe measured the matmul kernels: those load with none.
    if (j.contains("matmul_kernels")) {
      const auto& mk = j["matmul_kernels"];
      const auto gemm = mk.value("gemm", nlohmann::json::object());
      const auto gemv = mk.value("gemv", nlohmann::json::object());
      MatmulProbeShape& s = r.matmul_shape;
      s.gemm_rows = gemm.value("rows", int64_t{0});
      s.gemm_cols = gemm.value("cols", int64_t{0});
      s.gemm_tokens = gemm.value("tokens", int64_t{0});
      s.gemv_cols = gemv.value("cols", int64_t{0});
      s.gemv_bytes = gemv.value("min_weight_bytes", int64_t{0});
      s.rounds = mk.value("rounds", 0);
      for (const auto& t : mk.value("types", nlohmann::json::array())) {
        auto dt = parse_dtype(t.value("weights", ""));
        if (!dt) return error(source + ": matmul_kernels: " + dt.message());
        MatmulCeiling m{dt.value(), t.value("gemm_ops_per_s", 0.0), t.value("gemv_bytes_per_s", 0.0), {}};
        const std::string what = source + ": matmul_kernels: " + std::string(dtype_name(m.weights));
        if (!(m.gemm_ops_per_s > 0 && m.gemv_bytes_per_s > 0))
          return error(what + " lacks a positive gemm_ops_per_s or gemv_bytes_per_s");
        // Absent from files written before hwprobe measured the GEMV by matrix size.
        for (const auto& z : t.value("gemv_by_size", nlohmann::json::array())) {
          const SizedRate sr{z.value("matrix_bytes", 0.0), z.value("bytes_per_s", 0.0)};
          if (!(sr.matrix_bytes > 0 && sr.bytes_per_s > 0) ||
              (!m.gemv_by_size.empty() && sr.matrix_bytes <= m.gemv_by_size.back().matrix_bytes))
            return error(what +
                         ": gemv_by_size needs positive matrix_bytes and bytes_per_s, ascending by size");
          m.gemv_by_size.push_back(sr);
        }
        r.matmul.push_back(std::move(m));
      }
    }
    r.seconds = j.value("seconds", 0.0);
    if (r.read_bw <= 0 || r.best_peak("f32") <= 0 || r.mem_total_bytes <= 0)
      return error(source + ": hwprobe file lacks the read bandwidth, an f32 peak or the memory size");
    return r;
  } catch (const nlohmann::json::exception& e) {
    return error(source + ": " + e.what());
  }
}

Status save_hwprobe(const HwprobeResult& r, const std::string& path) {
  // mkdir -p of the parent directory.
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1))
    ::mkdir(path.substr(0, slash).c_str(), 0755);
  std::ofstream f(path, std::ios::trunc);
  if (!f) return error(path + ": cannot write: " + std::strerror(errno));
  f << hwprobe_to_json(r);
  if (!f) return error(path + ": write failed");
  return Status();
}

Result<HwprobeResult> load_hwprobe(const std::string& path) {
  std::ifstream f(path);
  if (!f) return error(path + ": cannot read: " + std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  return hwprobe_from_json(ss.str(), path);
}

std::string default_hwprobe_path() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/tern/hwprobe.json";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/tern/hwprobe.json";
  return "hwprobe.json";
}

Hardware hardware_from_hwprobe(const HwprobeResult& r, const std::string& file) {
  Hardware h;
  h.key = "host";
  h.name = r.cpu_model + " (" + std::to_string(r.threads) + " threads)";
  h.gpu = false;
  h.mem_bandwidth = r.read_bw;
  h.mem_bytes = static_cast<double>(r.mem_total_bytes);
  for (const CacheLevel& c : r.caches)
    h.llc_bytes = std::max(h.llc_bytes, static_cast<double>(c.size_bytes) * c.instances);
  h.peak[static_cast<int>(Compute::F32)] = r.best_peak("f32");
  h.peak[static_cast<int>(Compute::BF16)] = r.best_peak("bf16");
  h.peak[static_cast<int>(Compute::INT8)] = r.best_peak("int8");
  h.matmul_ceilings = r.matmul;
  h.source =
      "measured by tern hwprobe" + std::string(r.quick ? " --quick" : "") + " on " + r.date +
      (file.empty() ? std::string() : " (" + file + ")") + ": read bandwidth of " +
      std::to_string(r.threads) + " threads over " + binary(r.array_bytes) +
      " arrays, peaks of the fastest path per type, " +
      (r.matmul.empty() ? std::string("no matmul kernel ceilings (a file from an older tern hwprobe)")
                        : "matmul kernel ceilings of " + std::to_string(r.matmul.size()) + " weight types");
  return h;
}

std::string format_hwprobe(const HwprobeResult& r) {
  std::string s;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "cpu:         %s (%s), %d logical CPUs, %d physical cores; measured with %d threads\n",
                r.cpu_model.c_str(), r.arch.c_str(), r.logical_cpus, r.physical_cores, r.threads);
  s += buf;
  s += "memory:      " + binary(r.mem_total_bytes) + "\n";
  s += "caches:     ";
  for (const CacheLevel& c : r.caches) {
    const char* t = c.type == "Data" ? "d" : c.type == "Instruction" ? "i" : "";
    s += " L" + std::to_string(c.level) + t + " " + binary(c.size_bytes) + " x" +
         std::to_string(c.instances) + ",";
  }
  if (!r.caches.empty()) s.pop_back();
  s += "\nisa:        ";
  for (const auto& i : r.isa) s += " " + i;
  s += "\n\nbandwidth (" + binary(r.array_bytes) + " arrays, best of several passes, STREAM byte counts):\n";
  s +=
      "  read   " + human(r.read_bw, "B/s") + "   (one thread: " + human(r.read_bw_one_thread, "B/s") + ")\n";
  s += "  copy   " + human(r.copy_bw, "B/s") + "\n";
  s += "  triad  " + human(r.triad_bw, "B/s") + "\n\n";
  s += "peak arithmetic (int8 paths count integer multiply-adds as 2 ops, like FLOPs):\n";
  std::snprintf(buf, sizeof buf, "  %-18s %-5s %-15s %-15s %s\n", "path", "type", "one thread",
                (std::to_string(r.threads) + " threads").c_str(), "instruction");
  s += buf;
  for (const PeakPath& p : r.peaks) {
    const char* unit = p.dtype == "int8" ? "OP/s" : "FLOP/s";
    std::snprintf(buf, sizeof buf, "  %-18s %-5s %-15s %-15s %s\n", p.path.c_str(), p.dtype.c_str(),
                  human(p.one_thread, unit).c_str(), human(p.all_threads, unit).c_str(), p.what.c_str());
    s += buf;
  }
  const double f32 = r.best_peak("f32");
  std::snprintf(buf, sizeof buf, "\nridge point (best f32 peak / read bandwidth): %.1f FLOP/byte\n",
                f32 / r.read_bw);
  s += buf;
  if (!r.matmul.empty()) {
    const MatmulProbeShape& m = r.matmul_shape;
    std::snprintf(
        buf, sizeof buf,
        "\ntern's matmul kernels (CPU backend, %d threads; ceilings of tern's code, not of the machine):\n"
        "  GEMM: %lld x %lld weights, %lld tokens;  GEMV: 1 token over >= %s of weights;  best call of "
        "%d rounds\n",
        r.threads, static_cast<long long>(m.gemm_rows), static_cast<long long>(m.gemm_cols),
        static_cast<long long>(m.gemm_tokens), binary(m.gemv_bytes).c_str(), m.rounds);
    s += buf;
    std::snprintf(buf, sizeof buf, "  %-8s %-14s %-14s %-8s %s\n", "weights", "GEMM", "GEMV", "/ read",
                  "GEMV as a run of separate matrices of about (one call each)");
    s += buf;
    for (const MatmulCeiling& k : r.matmul) {
      std::string sized;
      for (const SizedRate& z : k.gemv_by_size)
        if (&z != &k.gemv_by_size.back())
          sized += binary(static_cast<int64_t>(z.matrix_bytes)) + " " + human(z.bytes_per_s, "B/s") + "  ";
      std::snprintf(
          buf, sizeof buf, "  %-8s %-14s %-14s %-8s %s\n", std::string(dtype_name(k.weights)).c_str(),
          human(k.gemm_ops_per_s, "OP/s").c_str(), human(k.gemv_bytes_per_s, "B/s").c_str(),
          (std::to_string(static_cast<int>(std::lround(100 * k.gemv_bytes_per_s / r.read_bw))) + "%").c_str(),
          sized.substr(0, sized.find_last_not_of(' ') + 1).c_str());
      s += buf;
    }
  }
  std::snprintf(buf, sizeof buf, "probe took %.1f s%s\n", r.seconds, r.quick ? " (--quick)" : "");
  s += buf;
  return s;
}

}  // namespace tern::perf
