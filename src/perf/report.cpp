#include "perf/report.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace tern::perf {

namespace {

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

// A decimal unit for a column, picked so that its largest value reads between 1 and 1000.
struct Unit {
  std::string name;
  double scale;
};
Unit pick(double max_value, const char* base) {
  static const char* prefixes[] = {"", "K", "M", "G", "T", "P"};
  int i = 0;
  double scale = 1;
  while (i < 5 && max_value >= 1000 * scale) {
    scale *= 1000;
    ++i;
  }
  return {std::string(prefixes[i]) + base, scale};
}

std::string seconds(double s) {
  if (s >= 1) return fmt("%.2f s", s);
  if (s >= 1e-3) return fmt("%.2f ms", s * 1e3);
  return fmt("%.2f us", s * 1e6);
}

std::string binary(double bytes) {
  if (bytes >= 1024.0 * 1024 * 1024) return fmt("%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  if (bytes >= 1024.0 * 1024) return fmt("%.2f MiB", bytes / (1024.0 * 1024));
  return fmt("%.1f KiB", bytes / 1024.0);
}

std::string rate(double v, const char* unit) {
  const Unit u = pick(v, unit);
  return fmt(v / u.scale >= 100 ? "%.0f %s" : "%.3g %s", v / u.scale, u.name.c_str());
}

std::string num(double v) {
  return v >= 100 ? fmt("%.0f", v) : v >= 10 ? fmt("%.1f", v) : fmt("%.2f", v);
}

// The roof an op ran under: its compute type, or for a matmul bounded by its kernel's ceilings the weight
// type whose kernel that is.
std::string roof_name(const PhaseOp& o) {
  if (o.kernel_ceiling && o.cls == OpClass::Attention) return "attn";  // tern's attention, as probed
  return o.kernel_ceiling ? dtype_lower(o.weight_dtype) : compute_name(o.compute);
}

// The kernel ceilings of the weight types a model's matmuls use, as "q4_0 GEMM 170 GOP/s, GEMV 21.3 GB/s",
// or, where its shapes were measured, one "q4_1 1536x576: GEMM 265 GOP/s at 128 tokens, GEMV 24.0 GB/s" each.
std::string kernel_ceilings_line(const Estimate& e) {
  std::string s;
  if (!e.hw.shape_ceilings.empty()) {
    for (const ShapeCeiling& c : e.hw.shape_ceilings) {
      s += fmt("%s%s %lldx%lld: ", s.empty() ? "" : "\n            ", dtype_lower(c.weights).c_str(),
               static_cast<long long>(c.out), static_cast<long long>(c.in));
      if (c.gemm_ops_per_s > 0)
        s += fmt("GEMM %s at %lld tokens, ", rate(c.gemm_ops_per_s, "OP/s").c_str(),
                 static_cast<long long>(c.tokens));
      s += "GEMV " + rate(c.gemv_bytes_per_s, "B/s");
    }
    for (const AttentionCeiling& a : e.hw.attention_ceilings)
      s += fmt("\n            attention, %d/%d heads of %d, %lld token%s after %lld cached: %s",
               a.n_heads, a.n_kv_heads, a.head_dim, static_cast<long long>(a.tokens), a.tokens == 1 ? "" : "s",
               static_cast<long long>(a.kv_start), rate(a.flops_per_s, "FLOP/s").c_str());
    return s;
  }
  std::vector<DType> used;
  for (const PhaseOp& o : e.prefill.ops)
    if (o.kernel_ceiling && std::find(used.begin(), used.end(), o.weight_dtype) == used.end())
      used.push_back(o.weight_dtype);
  for (DType t : used)
    if (const MatmulCeiling* k = e.hw.matmul_ceiling(t))
      s += fmt("%s%s GEMM %s, GEMV %s", s.empty() ? "" : "; ", dtype_lower(t).c_str(),
               rate(k->gemm_ops_per_s, "OP/s").c_str(), rate(k->gemv_bytes_per_s, "B/s").c_str());
  return s;
}

std::string table(const Phase& ph) {
  double max_flops = 0, max_bytes = 0, max_time = 0;
  for (const PhaseOp& o : ph.ops) {
    max_flops = std::max(max_flops, o.flops);
    max_bytes = std::max({max_bytes, o.bytes_read, o.bytes_written});
    max_time = std::max(max_time, o.time_s);
  }
  const Unit fu = pick(max_flops, "FLOP"), bu = pick(max_bytes, "B");
  const Unit tu = max_time >= 1 ? Unit{"s", 1} : max_time >= 1e-3 ? Unit{"ms", 1e-3} : Unit{"us", 1e-6};
  std::string s = fmt("  %-14s %4s %11s %11s %11s %9s %5s %-8s %10s %6s\n", "op", "x", fu.name.c_str(),
                      ("read " + bu.name).c_str(), ("write " + bu.name).c_str(), "FLOP/B", "roof", "bound",
                      ("time " + tu.name).c_str(), "share");
  auto row = [&](const std::string& name, const std::string& repeat, double flops, double rd, double wr,
                 const std::string& ai, const char* roof, const char* bound, double t) {
    s += fmt("  %-14s %4s %11.4g %11.4g %11.4g %9s %5s %-8s %10.4g %5.1f%%\n", name.c_str(), repeat.c_str(),
             flops / fu.scale, rd / bu.scale, wr / bu.scale, ai.c_str(), roof, bound, t / tu.scale,
             ph.time_s > 0 ? 100 * t / ph.time_s : 0.0);
  };
  for (const PhaseOp& o : ph.ops)
    row(o.name, std::to_string(o.repeat), o.flops, o.bytes_read, o.bytes_written,
        o.flops > 0 ? num(o.intensity()) : "-", roof_name(o).c_str(), o.memory_bound() ? "memory" : "compute",
        o.time_s);
  const StepTotals& t = ph.totals;
  row("total", "", t.flops, t.bytes_read, t.bytes_written, num(t.flops / t.bytes()), "", "", ph.time_s);
  return s;
}

std::string assumptions_line(const Workload& w) {
  std::string s;
  if (!w.assume.causal) s += ", no causal mask (every query sees every key)";
  if (w.assume.expand_kv) s += ", K/V streamed per query head";
  if (w.assume.logits_all) s += ", classifier on every prompt token";
  if (w.assume.embedding_matmul) s += ", embedding as a one-hot matmul";
  if (w.attention == AttentionKind::Flash && w.assume.flash_block != 128)
    s += fmt(", flash tiles of %d query rows", w.assume.flash_block);
  if (w.decode_stride > 1)
    s += fmt(", every %lld-th decode step modelled", static_cast<long long>(w.decode_stride));
  if (!w.first_token_from_prefill) s += ", `output` decode steps after the prefill";
  return s.empty() ? s : s.substr(2);
}

}  // namespace

std::string format_estimate(const Estimate& e) {
  const ModelConfig& c = e.model.config;
  const Precision& p = e.model.precision;
  const Hardware& hw = e.hw;
  const Workload& w = e.workload;
  std::string s;
  const double n = static_cast<double>(e.params);
  s += fmt("model       %s: ", e.model.name.c_str());
  s += n >= 1e9   ? fmt("%.3f B parameters", n / 1e9)
       : n >= 1e6 ? fmt("%.2f M parameters", n / 1e6)
                  : fmt("%.0f parameters", n);
  s += c.name.empty() ? "\n" : " (" + c.name + ")\n";
  s +=
      fmt("            %d layers, dim %d, ffn %d, %d query / %d kv heads of %d, vocab %d, context %d, %s "
          "classifier\n",
          c.n_layers, c.dim, c.hidden_dim, c.n_heads, c.n_kv_heads, c.head_dim, c.vocab_size, c.max_seq_len,
          c.tied_embeddings ? "tied" : "separate");
  s += "            shapes: " + e.model.source + "\n";
  s +=
      fmt("precision   weights %s (%s), KV cache %s (%s per token), activations %s; matmuls at the %s roof\n",
          p.weights_name.c_str(), binary(e.model.weight_bytes).c_str(), dtype_lower(p.kv_dtype).c_str(),
          binary(e.memory.kv_per_token).c_str(), dtype_lower(p.act_dtype).c_str(), compute_name(p.matmul));
  s += fmt("hardware    %s: %s memory at %s", hw.name.c_str(), binary(hw.mem_bytes).c_str(),
           rate(hw.mem_bandwidth, "B/s").c_str());
  for (Compute k : {Compute::F32, Compute::F16, Compute::BF16, Compute::INT8})
    if (hw.has(k))
      s += fmt(", %s %s", compute_name(k),
               rate(hw.peak_flops(k), k == Compute::INT8 ? "OP/s" : "FLOP/s").c_str());
  s += fmt("\n            ridge at the matmul roof: %.1f FLOP/B", hw.ridge(p.matmul));
  if (e.options.mem_efficiency < 1 || e.options.flop_efficiency < 1)
    s += fmt("; efficiencies: bandwidth %.0f%%, peak %.0f%%", 100 * e.options.mem_efficiency,
             100 * e.options.flop_efficiency);
  s += "\n            source: " + hw.source + "\n";
  if (e.options.ceilings == Ceilings::Kernels) {
    s += e.hw.shape_ceilings.empty()
             ? "ceilings    kernels: matmuls bounded by tern's CPU matmul on their weight type as tern hwprobe "
               "measured it\n            (the roof column names the type), other ops by the hardware roofs"
             : "ceilings    kernels: matmuls bounded by tern's CPU matmul on their own shapes, and attention by "
               "tern's attention\n            on the model's heads, measured just now (the roof column names the "
               "type, or attn), other ops\n            by the hardware roofs";
    if (const std::string k = kernel_ceilings_line(e); !k.empty()) s += "\n            " + k;
    if (!e.ceilings_note.empty()) s += "\n            " + e.ceilings_note;
    s += "\n";
  }
  s += fmt("workload    batch %lld, prompt %lld tokens, output %lld tokens, %s attention",
           static_cast<long long>(w.batch), static_cast<long long>(w.prompt),
           static_cast<long long>(w.output), attention_kind_name(w.attention));
  if (w.prefill_chunk > 0) s += fmt(", prefill in chunks of %lld", static_cast<long long>(w.prefill_chunk));
  s += "\n";
  if (const std::string a = assumptions_line(w); !a.empty()) s += "assumptions " + a + "\n";

  if (e.prefill.calls == 1)
    s += fmt("\nprefill: one forward call of %lld x %lld tokens\n", static_cast<long long>(w.batch),
             static_cast<long long>(w.prompt));
  else
    s += fmt("\nprefill: %lld forward calls of %lld x %lld tokens (the last may be shorter), totalled\n",
             static_cast<long long>(e.prefill.calls), static_cast<long long>(w.batch),
             static_cast<long long>(e.prefill.kv_first));
  s += table(e.prefill);
  if (e.decode.calls > 0) {
    s += fmt("\ndecode step of %lld x 1 token: mean of %lld step%s attending to %lld..%lld keys\n",
             static_cast<long long>(w.batch), static_cast<long long>(e.decode.calls),
             e.decode.calls == 1 ? "" : "s", static_cast<long long>(e.decode.kv_first),
             static_cast<long long>(e.decode.kv_last));
    s += table(e.decode);
  } else {
    s += "\ndecode: none (the only output token comes from the prefill)\n";
  }

  s += "\nresults\n";
  s += fmt("  TTFT                    %-12s prefill of %lld x %lld tokens\n", seconds(e.ttft_s).c_str(),
           static_cast<long long>(w.batch), static_cast<long long>(w.prompt));
  s += fmt("  TPOT                    %-12s mean decode step over the growing KV cache\n",
           seconds(e.tpot_s).c_str());
  s += fmt("  end-to-end latency      %-12s TTFT + %lld x TPOT\n", seconds(e.latency_s).c_str(),
           static_cast<long long>(e.decode_steps));
  s += fmt("  throughput per request  %-12s output / latency\n",
           fmt("%.2f tok/s", e.throughput_request).c_str());
  s += fmt("  throughput, aggregate   %-12s batch x output / latency\n",
           fmt("%.2f tok/s", e.throughput_aggregate).c_str());
  if (e.decode_tok_s > 0)
    s += fmt("  decode throughput       %-12s batch / TPOT\n", fmt("%.2f tok/s", e.decode_tok_s).c_str());
  s += fmt("  prefill throughput      %-12s batch x prompt / TTFT\n",
           fmt("%.1f tok/s", e.prefill_tok_s).c_str());
  if (e.decode.calls > 0) {
    const StepTotals& d = e.decode.totals;
    s += fmt("  decode step streams     %s: weights %.1f%%, KV cache %.1f%%, activations %.1f%%\n",
             binary(d.bytes()).c_str(), 100 * d.weight_bytes / d.bytes(),
             100 * (d.kv_read + d.kv_written) / d.bytes(),
             100 * (d.bytes() - d.weight_bytes - d.kv_read - d.kv_written) / d.bytes());
  }

  const MemoryUse& m = e.memory;
  s += "\nmemory\n";
  s += fmt("  weights       %s\n", binary(m.weights).c_str());
  s += fmt("  KV cache      %s  (%lld x %lld tokens x %s)\n", binary(m.kv_cache).c_str(),
           static_cast<long long>(w.batch), static_cast<long long>(w.prompt + w.output),
           binary(m.kv_per_token).c_str());
  s += fmt("  activations   %s  (largest forward call)\n", binary(m.activations).c_str());
  s += fmt("  total         %s of %s (%.1f%%)\n", binary(m.total).c_str(), binary(m.capacity).c_str(),
           100 * m.total / m.capacity);
  s += fmt("  largest batch that fits: %lld (each sequence adds %s)\n", static_cast<long long>(m.max_batch),
           binary(m.per_sequence).c_str());
  return s;
}

std::string estimate_to_json(const Estimate& e) {
  using J = nlohmann::ordered_json;
  const ModelConfig& c = e.model.config;
  const Precision& p = e.model.precision;
  const Workload& w = e.workload;
  J j;
  j["model"] = {{"name", e.model.name},
                {"source", e.model.source},
                {"params", e.params},
                {"dim", c.dim},
                {"hidden_dim", c.hidden_dim},
                {"n_layers", c.n_layers},
                {"n_heads", c.n_heads},
                {"n_kv_heads", c.n_kv_heads},
                {"head_dim", c.head_dim},
                {"vocab_size", c.vocab_size},
                {"max_seq_len", c.max_seq_len},
                {"tied_embeddings", c.tied_embeddings},
                {"weights", p.weights_name},
                {"weight_bytes", e.model.weight_bytes},
                {"kv_dtype", dtype_lower(p.kv_dtype)},
                {"act_dtype", dtype_lower(p.act_dtype)},
                {"matmul_roof", compute_name(p.matmul)},
                {"attention_roof", compute_name(p.attention)}};
  J peaks = J::object();
  for (Compute k : {Compute::F32, Compute::F16, Compute::BF16, Compute::INT8})
    if (e.hw.has(k)) peaks[compute_name(k)] = e.hw.peak_flops(k);
  J kernels = J::array();
  for (const MatmulCeiling& k : e.hw.matmul_ceilings)
    kernels.push_back({{"weights", dtype_name(k.weights)},
                       {"gemm_ops_per_s", k.gemm_ops_per_s},
                       {"gemv_bytes_per_s", k.gemv_bytes_per_s}});
  J shapes = J::array();
  for (const ShapeCeiling& sc : e.hw.shape_ceilings)
    shapes.push_back({{"weights", dtype_name(sc.weights)},
                      {"out", sc.out},
                      {"in", sc.in},
                      {"tokens", sc.tokens},
                      {"gemm_ops_per_s", sc.gemm_ops_per_s},
                      {"gemv_bytes_per_s", sc.gemv_bytes_per_s}});
  J attention = J::array();
  for (const AttentionCeiling& a : e.hw.attention_ceilings)
    attention.push_back({{"n_heads", a.n_heads},
                         {"n_kv_heads", a.n_kv_heads},
                         {"head_dim", a.head_dim},
                         {"tokens", a.tokens},
                         {"kv_start", a.kv_start},
                         {"flops_per_s", a.flops_per_s}});
  j["hardware"] = {{"key", e.hw.key},
                   {"name", e.hw.name},
                   {"gpu", e.hw.gpu},
                   {"bandwidth_bytes_per_s", e.hw.mem_bandwidth},
                   {"memory_bytes", e.hw.mem_bytes},
                   {"peak_per_s", peaks},
                   {"matmul_ceilings", kernels},
                   {"shape_ceilings", shapes},
                   {"attention_ceilings", attention},
                   {"source", e.hw.source}};
  j["workload"] = {{"batch", w.batch},
                   {"prompt", w.prompt},
                   {"output", w.output},
                   {"attention", attention_kind_name(w.attention)},
                   {"prefill_chunk", w.prefill_chunk},
                   {"decode_stride", w.decode_stride},
                   {"first_token_from_prefill", w.first_token_from_prefill},
                   {"causal", w.assume.causal},
                   {"expand_kv", w.assume.expand_kv},
                   {"logits_all", w.assume.logits_all},
                   {"embedding_matmul", w.assume.embedding_matmul},
                   {"flash_block", w.assume.flash_block},
                   {"mem_efficiency", e.options.mem_efficiency},
                   {"flop_efficiency", e.options.flop_efficiency},
                   {"ceilings", ceilings_name(e.options.ceilings)},
                   {"ceilings_note", e.ceilings_note}};
  auto phase = [](const Phase& ph) {
    J ops = J::array();
    for (const PhaseOp& o : ph.ops)
      ops.push_back({{"name", o.name},
                     {"class", op_class_name(o.cls)},
                     {"roof", roof_name(o)},
                     {"kernel_ceiling", o.kernel_ceiling},
                     {"repeat", o.repeat},
                     {"flops", o.flops},
                     {"bytes_read", o.bytes_read},
                     {"bytes_written", o.bytes_written},
                     {"weight_bytes", o.weight_bytes},
                     {"kv_read", o.kv_read},
                     {"kv_written", o.kv_written},
                     {"intensity", o.intensity()},
                     {"bound", o.memory_bound() ? "memory" : "compute"},
                     {"time_s", o.time_s}});
    return J{{"calls", ph.calls},   {"kv_first", ph.kv_first},  {"kv_last", ph.kv_last},
             {"time_s", ph.time_s}, {"flops", ph.totals.flops}, {"bytes", ph.totals.bytes()},
             {"ops", ops}};
  };
  j["prefill"] = phase(e.prefill);
  j["decode"] = phase(e.decode);
  j["results"] = {{"ttft_s", e.ttft_s},
                  {"tpot_s", e.tpot_s},
                  {"decode_steps", e.decode_steps},
                  {"latency_s", e.latency_s},
                  {"throughput_per_request_tok_s", e.throughput_request},
                  {"throughput_aggregate_tok_s", e.throughput_aggregate},
                  {"decode_tok_s", e.decode_tok_s},
                  {"prefill_tok_s", e.prefill_tok_s}};
  const MemoryUse& m = e.memory;
  j["memory"] = {{"weights_bytes", m.weights},           {"kv_cache_bytes", m.kv_cache},
                 {"activation_bytes", m.activations},    {"total_bytes", m.total},
                 {"capacity_bytes", m.capacity},         {"kv_bytes_per_token", m.kv_per_token},
                 {"bytes_per_sequence", m.per_sequence}, {"max_batch", m.max_batch}};
  return j.dump(2) + "\n";
}

}  // namespace tern::perf
