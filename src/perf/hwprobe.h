// hwprobe: measures this machine for the roofline. Memory bandwidth the STREAM way (read, copy and triad over
// arrays several times the last-level cache, all threads at once, best of several passes), peak FLOP/s of
// each ISA path the CPU has (scalar, AVX2 FMA, AVX-512 FMA, AVX-512 BF16 dot, AVX-512 VNNI int8; chosen by
// CPUID), cores, caches and memory from sysfs and /proc, and the ceilings of tern's own CPU matmul per weight
// type (perf/kernel_probe.h). Results are saved as JSON so `tern estimate --hw host` does not measure again
// each time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "perf/hardware.h"
#include "perf/kernel_probe.h"

namespace tern::perf {

struct CacheLevel {
  int level = 0;
  std::string type;        // "Data", "Instruction", "Unified"
  int64_t size_bytes = 0;  // of one instance
  int instances = 0;       // how many of it the machine has (logical CPUs / CPUs sharing one)
};

struct PeakPath {
  std::string path;        // "avx512_fma_f32"
  std::string dtype;       // "f32", "bf16", "int8"
  std::string what;        // the instruction measured
  double one_thread = 0;   // FLOP/s (ops/s for int8) of one thread
  double all_threads = 0;  // of every probe thread at once
};

struct HwprobeOptions {
  bool quick = false;  // about a second: smaller arrays, shorter loops (tests, first use of --hw host)
  int threads = 0;     // 0: every logical CPU this process may run on
  // The matmul kernels' GEMM shape, when not the default (MatmulProbeShape): to see what the kernels reach
  // on a model's own shapes. 0 keeps the default.
  int64_t gemm_rows = 0, gemm_cols = 0, gemm_tokens = 0;
};

struct HwprobeResult {
  std::string date;  // UTC, ISO 8601
  bool quick = false;
  std::string cpu_model;
  std::string arch;
  int logical_cpus = 0;
  int physical_cores = 0;
  int threads = 0;  // threads the probe used
  int64_t mem_total_bytes = 0;
  std::vector<CacheLevel> caches;
  std::vector<std::string> isa;
  // Bandwidth in bytes/s, STREAM convention (copy counts read + write, triad two reads + one write; the
  // write-allocate reads of the destination are not counted).
  int64_t array_bytes = 0;  // size of each array
  double read_bw = 0;
  double read_bw_one_thread = 0;
  double copy_bw = 0;
  double triad_bw = 0;
  std::vector<PeakPath> peaks;
  // tern's CPU matmul per weight type, on `threads` threads, and the shapes it was measured at. Empty in a
  // file written before hwprobe measured it; the estimator's kernels ceilings then fall back to the peaks.
  MatmulProbeShape matmul_shape;
  std::vector<MatmulCeiling> matmul;
  double seconds = 0;  // how long the probe took

  double best_peak(const std::string& dtype) const;  // all threads; 0 if no path of that type
};

Result<HwprobeResult> run_hwprobe(const HwprobeOptions& opts = {});

std::string hwprobe_to_json(const HwprobeResult& r);
Result<HwprobeResult> hwprobe_from_json(const std::string& text, const std::string& source);
Status save_hwprobe(const HwprobeResult& r, const std::string& path);  // creates the directory
Result<HwprobeResult> load_hwprobe(const std::string& path);
// $XDG_CACHE_HOME/tern/hwprobe.json, else $HOME/.cache/tern/hwprobe.json.
std::string default_hwprobe_path();

// The roofline hardware of a measurement: read bandwidth of all threads, the best f32 path as the f32 peak,
// the BF16 and VNNI paths as the bf16 and int8 peaks, MemTotal as capacity, and the matmul kernels'
// ceilings when the file has them.
Hardware hardware_from_hwprobe(const HwprobeResult& r, const std::string& file);

std::string format_hwprobe(const HwprobeResult& r);

}  // namespace tern::perf
