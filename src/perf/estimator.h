// The analytical roofline estimator: how fast a model can run on a piece of hardware for a workload, and what
// bounds each op. Every op of every forward call (from perf/accounting.h) takes
//     time = max(FLOPs / peak of its compute type, bytes / memory bandwidth)
// and ops run one after another. TTFT is the prefill (all sequences of the batch together), TPOT the mean
// decode step over the growing KV length; docs/estimator.md walks through a full example. With the `kernels`
// ceilings a matmul's peak and bandwidth are instead what tern's own matmul reaches on its weight type.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/config.h"
#include "perf/accounting.h"
#include "perf/hardware.h"

namespace tern::perf {

// A model to estimate: shapes, element types, and the bytes its weights take in memory.
struct ModelSpec {
  std::string name;    // preset key or file path
  std::string source;  // where the shapes came from
  ModelConfig config;
  Precision precision;
  double weight_bytes = 0;  // resident weight bytes (the file's tensor bytes, or computed for a preset)
};

struct Workload {
  int64_t batch = 1;     // concurrent sequences, prefilled together and decoded together
  int64_t prompt = 512;  // prompt tokens per sequence
  int64_t output = 128;  // generated tokens per sequence (the first comes out of the prefill)
  AttentionKind attention = AttentionKind::Flash;
  int64_t prefill_chunk = 0;  // prompt tokens per sequence per forward call; 0 = the whole prompt at once
  int64_t decode_stride = 1;  // model every Nth decode step and average those (1 = every step)
  bool first_token_from_prefill = true;  // false: `output` decode steps follow the prefill, not output - 1
  Assumptions assume;
};

// Sets the assumptions of the published llm_workload estimator (jinseok-moon/llm_workload) so that its
// figures can be reproduced and each difference measured: no causal mask, K/V streamed for every query head,
// the classifier on every prompt token, the embedding as a one-hot matmul, flash tiles of head_dim query
// rows, one decode step modelled in 256, and `output` decode steps after the prefill.
void assume_llm_workload(Workload& w, const ModelConfig& c);

// What bounds a matmul. Peaks: the hardware's (the peak FLOP/s of its compute type, the read bandwidth).
// Kernels: tern's CPU matmul on the weights' type as hwprobe measured it in isolation (Hardware::
// matmul_ceilings: GEMM ops/s, streaming GEMV bytes/s), so that an estimate against measurement tests whether
// the per-op model composes into the end-to-end time rather than how far the kernels are from the hardware.
// Where the hardware also has a model's own probed ceilings (tern estimate --probe-shapes: ShapeCeiling,
// AttentionCeiling), each matmul takes its shape's rates and the attention its measured rate instead.
// Every other op keeps the hardware roofs either way.
enum class Ceilings { Peaks, Kernels };
const char* ceilings_name(Ceilings c);  // "peaks", "kernels"
std::optional<Ceilings> parse_ceilings(std::string_view s);

struct EstimateOptions {
  double mem_efficiency = 1.0;   // fraction of the bandwidth ops reach
  double flop_efficiency = 1.0;  // fraction of the peak ops reach
  Ceilings ceilings = Ceilings::Peaks;
};

// One op of a phase, totalled over its repeats (layers) and, for the prefill, over its chunks; for the decode
// phase, the mean over the modelled steps.
struct PhaseOp {
  std::string name;
  OpClass cls = OpClass::Matmul;
  Compute compute = Compute::F32;
  DType weight_dtype = DType::F32;  // matmuls: the weights' type
  bool kernel_ceiling = false;      // a matmul bounded by its type's kernel ceilings rather than the peaks
  int64_t repeat = 1;
  double flops = 0, bytes_read = 0, bytes_written = 0, weight_bytes = 0, kv_read = 0, kv_written = 0;
  double peak_flops = 0;  // the roofs it runs under (after efficiencies)
  double bandwidth = 0;
  double compute_time_s = 0;  // FLOPs / peak
  double memory_time_s = 0;   // bytes / bandwidth
  double time_s = 0;          // sum over forward calls of max(compute, memory)

  double bytes() const { return bytes_read + bytes_written; }
  double intensity() const { return bytes() > 0 ? flops / bytes() : 0.0; }
  bool memory_bound() const { return memory_time_s >= compute_time_s; }
  // Achieved FLOP/s at the roofline time.
  double flops_per_s() const { return time_s > 0 ? flops / time_s : 0.0; }
};

struct Phase {
  std::string name;  // "prefill" or "decode"
  std::vector<PhaseOp> ops;
  int64_t calls = 0;     // forward calls summed (prefill chunks) or averaged (decode steps modelled)
  int64_t kv_first = 0;  // KV length (keys attended) of the first and last call's last token
  int64_t kv_last = 0;
  double time_s = 0;
  StepTotals totals;
};

struct MemoryUse {
  double weights = 0;
  double kv_cache = 0;     // batch * (prompt + output) tokens
  double activations = 0;  // the largest forward call's working set (see estimator.cpp)
  double total = 0;
  double capacity = 0;
  double kv_per_token = 0;
  double per_sequence = 0;  // KV cache and activations that one more sequence adds
  int64_t max_batch = 0;    // the largest batch whose total fits in capacity
};

struct Estimate {
  ModelSpec model;
  Hardware hw;
  Workload workload;
  EstimateOptions options;
  int64_t params = 0;
  Phase prefill, decode;
  int64_t decode_steps = 0;         // decode steps in the latency
  double ttft_s = 0;                // time to first token: the prefill
  double tpot_s = 0;                // time per output token: the mean decode step
  double latency_s = 0;             // ttft + decode_steps * tpot
  double throughput_request = 0;    // output / latency, tokens/s seen by one request
  double throughput_aggregate = 0;  // batch * output / latency
  double decode_tok_s = 0;          // batch / tpot
  double prefill_tok_s = 0;         // batch * prompt / ttft
  MemoryUse memory;
  // With the kernels ceilings: which matmuls fell back to the hardware peaks for want of a measured ceiling
  // (all of them, for hardware without any); empty when every matmul had its own.
  std::string ceilings_note;
};

// Checks the workload against the model and hardware: batch and token counts at least 1, the context within
// the model's limit, and everything fitting in memory (the error says by how much it does not).
Status check_workload(const ModelSpec& m, const Hardware& hw, const Workload& w);

MemoryUse memory_use(const ModelSpec& m, const Hardware& hw, const Workload& w);

Result<Estimate> estimate(const ModelSpec& m, const Hardware& hw, const Workload& w,
                          const EstimateOptions& opts = {});

// The distinct weight matrices (type and shape) of the model's forward calls under the workload, for
// measure_shape_ceilings (perf/kernel_probe.h): `gemm` where a call passes more than one row through it.
std::vector<MatrixShape> matrix_shapes(const ModelSpec& m, const Workload& w);

// The roofline time of one forward call's ops (the building block of estimate(), and what bench compares a
// measured step against).
double step_time(const std::vector<OpCost>& ops, const Hardware& hw, const EstimateOptions& opts = {});

}  // namespace tern::perf
