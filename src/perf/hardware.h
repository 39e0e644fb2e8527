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

// tern's CPU matmul on one weight shape of a model, measured just before it is used (`tern estimate
// --probe-shapes`, and `--validate` for each model): a matrix's rate depends on its shape as well as its type
// (a reduction width that is not a multiple of the kernel's group of blocks leaves lanes idle; a short output
// dimension leaves the threads little to share), which the per-type ceilings, measured on one shape, miss.
// A weight matrix of a model: its type and shape, and whether forward calls pass many tokens through it (a
// prefill's matmuls) or only ever one per sequence (the classifier, which sees the last prompt token only).
struct MatrixShape {
  DType weights = DType::F32;
  int64_t out = 0, in = 0;
  bool gemm = true;
};

struct ShapeCeiling {
  DType weights = DType::F32;
  int64_t out = 0, in = 0;      // the weight (out features, in features)
  int64_t tokens = 0;           // the GEMM's rows of activations; 0 when only the GEMV was measured
  double gemm_ops_per_s = 0;    // 2 * out * in * tokens / time; 0 when not measured
  double gemv_bytes_per_s = 0;  // one token against each of a run of separate matrices of this shape, more
                                // bytes than the last-level cache holds, as a decode step calls them
};

// tern's CPU attention for one head configuration, as a model layer calls it (Backend::attention_batch:
// store the new keys and values in an f32 cache, then attend), measured with the shapes (`--probe-shapes`):
// `tokens` queries at positions kv_start .. kv_start + tokens - 1, as FLOPs (counted as perf/accounting.h
// counts the attention op's) per second. The attention of a decode step runs from a few cache rows, its
// hand-off to the threads and its softmax, none of which the roofs see.
struct AttentionCeiling {
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int64_t tokens = 0, kv_start = 0;
  double flops_per_s = 0;
};

// What a probe of one model measures: its matrices' and its attention's ceilings.
struct ModelCeilings {
  std::vector<ShapeCeiling> shapes;
  std::vector<AttentionCeiling> attention;
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
  std::vector<ShapeCeiling> shape_ceilings;    // by weight shape and type; empty unless probed for a model
  std::vector<AttentionCeiling> attention_ceilings;  // empty unless probed for a model

  double peak_flops(Compute c) const;
  const MatmulCeiling* matmul_ceiling(DType weights) const;  // nullptr when not measured
  const ShapeCeiling* shape_ceiling(DType weights, int64_t out, int64_t in) const;  // nullptr: not measured
  // The attention rate for `tokens` queries from kv_start on, with this head configuration; 0 when not
  // measured. One token: interpolated linearly in kv_start between the measured one-token points (held at
  // the end ones beyond them); more: the measured point with the nearest token count.
  double attention_rate(int n_heads, int n_kv_heads, int head_dim, int64_t tokens, int64_t kv_start) const;
  bool has(Compute c) const { return peak[static_cast<int>(c)] > 0; }
  // Arithmetic intensity (FLOP/byte) above which an op of this compute type is compute-bound.
  double ridge(Compute c) const { return peak_flops(c) / mem_bandwidth; }
};

const std::vector<Hardware>& hardware_presets();
std::string hardware_preset_names();  // "a100-80gb-pcie, a100-80gb-sxm, ..., host"
// A preset by key (not `host`, which needs a measurement: see hwprobe.h).
Result<Hardware> find_hardware_preset(const std::string& key);

}  // namespace tern::perf
