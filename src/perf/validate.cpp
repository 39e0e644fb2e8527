#include "perf/validate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "perf/estimator.h"
#include "perf/model_spec.h"

namespace tern::perf {

namespace {

double relative_error(double predicted, double measured) {
  return measured > 0 && predicted > 0 ? predicted / measured - 1 : NAN;
}

}  // namespace

double ValidationRow::prefill_error(Ceilings c) const {
  const std::optional<Prediction>& p = c == Ceilings::Kernels ? kernels : std::optional<Prediction>(peaks);
  return measured && p ? relative_error(p->prefill_tok_s, measured->prefill_tok_s) : NAN;
}

double ValidationRow::decode_error(Ceilings c) const {
  const std::optional<Prediction>& p = c == Ceilings::Kernels ? kernels : std::optional<Prediction>(peaks);
  return measured && p ? relative_error(p->decode_tok_s, measured->decode_tok_s) : NAN;
}

Result<std::vector<ValidationRow>> run_validation(const std::vector<std::string>& models, const Hardware& hw,
                                                  const BenchWorkload& bw, const Measurer& measure,
                                                  const ShapeProber& probe) {
  std::vector<ValidationRow> rows;
  for (const std::string& path : models) {
    auto spec = model_spec_from_file(path, hw, PrecisionChoice{});
    if (!spec) return spec.status();
    Workload w;
    w.batch = 1;
    w.prompt = bw.prompt;
    w.output = bw.output;
    w.prefill_chunk = bw.prefill_chunk;
    // tern's CPU attention keeps a query's score row in cache, so the flash byte model (scores on chip, K/V
    // streamed) is the closer of the two.
    w.attention = AttentionKind::Flash;
    if (spec->config.max_seq_len < w.prompt + w.output) {
      w.prompt = std::max<int64_t>(1, spec->config.max_seq_len / 2);
      w.output = std::max<int64_t>(2, spec->config.max_seq_len - w.prompt);
    }
    ValidationRow r;
    r.model = path;
    r.weights = spec->precision.weights_name;
    auto e = estimate(spec.value(), hw, w);
    if (!e) return error(path + ": " + e.message());
    r.peaks = {e->prefill_tok_s, e->decode_tok_s};
    Hardware shaped = hw;
    if (probe) {
      auto mc = probe(spec.value(), w);
      if (!mc) return error(path + ": " + mc.message());
      shaped.shape_ceilings = mc->shapes;
      shaped.attention_ceilings = mc->attention;
      r.probed = mc.value();
    }
    if (!shaped.matmul_ceilings.empty() || r.probed) {
      EstimateOptions kernels;
      kernels.ceilings = Ceilings::Kernels;
      auto k = estimate(spec.value(), shaped, w, kernels);
      if (!k) return error(path + ": " + k.message());
      r.kernels = Prediction{k->prefill_tok_s, k->decode_tok_s};
      if (!k->ceilings_note.empty()) r.note = "kernels: " + k->ceilings_note + "; ";
    }
    if (hw.llc_bytes > 0 && spec->weight_bytes < hw.llc_bytes)
      r.note += "weights fit in the last-level cache, so DRAM bandwidth does not bound this model; ";
    if (measure) {
      auto m = measure(path, bw);
      if (m)
        r.measured = m.value();
      else
        r.note += "not measured: " + m.message();
    }
    if (r.note.size() >= 2 && r.note.compare(r.note.size() - 2, 2, "; ") == 0)
      r.note.resize(r.note.size() - 2);
    rows.push_back(r);
  }
  return rows;
}

std::string format_validation(const std::vector<ValidationRow>& rows, const BenchWorkload& w) {
  std::string s;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "roofline vs tern bench: batch 1, prompt %lld, output %lld, prefill chunks of %lld; "
                "error = predicted / measured - 1 (targets: decode within %.0f%%, prefill within %.0f%%)\n",
                static_cast<long long>(w.prompt), static_cast<long long>(w.output),
                static_cast<long long>(w.prefill_chunk), 100 * kDecodeErrorTarget, 100 * kPrefillErrorTarget);
  s += buf;
  const bool any_kernels =
      std::any_of(rows.begin(), rows.end(), [](const ValidationRow& r) { return r.kernels.has_value(); });
  const bool any_shapes =
      std::any_of(rows.begin(), rows.end(), [](const ValidationRow& r) { return r.probed.has_value(); });
  s += any_shapes
           ? "predicted under two ceilings: peaks = the hardware's (read bandwidth, peak FLOP/s); kernels = each "
             "matmul\nbounded by tern's own matmul on its own shape and the attention by tern's attention on the "
             "model's heads,\nboth measured just before the model's run (below the table), other ops by the peaks\n"
           : "predicted under two ceilings: peaks = the hardware's (read bandwidth, peak FLOP/s); kernels = each "
             "matmul\nbounded by tern's own matmul on its weight type as tern hwprobe measured it, other ops by "
             "the peaks\n";
  if (!any_kernels)
    s += "(no matmul kernel ceilings in the hardware: a hwprobe file from an older tern hwprobe lacks them; "
         "run `tern hwprobe` again. The kernels columns are empty.)\n";
  s += "\n";
  std::snprintf(buf, sizeof buf, "%-40s %-10s %-44s  %s\n", "", "", "prefill tok/s", "decode tok/s");
  s += buf;
  std::snprintf(buf, sizeof buf, "%-40s %-10s %8s %8s %8s %8s %8s  %8s %8s %8s %8s %8s\n", "model", "weights",
                "peaks", "kernels", "measured", "err pk", "err kn", "peaks", "kernels", "measured", "err pk",
                "err kn");
  s += buf;
  auto cell = [](double v, const char* f) {
    char b[32];
    if (std::isnan(v)) return std::string("-");
    std::snprintf(b, sizeof b, f, v);
    return std::string(b);
  };
  int measured = 0, ok_peaks = 0, ok_kernels = 0;
  auto within = [](const ValidationRow& r, Ceilings c) {
    return std::fabs(r.decode_error(c)) <= kDecodeErrorTarget &&
           std::fabs(r.prefill_error(c)) <= kPrefillErrorTarget;
  };
  for (const ValidationRow& r : rows) {
    const double mp = r.measured ? r.measured->prefill_tok_s : NAN,
                 md = r.measured ? r.measured->decode_tok_s : NAN;
    const double kp = r.kernels ? r.kernels->prefill_tok_s : NAN,
                 kd = r.kernels ? r.kernels->decode_tok_s : NAN;
    std::string model = r.model.size() > 40 ? "..." + r.model.substr(r.model.size() - 37) : r.model;
    std::snprintf(buf, sizeof buf, "%-40s %-10s %8s %8s %8s %8s %8s  %8s %8s %8s %8s %8s\n", model.c_str(),
                  r.weights.c_str(), cell(r.peaks.prefill_tok_s, "%.1f").c_str(), cell(kp, "%.1f").c_str(),
                  cell(mp, "%.1f").c_str(), cell(100 * r.prefill_error(Ceilings::Peaks), "%+.1f%%").c_str(),
                  cell(100 * r.prefill_error(Ceilings::Kernels), "%+.1f%%").c_str(),
                  cell(r.peaks.decode_tok_s, "%.1f").c_str(), cell(kd, "%.1f").c_str(),
                  cell(md, "%.1f").c_str(), cell(100 * r.decode_error(Ceilings::Peaks), "%+.1f%%").c_str(),
                  cell(100 * r.decode_error(Ceilings::Kernels), "%+.1f%%").c_str());
    s += buf;
    if (!r.note.empty()) s += "  (" + r.note + ")\n";
    if (r.measured) {
      ++measured;
      ok_peaks += within(r, Ceilings::Peaks);
      ok_kernels += within(r, Ceilings::Kernels);
    }
  }
  std::snprintf(buf, sizeof buf, "\npeaks:   %d of %d measured models within both targets\n", ok_peaks,
                measured);
  s += buf;
  if (any_kernels) {
    std::snprintf(buf, sizeof buf, "kernels: %d of %d measured models within both targets\n", ok_kernels,
                  measured);
    s += buf;
  }
  return s;
}

std::string format_validation_shapes(const std::vector<ValidationRow>& rows) {
  std::string s;
  char buf[256];
  for (const ValidationRow& r : rows) {
    if (!r.probed) continue;
    s += r.model + " (" + r.weights + "), measured just before its run:\n";
    for (const ShapeCeiling& c : r.probed->shapes) {
      std::snprintf(buf, sizeof buf, "  %-5s %6lld x %-6lld", std::string(dtype_name(c.weights)).c_str(),
                    static_cast<long long>(c.out), static_cast<long long>(c.in));
      s += buf;
      if (c.gemm_ops_per_s > 0) {
        std::snprintf(buf, sizeof buf, "  GEMM %6.1f GOP/s at %lld tokens", c.gemm_ops_per_s / 1e9,
                      static_cast<long long>(c.tokens));
        s += buf;
      } else {
        s += std::string(33, ' ');
      }
      std::snprintf(buf, sizeof buf, "  GEMV %5.1f GB/s\n", c.gemv_bytes_per_s / 1e9);
      s += buf;
    }
    for (const AttentionCeiling& a : r.probed->attention) {
      std::snprintf(buf, sizeof buf, "  attention, %lld token%s after %lld cached: %.2f GFLOP/s\n",
                    static_cast<long long>(a.tokens), a.tokens == 1 ? "" : "s",
                    static_cast<long long>(a.kv_start), a.flops_per_s / 1e9);
      s += buf;
    }
  }
  return s;
}

Result<Measured> parse_bench_json(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    if (!j.is_object() || !j.contains("prefill_tok_s") || !j.contains("decode_tok_s") ||
        !j["prefill_tok_s"].is_number() || !j["decode_tok_s"].is_number())
      return error("bench output lacks numbers \"prefill_tok_s\" and \"decode_tok_s\"");
    return Measured{j["prefill_tok_s"].get<double>(), j["decode_tok_s"].get<double>()};
  } catch (const nlohmann::json::exception& e) {
    return error(std::string("bench output is not JSON: ") + e.what());
  }
}

}  // namespace tern::perf
