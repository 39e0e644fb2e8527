// tern hwprobe: measure this machine's memory bandwidth and peak FLOP/s for the roofline.
#include <cstdio>

#include "commands.h"
#include "perf/hwprobe.h"

namespace tern::cli {

int cmd_hwprobe(const Args& a) {
  perf::HwprobeOptions opts;
  opts.quick = a.flag("quick");
  opts.threads = static_cast<int>(a.integer("threads"));
  if (opts.threads < 0) return fail("hwprobe", "--threads must be 0 (all) or positive");
  if (a.has("gemm-shape")) {
    long long rows = 0, cols = 0, tokens = 0;
    char end = 0;
    if (std::sscanf(a.str("gemm-shape").c_str(), "%lldx%lldx%lld%c", &rows, &cols, &tokens, &end) != 3 ||
        rows < 1 || cols < 1 || tokens < 1)
      return fail("hwprobe",
                  "--gemm-shape: expected ROWSxCOLSxTOKENS of positive numbers, e.g. 1024x2048x128 (got '" +
                      a.str("gemm-shape") + "')");
    opts.gemm_rows = rows;
    opts.gemm_cols = cols;
    opts.gemm_tokens = tokens;
  }
  auto r = perf::run_hwprobe(opts);
  if (!r) return fail("hwprobe", r.message());
  const std::string path = a.has("output") ? a.str("output") : perf::default_hwprobe_path();
  if (a.flag("json"))
    std::fputs(perf::hwprobe_to_json(r.value()).c_str(), stdout);
  else
    std::fputs(perf::format_hwprobe(r.value()).c_str(), stdout);
  std::fflush(stdout);
  if (!a.flag("no-save")) {
    Status s = perf::save_hwprobe(r.value(), path);
    if (!s) return fail("hwprobe", s.message());
    std::fprintf(stderr, "saved to %s (used by `tern estimate --hw host`)\n", path.c_str());
  }
  return 0;
}

}  // namespace tern::cli
