// tern bench: prefill and decode tok/s of a model file, with GB/s and the fraction of the memory roofline
// (runtime/bench.h does the measuring, perf/ the accounting).
#include <sys/stat.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "backend/backend.h"
#include "backend/timed_backend.h"
#include "commands.h"
#include "core/thread_pool.h"
#include "common.h"
#include "perf/hwprobe.h"
#include "runtime/bench.h"

namespace tern::cli {

namespace {

bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

// Where the time of the timed ops went: per op, ms per call-group (a decode step, or the whole prefill of
// one repetition) and its share of the phase.
std::string format_op_times(const TimedBackend& t, int steps, int prefills) {
  std::string s;
  char buf[256];
  for (bool decode : {true, false}) {
    const auto ops = t.totals(decode);
    double total = 0;
    for (const auto& o : ops) total += o.seconds;
    if (total <= 0) continue;
    const int per = decode ? steps : prefills;
    std::snprintf(buf, sizeof buf, "\n%s, by op (%d %s, warm-up included%s):\n  %-40s %12s %8s %8s\n",
                  decode ? "decode step" : "prefill", per, decode ? "steps" : "prefills",
                  decode ? "; every one-token call counts here, the prefill's last-row classifier too" : "",
                  "op", decode ? "ms / step" : "ms / prefill", "share", "calls");
    s += buf;
    for (const auto& o : ops) {
      std::snprintf(buf, sizeof buf, "  %-40s %12.3f %7.1f%% %8lld\n", o.op.c_str(), 1e3 * o.seconds / per,
                    100 * o.seconds / total, static_cast<long long>(o.calls));
      s += buf;
    }
    std::snprintf(buf, sizeof buf, "  %-40s %12.3f\n", "all timed ops", 1e3 * total / per);
    s += buf;
  }
  return s;
}

nlohmann::ordered_json op_times_json(const TimedBackend& t, int steps, int prefills) {
  nlohmann::ordered_json j;
  for (bool decode : {true, false}) {
    auto arr = nlohmann::ordered_json::array();
    const int per = decode ? steps : prefills;
    for (const auto& o : t.totals(decode))
      arr.push_back({{"op", o.op}, {"seconds_per_unit", o.seconds / per}, {"calls", o.calls}});
    j[decode ? "decode_per_step" : "prefill_per_prefill"] = arr;
  }
  return j;
}

}  // namespace

int cmd_bench(const Args& a) {
  auto path = model_path(a);
  if (!path) return fail("bench", path.message());
  BenchOptions o;
  const int64_t p = a.integer("prompt"), n = a.integer("n-gen"), r = a.integer("repetitions"),
                t = a.integer("threads");
  if (p < 1 || p > (1 << 24))
    return fail("bench", "--prompt (-p) must be a positive token count, got " + a.str("prompt"));
  if (n < 1 || n > (1 << 24))
    return fail("bench", "--n-gen (-n) must be a positive token count, got " + a.str("n-gen"));
  if (r < 1 || r > 10000)
    return fail("bench", "--repetitions (-r) must be >= 1, got " + a.str("repetitions"));
  if (t < 0 || t > 4096)
    return fail("bench", "--threads (-t) must be 0 (all cores) or positive, got " + a.str("threads"));
  o.prompt = static_cast<int>(p);
  o.output = static_cast<int>(n);
  o.repetitions = static_cast<int>(r);
  o.threads = static_cast<int>(t);
  o.seed = a.u64("seed");
  o.warmup = !a.flag("no-warmup");
  const int64_t chunk = a.integer("chunk");
  if (chunk < 1 || chunk > 65536)
    return fail("bench", "--chunk must be between 1 and 65536, got " + a.str("chunk"));
  o.max_batch = static_cast<int>(chunk);

  // The roofline needs a hwprobe measurement; bench never measures one itself (it would disturb the run).
  std::optional<perf::Hardware> hw;
  if (!a.flag("no-roofline")) {
    const std::string hw_path = a.has("hw-file") ? a.str("hw-file") : perf::default_hwprobe_path();
    if (file_exists(hw_path)) {
      auto probe = perf::load_hwprobe(hw_path);
      if (!probe) return fail("bench", probe.message());
      hw = perf::hardware_from_hwprobe(probe.value(), hw_path);
      o.hw = &hw.value();
    } else if (a.has("hw-file")) {
      return fail("bench", "--hw-file: no such file: " + hw_path);
    }
  }

  auto kv = kv_options(a);
  if (!kv) return fail("bench", kv.message());
  o.kv = kv.value();
  const std::string backend_name = a.has("device") ? a.str("device") : a.str("backend");
  auto backend = backend_from_flags(a);
  if (!backend) return fail("bench", backend.message());
  // What the backend runs on: the reference one on the calling thread, the cpu one on -t (0: physical cores).
  o.threads = backend_name == "reference" ? 1 : (o.threads > 0 ? o.threads : physical_core_count());

  // --op-times: the model runs on a TimedBackend around the chosen one.
  std::optional<TimedBackend> timed;
  if (a.flag("op-times")) timed.emplace(*backend.value());
  Backend& be = timed ? static_cast<Backend&>(*timed) : *backend.value();
  auto res = run_bench(path.value(), be, o);
  if (!res) return fail("bench", res.message());
  const int runs = o.repetitions + (o.warmup ? 1 : 0);
  // Each decode step is one forward call of one token; each repetition prefills once.
  const int steps = runs * o.output, prefills = runs;
  if (a.flag("json")) {
    std::string js = bench_to_json(res.value());
    if (timed) {
      auto j = nlohmann::ordered_json::parse(js);
      j["op_times"] = op_times_json(*timed, steps, prefills);
      js = j.dump(2) + "\n";
    }
    std::fputs(js.c_str(), stdout);
  } else {
    std::fputs(format_bench(res.value()).c_str(), stdout);
    if (timed) std::fputs(format_op_times(*timed, steps, prefills).c_str(), stdout);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace tern::cli
