#include "perf/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <numbers>
#include <set>
#include <vector>

namespace tern::perf {

namespace {

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::string xml(const std::string& s) {
  std::string r;
  for (char c : s) {
    switch (c) {
      case '&': r += "&amp;"; break;
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '"': r += "&quot;"; break;
      default: r += c;
    }
  }
  return r;
}

// si(1e12) = "1T", si(0.01) = "0.01"; with a unit: si(3.12e14, "FLOP/s") = "312 TFLOP/s".
std::string si(double v, const char* unit = nullptr) {
  const char* prefixes[] = {"", "k", "M", "G", "T", "P", "E"};
  int i = 0;
  if (v >= 1)
    while (v >= 1000 && i < 6) {
      v /= 1000;
      ++i;
    }
  const double shown = v < 1 ? v : std::round(v * 100) / 100;
  return unit ? fmt("%g %s%s", shown, prefixes[i], unit) : fmt("%g%s", shown, prefixes[i]);
}

struct Point {
  double ai, perf;
  std::string name, tip;
  bool decode;
  double px = 0, py = 0;
};

constexpr double W = 980, H = 640, L = 90, R = 230, T = 56, B = 70;
constexpr double PW = W - L - R, PH = H - T - B;

}  // namespace

std::string roofline_svg(const Estimate& e) {
  const Hardware& hw = e.hw;
  const double bw = e.prefill.ops.empty() ? hw.mem_bandwidth : e.prefill.ops.front().bandwidth;
  std::vector<Point> pts;
  std::set<Compute> roofs = {Compute::F32};
  std::vector<std::string> skipped;
  for (const Phase* ph : {&e.prefill, &e.decode}) {
    const bool decode = ph == &e.decode;
    for (const PhaseOp& o : ph->ops) {
      if (o.flops <= 0 || o.bytes() <= 0 || o.time_s <= 0) {
        if (!decode) skipped.push_back(o.name);
        continue;
      }
      roofs.insert(o.compute);
      Point p;
      p.ai = o.intensity();
      p.perf = o.flops_per_s();
      p.name = o.name;
      p.decode = decode;
      // A matmul under --ceilings kernels sits under its weight type's kernel ceilings, not a drawn roof.
      const std::string roof = o.kernel_ceiling ? "tern " + dtype_lower(o.weight_dtype) + " matmul"
                                                : std::string(compute_name(o.compute));
      p.tip = fmt("%s %s: %.4g GFLOP, %.4g MB moved, %.3g FLOP/B, %s-bound under the %s roof, %.4g ms",
                  decode ? "decode" : "prefill", o.name.c_str(), o.flops / 1e9, o.bytes() / 1e6, p.ai,
                  o.memory_bound() ? "memory" : "compute", roof.c_str(), o.time_s * 1e3);
      pts.push_back(p);
    }
  }

  // Axis ranges: whole decades around the points and the ridge points.
  double ai_lo = 1e30, ai_hi = 0, f_lo = 1e30, f_hi = 0;
  for (const Point& p : pts) {
    ai_lo = std::min(ai_lo, p.ai);
    ai_hi = std::max(ai_hi, p.ai);
    f_lo = std::min(f_lo, p.perf);
  }
  for (Compute c : roofs) {
    const double peak = hw.peak_flops(c) * e.options.flop_efficiency;
    ai_lo = std::min(ai_lo, peak / bw);
    ai_hi = std::max(ai_hi, peak / bw);
    f_hi = std::max(f_hi, peak);
  }
  const double lx0 = std::floor(std::log10(ai_lo / 2)), lx1 = std::ceil(std::log10(ai_hi * 2));
  double ly1 = std::ceil(std::log10(f_hi * 1.5));
  double ly0 = std::floor(std::log10(std::min(f_lo, bw * std::pow(10, lx0)) / 1.5));
  ly0 = std::max(ly0, ly1 - 9);  // at most nine decades tall
  auto X = [&](double ai) { return L + (std::log10(ai) - lx0) / (lx1 - lx0) * PW; };
  auto Y = [&](double f) { return T + (ly1 - std::log10(f)) / (ly1 - ly0) * PH; };

  std::string s;
  s += fmt(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n",
      W, H, W, H);
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  const Workload& w = e.workload;
  s += fmt("<text x=\"%.0f\" y=\"22\" font-size=\"15\" font-weight=\"bold\">Roofline: %s (%s) on %s</text>\n",
           L, xml(e.model.name).c_str(), xml(e.model.precision.weights_name).c_str(), xml(hw.name).c_str());
  s +=
      fmt("<text x=\"%.0f\" y=\"40\" fill=\"#555\">batch %lld, prompt %lld, output %lld, %s attention; TTFT "
          "%.4g ms, "
          "TPOT %.4g ms</text>\n",
          L, static_cast<long long>(w.batch), static_cast<long long>(w.prompt),
          static_cast<long long>(w.output), attention_kind_name(w.attention), e.ttft_s * 1e3, e.tpot_s * 1e3);

  // Grid and tick labels, one per decade.
  s += "<g stroke=\"#e5e5e5\">\n";
  for (double d = lx0; d <= lx1; ++d)
    s += fmt("<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\"/>\n", X(std::pow(10, d)), T,
             X(std::pow(10, d)), T + PH);
  for (double d = ly0; d <= ly1; ++d)
    s += fmt("<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\"/>\n", L, Y(std::pow(10, d)), L + PW,
             Y(std::pow(10, d)));
  s += "</g>\n";
  for (double d = lx0; d <= lx1; ++d)
    s += fmt("<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n", X(std::pow(10, d)),
             T + PH + 18, si(std::pow(10, d)).c_str());
  for (double d = ly0; d <= ly1; ++d)
    s += fmt("<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", L - 6, Y(std::pow(10, d)) + 4,
             si(std::pow(10, d)).c_str());
  s += fmt("<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#333\"/>\n", L,
           T, PW, PH);
  s +=
      fmt("<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">arithmetic intensity (FLOP per byte of memory "
          "traffic)</text>\n",
          L + PW / 2, H - 22);
  s += fmt(
      "<text transform=\"translate(22 %.0f) rotate(-90)\" text-anchor=\"middle\">attainable FLOP/s</text>\n",
      T + PH / 2);

  // Roofs: bandwidth x intensity up to each ridge, then the peak.
  const double x_min = std::pow(10, lx0), x_max = std::pow(10, lx1), f_min = std::pow(10, ly0);
  const double x_start = std::max(x_min, f_min / bw);
  for (Compute c : roofs) {
    const double peak = hw.peak_flops(c) * e.options.flop_efficiency;
    const double ridge = peak / bw;
    s +=
        fmt("<polyline fill=\"none\" stroke=\"#222\" stroke-width=\"2\" points=\"%.1f,%.1f %.1f,%.1f "
            "%.1f,%.1f\"/>\n",
            X(x_start), Y(bw * x_start), X(ridge), Y(peak), X(x_max), Y(peak));
    s += fmt("<text x=\"%.0f\" y=\"%.1f\">%s roof %s (ridge %.3g)</text>\n", L + PW + 6, Y(peak) + 4,
             compute_name(c), si(peak, "FLOP/s").c_str(), ridge);
  }
  {
    const double angle = -std::atan((PH / (ly1 - ly0)) / (PW / (lx1 - lx0))) * 180 / std::numbers::pi;
    const double ax = x_start * 3;
    s +=
        fmt("<text transform=\"translate(%.1f %.1f) rotate(%.1f)\" y=\"-6\" fill=\"#222\">memory %s</text>\n",
            X(ax), Y(bw * ax), angle, si(bw, "B/s").c_str());
  }

  // Points, with labels merged where they would overlap.
  for (Point& p : pts) {
    p.px = X(p.ai);
    p.py = Y(p.perf);
  }
  for (const Point& p : pts) {
    if (p.decode)
      s +=
          fmt("<rect x=\"%.1f\" y=\"%.1f\" width=\"9\" height=\"9\" fill=\"#d62728\" "
              "fill-opacity=\"0.8\"><title>%s</title></rect>\n",
              p.px - 4.5, p.py - 4.5, xml(p.tip).c_str());
    else
      s +=
          fmt("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"#1f77b4\" "
              "fill-opacity=\"0.8\"><title>%s</title></circle>\n",
              p.px, p.py, xml(p.tip).c_str());
  }
  // Labels: names of points within a few pixels share one label; each label takes the first slot above or
  // below its point that does not overlap a label already placed (10 px text, about 5.6 px per character).
  struct Box {
    double x0, y0, x1, y1;
  };
  std::vector<Box> placed;
  std::vector<bool> used(pts.size(), false);
  for (size_t i = 0; i < pts.size(); ++i) {
    if (used[i]) continue;
    std::string label = pts[i].name;
    for (size_t j = i + 1; j < pts.size(); ++j)
      if (!used[j] && pts[j].decode == pts[i].decode &&
          std::hypot(pts[j].px - pts[i].px, pts[j].py - pts[i].py) < 12) {
        used[j] = true;
        label += ", " + pts[j].name;
      }
    const double width = 5.6 * static_cast<double>(label.size()), x = pts[i].px + 7;
    const double first = pts[i].decode ? 14 : -6, step = pts[i].decode ? 12 : -12;
    double y = pts[i].py + first;
    for (int attempt = 0; attempt < 12; ++attempt) {
      const double cand = pts[i].py + first + step * attempt;
      const Box b{x, cand - 9, x + width, cand + 2};
      const bool clash = std::any_of(placed.begin(), placed.end(), [&](const Box& o) {
        return b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1;
      });
      y = cand;
      if (!clash) break;
    }
    placed.push_back({x, y - 9, x + width, y + 2});
    s += fmt("<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"%s\">%s</text>\n", x, y,
             pts[i].decode ? "#a01010" : "#15507a", xml(label).c_str());
  }

  // Legend and notes.
  const double lx = L + PW + 10, ly = T + PH - 60;
  s +=
      fmt("<circle cx=\"%.0f\" cy=\"%.0f\" r=\"5\" fill=\"#1f77b4\"/><text x=\"%.0f\" y=\"%.0f\">prefill "
          "op</text>\n",
          lx, ly, lx + 10, ly + 4);
  s +=
      fmt("<rect x=\"%.0f\" y=\"%.0f\" width=\"9\" height=\"9\" fill=\"#d62728\"/><text x=\"%.0f\" "
          "y=\"%.0f\">decode op (mean step)</text>\n",
          lx - 4.5, ly + 15.5, lx + 10, ly + 24);
  if (!skipped.empty()) {
    std::string names;
    for (const auto& n : skipped) names += (names.empty() ? "" : ", ") + n;
    s += fmt("<text x=\"%.0f\" y=\"%.0f\" font-size=\"10\" fill=\"#555\">not plotted (no FLOPs):</text>\n",
             lx - 5, ly + 46);
    s += fmt("<text x=\"%.0f\" y=\"%.0f\" font-size=\"10\" fill=\"#555\">%s</text>\n", lx - 5, ly + 59,
             xml(names).c_str());
  }
  s += "</svg>\n";
  return s;
}

}  // namespace tern::perf
