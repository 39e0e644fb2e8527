// The benchmark behind `tern bench`: prefill and decode speed of one model file, with the bytes and FLOPs
// of the work from perf/accounting.h so that a measured rate can be set against the memory roofline.
//
// Method: the file is loaded once (timed). The model is created once with a KV cache of prompt + output
// positions; each repetition restarts at position 0 (so the cache is overwritten, not reused), prefills
// `prompt` seeded random token ids in one forward call (LlamaModel splits it into chunks of max_batch), then
// decodes `output` tokens greedily, one forward call each. The first repetition is a warm-up and is not
// counted. Rates are reported as mean and sample standard deviation over the counted repetitions.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "core/status.h"
#include "formats/weights.h"
#include "model/config.h"
#include "perf/accounting.h"
#include "perf/hardware.h"
#include "runtime/kv_cache.h"

namespace tern {

struct BenchOptions {
  int prompt = 512;       // prompt tokens prefilled per repetition
  int output = 128;       // tokens decoded per repetition
  int repetitions = 5;    // counted repetitions (a warm-up one runs first)
  bool warmup = true;
  int max_batch = 256;    // tokens per forward call of the prefill (LlamaModel's chunk)
  uint64_t seed = 1234;   // of the random prompt ids
  int threads = 0;        // recorded in the result; the backend is built by the caller
  KvOptions kv;           // the KV cache type
  // Optional hardware for the roofline columns (a hwprobe measurement); without it they stay 0.
  const perf::Hardware* hw = nullptr;
};

struct MeanSd {
  double mean = 0, sd = 0;  // sd: sample standard deviation (n - 1), 0 for one sample
};

struct BenchResult {
  std::string model;  // path
  std::string backend;
  std::string weights;  // "Q4_0", "Q4_K+Q6_K"
  ModelConfig config;
  int threads = 0;
  int prompt = 0, output = 0, repetitions = 0;
  double load_seconds = 0;     // reading the file and creating the model (prepare included)
  double prepare_seconds = 0;  // of which the backend's prepare(): repacking weights for its kernels
  int64_t prepare_bytes = 0;   // memory of those repacked copies
  MeanSd prefill_tok_s, decode_tok_s;
  MeanSd prefill_ms_per_token, decode_ms_per_token;
  // Accounting (perf/accounting.h), weights at their stored types, f32 activations and KV cache:
  double decode_bytes_per_token = 0;  // mean over the decode steps (kv_len = prompt + i, i = 0..output-1)
  double prefill_flops = 0;           // of the whole prompt, in chunks of max_batch, logits for the last
  double weight_bytes = 0;            // the file's tensor bytes
  double decode_gb_s = 0;             // decode_tok_s.mean * decode_bytes_per_token / 1e9
  double prefill_gflop_s = 0;         // prefill_flops * prefill_tok_s.mean / prompt / 1e9
  // Against the hardware, when one was given (0 otherwise):
  double mem_bandwidth = 0;       // bytes/s
  double roofline_tok_s = 0;      // mem_bandwidth / decode_bytes_per_token
  double roofline_pct = 0;        // 100 * decode_gb_s * 1e9 / mem_bandwidth
  std::string hw_source;
  int64_t peak_rss_bytes = 0;     // getrusage(RUSAGE_SELF) ru_maxrss, after the run
};

// Mean decode bytes per token over `output` decode steps after a `prompt`-token prefill (kv_len = prompt + i
// for step i), from perf::decode_bytes_per_token.
double bench_decode_bytes_per_token(const ModelConfig& c, const perf::Precision& p, int prompt, int output);

// FLOPs of prefilling `prompt` tokens in forward calls of at most `max_batch`, logits for the last only.
double bench_prefill_flops(const ModelConfig& c, const perf::Precision& p, int prompt, int max_batch);

// The Precision tern's CPU path runs a loaded file at: the tensors' own weight types, f32 activations and
// KV cache (perf::choose_precision for a CPU).
Result<perf::Precision> bench_precision(const ModelConfig& c, const WeightStore& w, DType kv = DType::F32);

// Loads `model_path` and runs the benchmark on `backend`. Errors name the flag or the file: a prompt plus
// output longer than the model's context, a non-positive count, an unreadable model.
Result<BenchResult> run_bench(const std::string& model_path, Backend& backend, const BenchOptions& opts);

// Peak resident set size of this process so far, in bytes.
int64_t peak_rss_bytes();

// The human table and the JSON object (keys: model, backend, weights, threads, prompt, output, repetitions,
// load_seconds, prepare_seconds, prepare_bytes, prefill_tok_s, prefill_tok_s_sd, decode_tok_s, decode_tok_s_sd,
// prefill_ms_per_token,
// decode_ms_per_token, decode_bytes_per_token, prefill_flops, weight_bytes, gb_s, prefill_gflop_s,
// mem_bandwidth_gb_s, roofline_tok_s, roofline_pct (null without hardware), peak_rss_bytes).
std::string format_bench(const BenchResult& r);
std::string bench_to_json(const BenchResult& r);

}  // namespace tern
