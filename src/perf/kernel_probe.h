// The ceilings of tern's own CPU matmul per weight type (MatmulCeiling, perf/hardware.h), measured in
// isolation through the public Backend interface on synthetic weights: a GEMM of many tokens for the compute
// ceiling, a one-token GEMV over weights far larger than the last-level cache for the streaming ceiling.
// These are what tern's kernels reach on this machine, not what the hardware can do; an estimate with the
// `kernels` ceilings bounds each matmul by them. Part of `tern hwprobe` (perf/hwprobe.h).
#pragma once

#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "perf/hardware.h"

namespace tern::perf {

struct MatmulProbeShape {
  // The GEMM: weights (rows, cols), `tokens` rows of activations; 2 * rows * cols * tokens ops per call.
  // The default cols is a multiple of 256 so that every type, the K-quants' 256-element blocks included,
  // takes the same shape.
  int64_t gemm_rows = 1024, gemm_cols = 2048, gemm_tokens = 128;
  // The GEMV: one token against weights of gemv_cols columns and as many rows as make at least gemv_bytes.
  int64_t gemv_cols = 2048;
  int64_t gemv_bytes = int64_t{256} << 20;
  // The GEMV again as a run of separate calls on consecutive slices of about each of these many bytes (the
  // sizes of a decode step's matrices), for MatmulCeiling::gemv_by_size; sizes at or above gemv_bytes are
  // left out.
  std::vector<int64_t> gemv_sizes = {int64_t{256} << 10, int64_t{1} << 20, int64_t{4} << 20, int64_t{16} << 20};
  // Timed passes over all types, after a warm-up call each; a type's best call counts. Passes that visit
  // every type in turn spread each type's calls over the whole probe, so that a burst of load from a
  // neighbour on a shared machine does not spoil all of one type's calls.
  int rounds = 10;
};

// The weight types whose ceilings are measured: those tern's model files use and the CPU backend has its
// own kernels for (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K).
const std::vector<DType>& probed_weight_types();

// Measures each probed type the CPU backend supports and whose blocks divide both shapes' columns, on
// `threads` threads (a backend per type, so that repacked copies stay apart). Every type's weights are held
// at once: with the default shape about 3.3 GiB (eight 256 MiB GEMV weights and the integer GEMM's repacked
// copies of five). Bytes of the GEMV are counted as perf/accounting.h counts a matmul's with f32 activations:
// the weights, the input row and the output row.
Result<std::vector<MatmulCeiling>> measure_matmul_ceilings(const MatmulProbeShape& shape, int threads);

}  // namespace tern::perf
