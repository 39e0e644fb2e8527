// The ceilings of tern's own CPU matmul per weight type (MatmulCeiling, perf/hardware.h), measured in
// isolation through the public Backend interface on synthetic weights: a GEMM of many tokens for the compute
// ceiling, a one-token GEMV over weights far larger than the last-level cache for the streaming ceiling.
// These are what tern's kernels reach on this machine, not what the hardware can do; an estimate with the
// `kernels` ceilings bounds each matmul by them. Part of `tern hwprobe` (perf/hwprobe.h). For one model,
// `tern estimate --probe-shapes` also measures the matmul on each of its own weight shapes and its attention
// (measure_model_ceilings), since a kernel's rate depends on the shape it runs.
#pragma once

#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "model/config.h"
#include "perf/estimator.h"
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

struct ShapeProbe {
  int64_t tokens = 128;                      // rows of activations of each GEMM
  int64_t stream_bytes = int64_t{64} << 20;  // at least this many bytes of separate matrices per GEMV run
  int rounds = 9;                            // timed passes over all shapes; the median of a shape's counts
};

// Measures tern's CPU matmul on each shape, on `threads` threads (ShapeCeiling, perf/hardware.h): a GEMM of
// p.tokens rows where shape.gemm, and one token against each of a run of separate copies of the matrix, one
// call each, as a decode step calls its matrices one after another from memory. Shapes are measured in
// turn in each round, so that a burst of load from a neighbour does not spoil all of one shape's calls. An
// unsupported type, or a width its blocks do not divide, is an error naming the shape.
Result<std::vector<ShapeCeiling>> measure_shape_ceilings(const std::vector<MatrixShape>& shapes,
                                                         const ShapeProbe& p, int threads);

// Measures tern's CPU attention (Backend::attention_batch, f32 KV cache) for the heads of `c`, at each
// point (queries, keys cached before them): one call per layer over n_layers separate caches, as a step
// calls them, the median of `rounds` passes; FLOPs counted as perf/accounting.h counts the attention op's.
struct AttentionPoint {
  int64_t tokens = 1, kv_start = 0;
};
Result<std::vector<AttentionCeiling>> measure_attention_ceilings(const ModelConfig& c,
                                                                 const std::vector<AttentionPoint>& points,
                                                                 int rounds, int threads);

// Both, for what the workload runs: every weight shape of the model (a GEMM of the prefill chunk's tokens)
// and the attention of its first prefill chunk and of its first, middle and last decode steps. For
// `tern estimate --probe-shapes`; a second or a few.
Result<ModelCeilings> measure_model_ceilings(const ModelSpec& m, const Workload& w, int threads);

}  // namespace tern::perf
