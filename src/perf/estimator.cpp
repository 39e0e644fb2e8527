#include "perf/estimator.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tern::perf {

namespace {

std::string gib(double bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  return buf;
}

struct Roof {
  double peak, bandwidth;
  bool kernel;  // the matmul kernel's ceilings, not the hardware's
};

Roof roof_for(const OpCost& o, const Hardware& hw, const EstimateOptions& opts) {
  const bool kernels = opts.ceilings == Ceilings::Kernels && o.cls == OpClass::Matmul;
  // A matmul measured on its own shape runs at that shape's rates (the GEMM's, where it was measured, else
  // its type's).
  if (kernels)
    if (const ShapeCeiling* sc = hw.shape_ceiling(o.weight_dtype, o.mm_out, o.mm_in)) {
      const MatmulCeiling* k = hw.matmul_ceiling(o.weight_dtype);
      const double gemm = sc->gemm_ops_per_s > 0 ? sc->gemm_ops_per_s
                          : k                    ? k->gemm_ops_per_s
                                                 : hw.peak_flops(o.compute);
      return {gemm * opts.flop_efficiency, sc->gemv_bytes_per_s * opts.mem_efficiency, true};
    }
  // Attention measured for the model's heads runs at the measured rate for its queries and cache length.
  if (opts.ceilings == Ceilings::Kernels && o.cls == OpClass::Attention && o.flops > 0)
    if (const double rate = hw.attention_rate(o.n_heads, o.n_kv_heads, o.head_dim, o.tokens, o.kv_start);
        rate > 0) {
      const double t = o.flops / rate;  // both roofs give this time
      return {rate * opts.flop_efficiency, o.bytes() / t * opts.mem_efficiency, true};
    }
  // Otherwise it streams its weight at the rate the probe measured for matrices of that size.
  if (kernels)
    if (const MatmulCeiling* k = hw.matmul_ceiling(o.weight_dtype))
      return {k->gemm_ops_per_s * opts.flop_efficiency, k->gemv_rate(o.weight_bytes) * opts.mem_efficiency,
              true};
  return {hw.peak_flops(o.compute) * opts.flop_efficiency, hw.mem_bandwidth * opts.mem_efficiency, false};
}

// Adds one forward call's ops into a phase, `weight` times (1 to sum, 1/n to average).
void accumulate(Phase& ph, const std::vector<OpCost>& ops, const Hardware& hw, const EstimateOptions& opts,
                double weight) {
  for (const OpCost& o : ops) {
    // Chunks of one prefill produce the same op list except for the logits ops of the last chunk.
    auto it = std::find_if(ph.ops.begin(), ph.ops.end(), [&](const PhaseOp& p) { return p.name == o.name; });
    if (it == ph.ops.end()) {
      PhaseOp p;
      p.name = o.name;
      p.cls = o.cls;
      p.compute = o.compute;
      p.weight_dtype = o.weight_dtype;
      p.repeat = o.repeat;
      ph.ops.push_back(p);
      it = ph.ops.end() - 1;
    }
    const Roof r = roof_for(o, hw, opts);
    it->kernel_ceiling = r.kernel;
    const double n = static_cast<double>(o.repeat) * weight;
    const double ct = o.flops / r.peak, mt = o.bytes() / r.bandwidth;
    it->flops += o.flops * n;
    it->bytes_read += o.bytes_read * n;
    it->bytes_written += o.bytes_written * n;
    it->weight_bytes += o.weight_bytes * n;
    it->kv_read += o.kv_read * n;
    it->kv_written += o.kv_written * n;
    it->peak_flops = r.peak;
    it->bandwidth = r.bandwidth;
    it->compute_time_s += ct * n;
    it->memory_time_s += mt * n;
    it->time_s += std::max(ct, mt) * n;
  }
}

void finish(Phase& ph) {
  ph.time_s = 0;
  ph.totals = StepTotals();
  for (const PhaseOp& p : ph.ops) {
    ph.time_s += p.time_s;
    ph.totals.flops += p.flops;
    ph.totals.bytes_read += p.bytes_read;
    ph.totals.bytes_written += p.bytes_written;
    ph.totals.weight_bytes += p.weight_bytes;
    ph.totals.kv_read += p.kv_read;
    ph.totals.kv_written += p.kv_written;
  }
}

StepShape shape_of(const Workload& w) {
  StepShape s;
  s.batch = w.batch;
  s.attention = w.attention;
  s.assume = w.assume;
  return s;
}

int64_t decode_step_count(const Workload& w) {
  return w.first_token_from_prefill ? w.output - 1 : w.output;
}

int64_t prefill_chunk(const Workload& w) {
  return w.prefill_chunk > 0 ? std::min(w.prefill_chunk, w.prompt) : w.prompt;
}

// Working set of the largest forward call (a prefill chunk of `batch` sequences): the activation buffers of
// the forward pass (residual x, normalised xb, q, attention output, the two FFN halves), the logits (fp32),
// and for naive attention the score matrix of one layer. K and V go straight into the cache.
double activation_bytes(const ModelSpec& m, const Workload& w, int64_t batch) {
  const ModelConfig& c = m.config;
  const double rows = static_cast<double>(batch) * static_cast<double>(prefill_chunk(w));
  const double a = m.precision.act_bytes;
  const double per_row = c.dim + std::max(c.dim, c.q_dim()) + 2.0 * c.q_dim() + 2.0 * c.hidden_dim;
  const double logit_rows = w.assume.logits_all ? rows : static_cast<double>(batch);
  double bytes = rows * per_row * a + logit_rows * c.vocab_size * 4.0;
  if (w.attention == AttentionKind::Naive)
    bytes += static_cast<double>(batch) * c.n_heads * static_cast<double>(prefill_chunk(w)) *
             static_cast<double>(w.prompt) * a;
  return bytes;
}

// Names the matmuls that the kernels ceilings could not bound, and why.
std::string ceilings_note(const Estimate& e) {
  if (e.options.ceilings != Ceilings::Kernels) return "";
  if (e.hw.matmul_ceilings.empty() && e.hw.shape_ceilings.empty())
    return "no kernel ceilings for " + e.hw.key +
           " (only `tern hwprobe` measures them; a file it wrote before it did lacks them): every matmul is "
           "bounded by the hardware peaks";
  std::vector<std::string> missing;
  for (const Phase* ph : {&e.prefill, &e.decode})
    for (const PhaseOp& o : ph->ops) {
      const std::string t(dtype_name(o.weight_dtype));
      if (o.cls == OpClass::Matmul && !o.kernel_ceiling &&
          std::find(missing.begin(), missing.end(), t) == missing.end())
        missing.push_back(t);
    }
  if (missing.empty()) return "";
  std::string s = "no kernel ceiling measured for ";
  for (size_t i = 0; i < missing.size(); ++i) s += (i ? ", " : "") + missing[i];
  return s + ": those matmuls are bounded by the hardware peaks";
}

}  // namespace

const char* ceilings_name(Ceilings c) {
  return c == Ceilings::Kernels ? "kernels" : "peaks";
}

std::optional<Ceilings> parse_ceilings(std::string_view s) {
  if (s == "peaks") return Ceilings::Peaks;
  if (s == "kernels") return Ceilings::Kernels;
  return std::nullopt;
}

void assume_llm_workload(Workload& w, const ModelConfig& c) {
  w.assume.causal = false;
  w.assume.expand_kv = true;
  w.assume.logits_all = true;
  w.assume.embedding_matmul = true;
  w.assume.flash_block = c.head_dim;
  w.decode_stride = 256;
  w.first_token_from_prefill = false;
}

std::vector<MatrixShape> matrix_shapes(const ModelSpec& m, const Workload& w) {
  std::vector<MatrixShape> out;
  // One prefill chunk of the workload (with logits) and one decode step cover every matrix.
  StepShape prefill = shape_of(w), decode = shape_of(w);
  prefill.n_tokens = prefill_chunk(w);
  decode.n_tokens = 1;
  decode.kv_start = w.prompt;
  for (const StepShape& s : {prefill, decode})
    for (const OpCost& o : step_ops(m.config, m.precision, s)) {
      if (o.cls != OpClass::Matmul) continue;
      auto it = std::find_if(out.begin(), out.end(), [&](const MatrixShape& x) {
        return x.weights == o.weight_dtype && x.out == o.mm_out && x.in == o.mm_in;
      });
      if (it == out.end()) out.push_back({o.weight_dtype, o.mm_out, o.mm_in, o.mm_rows > 1});
      else it->gemm = it->gemm || o.mm_rows > 1;
    }
  return out;
}

double step_time(const std::vector<OpCost>& ops, const Hardware& hw, const EstimateOptions& opts) {
  double t = 0;
  for (const OpCost& o : ops) {
    const Roof r = roof_for(o, hw, opts);
    t += std::max(o.flops / r.peak, o.bytes() / r.bandwidth) * static_cast<double>(o.repeat);
  }
  return t;
}

MemoryUse memory_use(const ModelSpec& m, const Hardware& hw, const Workload& w) {
  MemoryUse u;
  u.weights = m.weight_bytes;
  u.kv_per_token = kv_bytes_per_token(m.config, m.precision.kv_bytes);
  const double ctx = static_cast<double>(w.prompt + w.output);
  u.kv_cache = static_cast<double>(w.batch) * ctx * u.kv_per_token;
  u.activations = activation_bytes(m, w, w.batch);
  u.total = u.weights + u.kv_cache + u.activations;
  u.capacity = hw.mem_bytes;
  // Everything but the weights grows linearly with the batch.
  u.per_sequence = ctx * u.kv_per_token + activation_bytes(m, w, 1);
  const double room = u.capacity - u.weights;
  u.max_batch = room > 0 && u.per_sequence > 0 ? static_cast<int64_t>(std::floor(room / u.per_sequence)) : 0;
  return u;
}

Status check_workload(const ModelSpec& m, const Hardware& hw, const Workload& w) {
  if (w.batch < 1) return error("batch must be at least 1 (got " + std::to_string(w.batch) + ")");
  if (w.prompt < 1) return error("prompt must be at least 1 token (got " + std::to_string(w.prompt) + ")");
  if (w.output < 1) return error("output must be at least 1 token (got " + std::to_string(w.output) + ")");
  if (w.prefill_chunk < 0) return error("prefill chunk must be 0 (whole prompt) or positive");
  if (w.decode_stride < 1) return error("decode stride must be at least 1");
  if (w.assume.flash_block < 1) return error("flash block must be at least 1");
  const int64_t ctx = w.prompt + w.output;
  const int64_t limit = m.config.max_seq_len;
  if (limit > 0 && ctx > limit)
    return error("prompt " + std::to_string(w.prompt) + " + output " + std::to_string(w.output) + " = " +
                 std::to_string(ctx) + " tokens exceeds " + m.name + "'s context of " +
                 std::to_string(limit) + " tokens by " + std::to_string(ctx - limit));
  const MemoryUse u = memory_use(m, hw, w);
  if (u.weights > u.capacity)
    return error(m.name + " does not fit in " + hw.name + ": its weights alone take " + gib(u.weights) +
                 " of " + gib(u.capacity) + ", over by " + gib(u.weights - u.capacity));
  if (u.total > u.capacity)
    return error("the workload does not fit in " + hw.name + ": it needs " + gib(u.total) + " (weights " +
                 gib(u.weights) + " + KV cache " + gib(u.kv_cache) + " + activations " + gib(u.activations) +
                 ") of " + gib(u.capacity) + ", over by " + gib(u.total - u.capacity) +
                 "; the largest batch that fits is " + std::to_string(u.max_batch));
  return Status();
}

Result<Estimate> estimate(const ModelSpec& m, const Hardware& hw, const Workload& w,
                          const EstimateOptions& opts) {
  if (hw.mem_bandwidth <= 0 || hw.peak_flops(Compute::F32) <= 0)
    return error("hardware '" + hw.key + "' has no bandwidth or f32 peak");
  if (!(opts.mem_efficiency > 0 && opts.mem_efficiency <= 1) ||
      !(opts.flop_efficiency > 0 && opts.flop_efficiency <= 1))
    return error("efficiencies must be in (0, 1]");
  TERN_TRY(check_workload(m, hw, w));

  Estimate e;
  e.model = m;
  e.hw = hw;
  e.workload = w;
  e.options = opts;
  e.params = param_count(m.config);

  // Prefill: chunks of the prompt, each a forward call of batch x chunk tokens; only the last wants logits.
  e.prefill.name = "prefill";
  const int64_t chunk = prefill_chunk(w);
  for (int64_t start = 0; start < w.prompt; start += chunk) {
    StepShape s = shape_of(w);
    s.n_tokens = std::min(chunk, w.prompt - start);
    s.kv_start = start;
    s.want_logits = start + s.n_tokens == w.prompt;
    accumulate(e.prefill, step_ops(m.config, m.precision, s), hw, opts, 1.0);
    ++e.prefill.calls;
  }
  e.prefill.kv_first = std::min(chunk, w.prompt);
  e.prefill.kv_last = w.prompt;
  finish(e.prefill);

  // Decode: step i (1-based) feeds the token generated last and attends to prompt + i keys.
  e.decode.name = "decode";
  e.decode_steps = decode_step_count(w);
  std::vector<int64_t> steps;
  for (int64_t i = 1; i <= e.decode_steps; i += w.decode_stride) steps.push_back(i);
  for (int64_t i : steps) {
    StepShape s = shape_of(w);
    s.n_tokens = 1;
    s.kv_start = w.prompt + i - 1;
    accumulate(e.decode, step_ops(m.config, m.precision, s), hw, opts,
               1.0 / static_cast<double>(steps.size()));
  }
  e.decode.calls = static_cast<int64_t>(steps.size());
  if (!steps.empty()) {
    e.decode.kv_first = w.prompt + steps.front();
    e.decode.kv_last = w.prompt + steps.back();
  }
  finish(e.decode);

  const double B = static_cast<double>(w.batch);
  e.ttft_s = e.prefill.time_s;
  e.tpot_s = e.decode.time_s;
  e.latency_s = e.ttft_s + static_cast<double>(e.decode_steps) * e.tpot_s;
  e.throughput_request = static_cast<double>(w.output) / e.latency_s;
  e.throughput_aggregate = B * static_cast<double>(w.output) / e.latency_s;
  e.decode_tok_s = e.tpot_s > 0 ? B / e.tpot_s : 0.0;
  e.prefill_tok_s = B * static_cast<double>(w.prompt) / e.ttft_s;
  e.memory = memory_use(m, hw, w);
  e.ceilings_note = ceilings_note(e);
  return e;
}

}  // namespace tern::perf
