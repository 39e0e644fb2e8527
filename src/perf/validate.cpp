#include "perf/validate.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "perf/estimator.h"
#include "perf/model_spec.h"

namespace tern::perf {

double ValidationRow::prefill_error() const {
  return measured && measured->prefill_tok_s > 0 ? predicted_prefill_tok_s / measured->prefill_tok_s - 1
                                                 : NAN;
}

double ValidationRow::decode_error() const {
  return measured && measured->decode_tok_s > 0 ? predicted_decode_tok_s / measured->decode_tok_s - 1 : NAN;
}

Result<std::vector<ValidationRow>> run_validation(const std::vector<std::string>& models, const Hardware& hw,
                                                  const BenchWorkload& bw, const Measurer& measure) {
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
    auto e = estimate(spec.value(), hw, w);
    if (!e) return error(path + ": " + e.message());
    ValidationRow r;
    r.model = path;
    r.weights = spec->precision.weights_name;
    r.predicted_prefill_tok_s = e->prefill_tok_s;
    r.predicted_decode_tok_s = e->decode_tok_s;
    if (hw.llc_bytes > 0 && spec->weight_bytes < hw.llc_bytes)
      r.note = "weights fit in the last-level cache, so DRAM bandwidth does not bound this model; ";
    if (measure) {
      auto m = measure(path, bw);
      if (m)
        r.measured = m.value();
      else
        r.note += "not measured: " + m.message();
    }
    rows.push_back(r);
  }
  return rows;
}

std::string format_validation(const std::vector<ValidationRow>& rows, const BenchWorkload& w) {
  std::string s;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "roofline vs tern bench: batch 1, prompt %lld, output %lld, prefill chunks of %lld; "
                "error = predicted / measured - 1 (targets: decode within %.0f%%, prefill within %.0f%%)\n\n",
                static_cast<long long>(w.prompt), static_cast<long long>(w.output),
                static_cast<long long>(w.prefill_chunk), 100 * kDecodeErrorTarget, 100 * kPrefillErrorTarget);
  s += buf;
  std::snprintf(buf, sizeof buf, "%-48s %-10s %12s %12s %8s %12s %12s %8s\n", "model", "weights",
                "prefill pred", "measured", "error", "decode pred", "measured", "error");
  s += buf;
  auto cell = [](double v, const char* f) {
    char b[32];
    if (std::isnan(v)) return std::string("-");
    std::snprintf(b, sizeof b, f, v);
    return std::string(b);
  };
  int ok = 0, measured = 0;
  for (const ValidationRow& r : rows) {
    const double mp = r.measured ? r.measured->prefill_tok_s : NAN,
                 md = r.measured ? r.measured->decode_tok_s : NAN;
    std::string model = r.model.size() > 48 ? "..." + r.model.substr(r.model.size() - 45) : r.model;
    std::snprintf(buf, sizeof buf, "%-48s %-10s %12s %12s %8s %12s %12s %8s\n", model.c_str(),
                  r.weights.c_str(), cell(r.predicted_prefill_tok_s, "%.1f").c_str(),
                  cell(mp, "%.1f").c_str(), cell(100 * r.prefill_error(), "%+.1f%%").c_str(),
                  cell(r.predicted_decode_tok_s, "%.1f").c_str(), cell(md, "%.1f").c_str(),
                  cell(100 * r.decode_error(), "%+.1f%%").c_str());
    s += buf;
    if (!r.note.empty()) s += "  (" + r.note + ")\n";
    if (r.measured) {
      ++measured;
      if (std::fabs(r.decode_error()) <= kDecodeErrorTarget &&
          std::fabs(r.prefill_error()) <= kPrefillErrorTarget)
        ++ok;
    }
  }
  std::snprintf(buf, sizeof buf, "\n%d of %d measured models within both targets\n", ok, measured);
  s += buf;
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
