#include "runtime/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "formats/model_file.h"
#include "model/llama.h"

namespace tern {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

MeanSd mean_sd(const std::vector<double>& v) {
  MeanSd r;
  if (v.empty()) return r;
  for (double x : v) r.mean += x;
  r.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - r.mean) * (x - r.mean);
    r.sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return r;
}

int argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

}  // namespace

double bench_decode_bytes_per_token(const ModelConfig& c, const perf::Precision& p, int prompt, int output) {
  if (output <= 0) return 0;
  double sum = 0;
  for (int i = 0; i < output; ++i) sum += perf::decode_bytes_per_token(c, p, int64_t{prompt} + i);
  return sum / output;
}

double bench_prefill_flops(const ModelConfig& c, const perf::Precision& p, int prompt, int max_batch) {
  double flops = 0;
  for (int done = 0; done < prompt;) {
    const int chunk = std::min(max_batch, prompt - done);
    perf::StepShape s;
    s.n_tokens = chunk;
    s.kv_start = done;
    s.want_logits = done + chunk == prompt;
    flops += perf::totals(perf::step_ops(c, p, s)).flops;
    done += chunk;
  }
  return flops;
}

Result<perf::Precision> bench_precision(const ModelConfig& c, const WeightStore& w, DType kv) {
  auto sw = perf::weight_bytes_from_store(c, w);
  if (!sw) return sw.status();
  perf::Precision p;
  p.weights = sw->bytes;
  p.weights_dtype = sw->dominant;
  p.weights_name = sw->name;
  // tern's CPU path: f32 activations, the KV cache in the type chosen, whatever the hardware's units.
  p.act_dtype = DType::F32;
  p.act_bytes = 4;
  p.kv_dtype = kv;
  p.kv_bytes = perf::dtype_bytes(kv);
  p.matmul = perf::Compute::F32;
  p.attention = perf::Compute::F32;
  return p;
}

int64_t peak_rss_bytes() {
  struct rusage ru {};
  if (::getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

Result<BenchResult> run_bench(const std::string& model_path, Backend& backend, const BenchOptions& o) {
  if (o.prompt < 1) return error("--prompt (-p) must be >= 1, got " + std::to_string(o.prompt));
  if (o.output < 1) return error("--n-gen (-n) must be >= 1, got " + std::to_string(o.output));
  if (o.repetitions < 1) return error("--repetitions (-r) must be >= 1, got " + std::to_string(o.repetitions));
  if (o.max_batch < 1) return error("max_batch must be >= 1");

  const auto t_load = Clock::now();
  auto mf = load_model_file(model_path);
  if (!mf) return mf.status();
  const ModelFile& f = *mf.value();
  // Touch every weight byte once so that the load time includes reading the file, as a real load does,
  // and the first repetition does not pay for page faults.
  volatile uint8_t sink = 0;
  for (const auto& [name, t] : f.weights.all()) {
    const auto* p = static_cast<const uint8_t*>(t.data);
    uint8_t acc = 0;
    for (size_t i = 0; i < t.nbytes; i += 4096) acc ^= p[i];
    sink = sink ^ acc;
  }
  const double load_seconds = seconds_since(t_load);

  const ModelConfig& c = f.config;
  const int64_t need = int64_t{o.prompt} + o.output;
  if (need > c.max_seq_len)
    return error("--prompt (-p) " + std::to_string(o.prompt) + " + --n-gen (-n) " + std::to_string(o.output) +
                 " = " + std::to_string(need) + " tokens exceeds the context length " +
                 std::to_string(c.max_seq_len) + " of " + model_path);

  auto prec = bench_precision(c, f.weights, o.kv.dtype);
  if (!prec) return error(model_path + ": " + prec.message());

  const Backend::PrepareStats prep0 = backend.prepare_stats();
  const auto t_create = Clock::now();
  auto model = LlamaModel::create(c, f.weights, backend, static_cast<int>(need), o.max_batch, o.kv);
  if (!model) return model.status();
  LlamaModel& m = *model.value();
  const double create_seconds = seconds_since(t_create);
  const Backend::PrepareStats prep1 = backend.prepare_stats();

  // Seeded random prompt ids; id 0..2 are often <unk>/<s>/</s>, so draw from the rest when there is room.
  Rng rng(o.seed);
  std::vector<int> prompt(static_cast<size_t>(o.prompt));
  const uint32_t lo = c.vocab_size > 3 ? 3 : 0;
  for (int& id : prompt) id = static_cast<int>(lo + rng.next_u32() % (static_cast<uint32_t>(c.vocab_size) - lo));
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));

  std::vector<double> pf, dc;
  const int total = o.repetitions + (o.warmup ? 1 : 0);
  for (int rep = 0; rep < total; ++rep) {
    auto t0 = Clock::now();
    TERN_TRY(m.forward(prompt.data(), o.prompt, 0, logits.data()));
    const double t_prefill = seconds_since(t0);
    int next = argmax(logits.data(), c.vocab_size);
    t0 = Clock::now();
    for (int i = 0; i < o.output; ++i) {
      TERN_TRY(m.forward(&next, 1, o.prompt + i, logits.data()));
      next = argmax(logits.data(), c.vocab_size);
    }
    const double t_decode = seconds_since(t0);
    if (o.warmup && rep == 0) continue;
    pf.push_back(o.prompt / std::max(t_prefill, 1e-12));
    dc.push_back(o.output / std::max(t_decode, 1e-12));
  }

  BenchResult r;
  r.model = model_path;
  r.backend = backend.name();
  r.weights = prec->weights_name;
  r.config = c;
  r.threads = o.threads;
  r.prompt = o.prompt;
  r.output = o.output;
  r.repetitions = o.repetitions;
  r.load_seconds = load_seconds + create_seconds;
  r.prepare_seconds = prep1.seconds - prep0.seconds;
  r.prepare_bytes = static_cast<int64_t>(prep1.bytes - prep0.bytes);
  r.prefill_tok_s = mean_sd(pf);
  r.decode_tok_s = mean_sd(dc);
  auto ms = [](const std::vector<double>& rates) {
    std::vector<double> v;
    for (double x : rates) v.push_back(1e3 / x);
    return mean_sd(v);
  };
  r.prefill_ms_per_token = ms(pf);
  r.decode_ms_per_token = ms(dc);
  r.decode_bytes_per_token = bench_decode_bytes_per_token(c, prec.value(), o.prompt, o.output);
  r.prefill_flops = bench_prefill_flops(c, prec.value(), o.prompt, o.max_batch);
  r.weight_bytes = perf::weight_bytes_total(c, prec->weights);
  r.decode_gb_s = r.decode_tok_s.mean * r.decode_bytes_per_token / 1e9;
  r.prefill_gflop_s = r.prefill_flops * r.prefill_tok_s.mean / o.prompt / 1e9;
  if (o.hw && o.hw->mem_bandwidth > 0) {
    r.mem_bandwidth = o.hw->mem_bandwidth;
    r.roofline_tok_s = r.mem_bandwidth / r.decode_bytes_per_token;
    r.roofline_pct = 100.0 * r.decode_gb_s * 1e9 / r.mem_bandwidth;
    r.hw_source = o.hw->source;
  }
  r.peak_rss_bytes = peak_rss_bytes();
  return r;
}

std::string format_bench(const BenchResult& r) {
  std::string s;
  char buf[512];
  const ModelConfig& c = r.config;
  std::snprintf(buf, sizeof buf,
                "model: %s (%s, %d layers, dim %d, vocab %d; %.1f MB of weights)\n"
                "backend: %s, %d threads; prompt %d, output %d tokens, %d repetitions after a warm-up; "
                "load %.3f s (repacking %.1f MB of weights for the kernels: %.3f s); peak RSS %.1f MB\n\n",
                r.model.c_str(), r.weights.c_str(), c.n_layers, c.dim, c.vocab_size, r.weight_bytes / 1e6,
                r.backend.c_str(), r.threads, r.prompt, r.output, r.repetitions, r.load_seconds,
                r.prepare_bytes / 1e6, r.prepare_seconds, static_cast<double>(r.peak_rss_bytes) / 1e6);
  s += buf;
  std::snprintf(buf, sizeof buf, "%-8s %20s %18s %12s %12s\n", "phase", "tok/s (mean +- sd)", "ms/token",
                "GB/s", "% roofline");
  s += buf;
  char rate[64], mst[64], pct[32];
  std::snprintf(rate, sizeof rate, "%.2f +- %.2f", r.prefill_tok_s.mean, r.prefill_tok_s.sd);
  std::snprintf(mst, sizeof mst, "%.3f", r.prefill_ms_per_token.mean);
  std::snprintf(buf, sizeof buf, "%-8s %20s %18s %12s %12s   (%.2f GFLOP/s)\n", "prefill", rate, mst, "-", "-",
                r.prefill_gflop_s);
  s += buf;
  std::snprintf(rate, sizeof rate, "%.2f +- %.2f", r.decode_tok_s.mean, r.decode_tok_s.sd);
  std::snprintf(mst, sizeof mst, "%.3f", r.decode_ms_per_token.mean);
  if (r.mem_bandwidth > 0)
    std::snprintf(pct, sizeof pct, "%.1f%%", r.roofline_pct);
  else
    std::snprintf(pct, sizeof pct, "-");
  char gbs[32];
  std::snprintf(gbs, sizeof gbs, "%.2f", r.decode_gb_s);
  std::snprintf(buf, sizeof buf, "%-8s %20s %18s %12s %12s\n", "decode", rate, mst, gbs, pct);
  s += buf;
  std::snprintf(buf, sizeof buf, "\ndecode streams %.2f MB per token (perf/accounting.h: weights + KV cache + "
                "activations)", r.decode_bytes_per_token / 1e6);
  s += buf;
  if (r.mem_bandwidth > 0) {
    std::snprintf(buf, sizeof buf, "; roofline %.1f tok/s at %.1f GB/s (%s)\n", r.roofline_tok_s,
                  r.mem_bandwidth / 1e9, r.hw_source.c_str());
    s += buf;
  } else {
    s += "; no hwprobe results, so no roofline (run `tern hwprobe` or give --hw-file)\n";
  }
  return s;
}

std::string bench_to_json(const BenchResult& r) {
  nlohmann::ordered_json j;
  j["model"] = r.model;
  j["backend"] = r.backend;
  j["weights"] = r.weights;
  j["threads"] = r.threads;
  j["prompt"] = r.prompt;
  j["output"] = r.output;
  j["repetitions"] = r.repetitions;
  j["load_seconds"] = r.load_seconds;
  j["prepare_seconds"] = r.prepare_seconds;
  j["prepare_bytes"] = r.prepare_bytes;
  j["prefill_tok_s"] = r.prefill_tok_s.mean;
  j["prefill_tok_s_sd"] = r.prefill_tok_s.sd;
  j["decode_tok_s"] = r.decode_tok_s.mean;
  j["decode_tok_s_sd"] = r.decode_tok_s.sd;
  j["prefill_ms_per_token"] = r.prefill_ms_per_token.mean;
  j["decode_ms_per_token"] = r.decode_ms_per_token.mean;
  j["decode_bytes_per_token"] = r.decode_bytes_per_token;
  j["prefill_flops"] = r.prefill_flops;
  j["weight_bytes"] = r.weight_bytes;
  j["gb_s"] = r.decode_gb_s;
  j["prefill_gflop_s"] = r.prefill_gflop_s;
  if (r.mem_bandwidth > 0) {
    j["mem_bandwidth_gb_s"] = r.mem_bandwidth / 1e9;
    j["roofline_tok_s"] = r.roofline_tok_s;
    j["roofline_pct"] = r.roofline_pct;
    j["hw_source"] = r.hw_source;
  } else {
    j["mem_bandwidth_gb_s"] = nullptr;
    j["roofline_tok_s"] = nullptr;
    j["roofline_pct"] = nullptr;
  }
  j["peak_rss_bytes"] = r.peak_rss_bytes;
  return j.dump(2) + "\n";
}

}  // namespace tern
