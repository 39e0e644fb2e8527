// Hardware descriptions for the roofline: memory bandwidth and capacity, and peak FLOP/s per compute type.
// Presets carry the spec-sheet figures and where they come from; `host` is built from a hwprobe measurement
// (perf/hwprobe.h), which may add the ceilings of tern's own matmul kernels per weight type.
#pragma once

#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "perf/accounting.h"

namespace tern::perf {

// What tern's CPU backend's matmul reaches on one weight type, measured in isolation by hwprobe
// (perf/kernel_probe.h): ceilings of tern's kernels on this machine, not limits of the hardware. The
// estimator's `kernels` ceilings bound a matmul of this type by them instead of by the peaks.
// The streaming rate of one-token matmuls over a run of separate matrices of `matrix_bytes` each.
struct SizedRate {
  double matrix_bytes = 0;
  double bytes_per_s = 0;
};

struct MatmulCeiling {
  DType weights = DType::F32;
  double gemm_ops_per_s = 0;    // many tokens: 2 * rows * cols * tokens / time (the compute ceiling)
  double gemv_bytes_per_s = 0;  // one token over weights far larger than the caches: bytes / time, bytes
                                // counted as perf/accounting.h counts a matmul's (the streaming ceiling)
  // One token against each of a run of matrices of one size, one call each, as a decode step does: each call
  // is a job of its own whose threads start their streams afresh and wait for each other at its end, so
  // smaller matrices stream slower. Ascending by size, the last being the one large matrix of
  // gemv_bytes_per_s; empty in files from before hwprobe measured it.
  std::vector<SizedRate> gemv_by_size;

  // The streaming ceiling of one matrix of `matrix_bytes`: interpolated in log(size) between the measured
  // sizes and held at the end ones beyond them; gemv_bytes_per_s when there are none.
  double gemv_rate(double matrix_bytes) const;
};

struct Hardware {
  std::string key;   // "a100-80gb-pcie", "host"
  std::string name;  // "NVIDIA A100 80GB PCIe"
  bool gpu = false;
  double mem_bandwidth = 0;  // bytes/s, DRAM/HBM
  double mem_bytes = 0;      // capacity
  double llc_bytes = 0;      // last-level cache (GPU L2, CPU L3): a working set this small is not DRAM-bound
  // Dense peak FLOP/s (ops/s for int8) by Compute, without sparsity; 0 where there is no unit for that type,
  // in which case work of that type runs at the f32 peak (a CPU converting f16 to f32, say).
  double peak[kComputeKinds] = {0, 0, 0, 0};
  std::string source;                          // where the figures come from
  std::vector<MatmulCeiling> matmul_ceilings;  // by weight type; empty for presets and older hwprobe files

  double peak_flops(Compute c) const;
  const MatmulCeiling* matmul_ceiling(DType weights) const;  // nullptr when not measured
  bool has(Compute c) const { return peak[static_cast<int>(c)] > 0; }
  // Arithmetic intensity (FLOP/byte) above which an op of this compute type is compute-bound.
  double ridge(Compute c) const { return peak_flops(c) / mem_bandwidth; }
};

const std::vector<Hardware>& hardware_presets();
std::string hardware_preset_names();  // "a100-80gb-pcie, a100-80gb-sxm, ..., host"
// A preset by key (not `host`, which needs a measurement: see hwprobe.h).
Result<Hardware> find_hardware_preset(const std::string& key);

}  // namespace tern::perf
