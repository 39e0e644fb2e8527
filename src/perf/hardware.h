// Hardware descriptions for the roofline: memory bandwidth and capacity, and peak FLOP/s per compute type.
// Presets carry the spec-sheet figures and where they come from; `host` is built from a hwprobe measurement
// (perf/hwprobe.h).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "perf/accounting.h"

namespace tern::perf {

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
  std::string source;  // where the figures come from

  double peak_flops(Compute c) const;
  bool has(Compute c) const { return peak[static_cast<int>(c)] > 0; }
  // Arithmetic intensity (FLOP/byte) above which an op of this compute type is compute-bound.
  double ridge(Compute c) const { return peak_flops(c) / mem_bandwidth; }
};

const std::vector<Hardware>& hardware_presets();
std::string hardware_preset_names();  // "a100-80gb-pcie, a100-80gb-sxm, ..., host"
// A preset by key (not `host`, which needs a measurement: see hwprobe.h).
Result<Hardware> find_hardware_preset(const std::string& key);

}  // namespace tern::perf
