// tern estimate: the analytical roofline of a model on some hardware for a workload (perf/estimator.h).
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "perf/estimator.h"
#include "perf/hwprobe.h"
#include "perf/kernel_probe.h"
#include "perf/model_spec.h"
#include "perf/presets.h"
#include "perf/report.h"
#include "perf/svg.h"
#include "perf/validate.h"

namespace tern::cli {

namespace {

using namespace tern::perf;

bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

// `host` from the saved hwprobe file, measuring (and saving) first when there is none.
Result<Hardware> host_hardware(const Args& a) {
  const std::string path = a.has("hw-file") ? a.str("hw-file") : default_hwprobe_path();
  if (!exists(path)) {
    std::fprintf(stderr,
                 "tern estimate: no hwprobe results at %s; measuring this machine (tern hwprobe)...\n",
                 path.c_str());
    auto r = run_hwprobe({});
    if (!r) return r.status();
    TERN_TRY(save_hwprobe(r.value(), path));
    return hardware_from_hwprobe(r.value(), path);
  }
  auto r = load_hwprobe(path);
  if (!r) return r.status();
  return hardware_from_hwprobe(r.value(), path);
}

Result<Hardware> pick_hardware(const Args& a, const std::string& key) {
  if (key == "host") return host_hardware(a);
  return find_hardware_preset(key);
}

Result<PrecisionChoice> precision_choice(const Args& a, const std::string& example_weights) {
  PrecisionChoice c;
  auto dtype = [&](const char* flag, std::optional<DType>& dst, const std::string& fallback) -> Status {
    const std::string v = a.has(flag) ? a.str(flag) : fallback;
    if (v.empty()) return Status();
    auto t = parse_dtype(v);
    if (!t) return error(std::string("--") + flag + ": " + t.message());
    dst = t.value();
    return Status();
  };
  TERN_TRY(dtype("weights", c.weights, example_weights));
  TERN_TRY(dtype("kv", c.kv, ""));
  TERN_TRY(dtype("act", c.act, ""));
  if (a.has("compute")) {
    auto k = parse_compute(a.str("compute"));
    if (!k) return error("--compute: unknown roof '" + a.str("compute") + "' (valid: f32, f16, bf16, int8)");
    c.matmul = *k;
  }
  return c;
}

int list_presets() {
  std::printf("model presets (-m NAME):\n");
  for (const ModelPreset& p : model_presets()) {
    const ModelConfig& c = p.config;
    std::printf(
        "  %-15s dim %5d, ffn %5d, %2d layers, %2d/%2d heads, vocab %6d, context %6d, %s; %.3f B params\n",
        p.key.c_str(), c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.max_seq_len,
        c.tied_embeddings ? "tied  " : "untied", static_cast<double>(param_count(c)) / 1e9);
    std::printf("  %-15s source: %s\n", "", p.source.c_str());
  }
  std::printf("\nhardware presets (--hw NAME):\n");
  for (const Hardware& h : hardware_presets()) {
    std::printf("  %-15s %s: %.0f GB/s, %.0f GiB; f32 %.1f, f16 %.1f, bf16 %.1f TFLOP/s, int8 %.1f TOP/s\n",
                h.key.c_str(), h.name.c_str(), h.mem_bandwidth / 1e9, h.mem_bytes / (1024.0 * 1024 * 1024),
                h.peak_flops(Compute::F32) / 1e12, h.peak_flops(Compute::F16) / 1e12,
                h.peak_flops(Compute::BF16) / 1e12, h.peak_flops(Compute::INT8) / 1e12);
    std::printf("  %-15s source: %s\n", "", h.source.c_str());
  }
  std::printf("  %-15s this machine, measured by `tern hwprobe` (saved to %s)\n", "host",
              default_hwprobe_path().c_str());
  std::printf(
      "\nexamples (--example NAME):\n  reference       llama-3-8b, f16, a100-80gb-pcie, batch 8, prompt "
      "2048, "
      "output 2048, flash attention\n");
  return 0;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs `tern bench` in a child process and reads its --json output (perf::parse_bench_json).
Result<Measured> bench_subprocess(const std::string& bench_args, const std::string& model,
                                  const BenchWorkload& w) {
  bool have_bench = false;
  for (const auto& c : commands()) have_bench = have_bench || std::string(c.name) == "bench";
  if (!have_bench) return error("`tern bench` is not in this build yet");
  std::string args = bench_args;
  auto subst = [&](const std::string& key, const std::string& value) {
    for (size_t at = args.find(key); at != std::string::npos; at = args.find(key, at + value.size()))
      args.replace(at, key.size(), value);
  };
  subst("{model}", shell_quote(model));
  subst("{prompt}", std::to_string(w.prompt));
  subst("{output}", std::to_string(w.output));
  // Resolved here: inside popen's shell, /proc/self/exe would name the shell, not tern.
  std::error_code ec;
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) return error("cannot find the tern executable (/proc/self/exe): " + ec.message());
  const std::string cmd = shell_quote(exe) + " bench " + args + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return error("cannot run: " + cmd);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int rc = ::pclose(p);
  if (rc != 0) return error("`tern bench " + args + "` failed (exit status " + std::to_string(rc) + ")");
  return parse_bench_json(out);
}

int validate(const Args& a, const Hardware& hw) {
  std::vector<std::string> models;
  if (a.has("validate-models")) {
    std::stringstream ss(a.str("validate-models"));
    for (std::string m; std::getline(ss, m, ',');)
      if (!m.empty()) models.push_back(m);
  } else {
    for (const char* m :
         {"models/SmolLM2-135M-Instruct.Q4_1.gguf", "../shared/models/stories260K/stories260K.gguf",
          "../shared/models/tiny-random/llama-2-tiny-random.gguf"})
      if (exists(m)) models.push_back(m);
  }
  if (models.empty()) return fail("estimate", "--validate: no model files (give --validate-models A,B,...)");
  BenchWorkload w;
  if (a.has("prompt")) w.prompt = a.integer("prompt");
  if (a.has("output")) w.output = a.integer("output");
  if (a.has("chunk")) w.prefill_chunk = a.integer("chunk");
  const std::string bench_args = a.str("bench-args");
  ShapeProber probe;
  if (a.flag("probe-shapes"))
    probe = [](const ModelSpec& spec, const Workload& wl) { return measure_model_ceilings(spec, wl, 0); };
  auto rows = run_validation(
      models, hw, w,
      [&](const std::string& m, const BenchWorkload& bw) { return bench_subprocess(bench_args, m, bw); }, probe);
  if (!rows) return fail("estimate", rows.message());
  std::printf("hardware: %s\n          %s\n\n", hw.name.c_str(), hw.source.c_str());
  std::fputs(format_validation(rows.value(), w).c_str(), stdout);
  if (const std::string sh = format_validation_shapes(rows.value()); !sh.empty())
    std::printf("\nceilings of each model's own weight shapes and attention, as tern's kernels ran them:\n%s",
                sh.c_str());
  return 0;
}

}  // namespace

int cmd_estimate(const Args& a) {
  if (a.flag("list")) return list_presets();

  // A named example supplies defaults that explicit flags override.
  std::string model = a.str("model"), hw_key = a.str("hw"), example_weights;
  Workload w;
  if (a.has("example")) {
    if (a.str("example") != "reference")
      return fail("estimate", "unknown example '" + a.str("example") + "' (valid: reference)");
    if (!a.has("model")) model = "llama-3-8b";
    if (!a.has("hw")) hw_key = "a100-80gb-pcie";
    example_weights = "f16";
    w.batch = 8;
    w.prompt = 2048;
    w.output = 2048;
  }

  auto hw = pick_hardware(a, hw_key);
  if (!hw) return fail("estimate", hw.message());
  if (a.flag("validate")) return validate(a, hw.value());
  if (model.empty())
    return fail("estimate", "--model (-m) is required: a model file or a preset (see --list)");

  auto choice = precision_choice(a, example_weights);
  if (!choice) return fail("estimate", choice.message());
  auto spec = resolve_model(model, hw.value(), choice.value());
  if (!spec) return fail("estimate", spec.message());

  if (a.has("batch")) w.batch = a.integer("batch");
  if (a.has("prompt")) w.prompt = a.integer("prompt");
  if (a.has("output")) w.output = a.integer("output");
  auto attn = parse_attention_kind(a.str("attn"));
  if (!attn) return fail("estimate", "--attn: unknown kind '" + a.str("attn") + "' (valid: flash, naive)");
  w.attention = *attn;
  w.prefill_chunk = a.integer("chunk");
  const std::string assume = a.str("assume");
  if (assume == "llm-workload")
    assume_llm_workload(w, spec->config);
  else if (assume != "tern")
    return fail("estimate", "--assume: unknown set '" + assume + "' (valid: tern, llm-workload)");
  if (a.flag("no-causal")) w.assume.causal = false;
  if (a.flag("expand-kv")) w.assume.expand_kv = true;
  if (a.flag("logits-all")) w.assume.logits_all = true;
  if (a.flag("embed-matmul")) w.assume.embedding_matmul = true;
  if (a.has("decode-stride")) w.decode_stride = a.integer("decode-stride");
  if (a.has("flash-block")) w.assume.flash_block = static_cast<int>(a.integer("flash-block"));

  EstimateOptions opts;
  opts.mem_efficiency = a.number("mem-eff");
  opts.flop_efficiency = a.number("flop-eff");
  auto ceilings = parse_ceilings(a.str("ceilings"));
  if (!ceilings)
    return fail("estimate", "--ceilings: unknown '" + a.str("ceilings") + "' (valid: peaks, kernels)");
  opts.ceilings = *ceilings;
  if (a.flag("probe-shapes")) {
    if (a.has("ceilings") && opts.ceilings != Ceilings::Kernels)
      return fail("estimate", "--probe-shapes measures kernel ceilings: it needs --ceilings kernels, not " +
                                  a.str("ceilings"));
    opts.ceilings = Ceilings::Kernels;
    if (hw->gpu) return fail("estimate", "--probe-shapes measures this machine's CPU matmul: use --hw host");
    // A workload that cannot run fails before the probe spends time measuring.
    if (Status st = check_workload(spec.value(), hw.value(), w); !st) return fail("estimate", st.message());
    // Every thread, as bench runs.
    auto mc = measure_model_ceilings(spec.value(), w, 0);
    if (!mc) return fail("estimate", mc.message());
    hw->shape_ceilings = mc->shapes;
    hw->attention_ceilings = mc->attention;
  }
  auto e = estimate(spec.value(), hw.value(), w, opts);
  if (!e) return fail("estimate", e.message());
  if (!e->ceilings_note.empty()) std::fprintf(stderr, "tern estimate: %s\n", e->ceilings_note.c_str());

  if (a.has("svg")) {
    std::ofstream f(a.str("svg"), std::ios::trunc);
    f << roofline_svg(e.value());
    if (!f) return fail("estimate", "--svg: cannot write '" + a.str("svg") + "'");
  }
  std::fputs((a.flag("json") ? estimate_to_json(e.value()) : format_estimate(e.value())).c_str(), stdout);
  if (a.has("svg") && !a.flag("json")) std::printf("\nroofline chart: %s\n", a.str("svg").c_str());
  return 0;
}

}  // namespace tern::cli
