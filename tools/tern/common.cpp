#include "common.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>

namespace tern::cli {

namespace {

constexpr const char* kDefaultModel = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

std::filesystem::path exe_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : p.parent_path();
}

}  // namespace

Result<std::string> model_path(const Args& a) {
  if (a.has("model")) return a.str("model");
  if (const char* env = std::getenv("TERN_MODEL"); env && *env) return std::string(env);
  std::error_code ec;
  for (const auto& base : {exe_dir().parent_path(), std::filesystem::current_path(ec)}) {
    auto p = base / kDefaultModel;
    if (!base.empty() && std::filesystem::exists(p, ec)) return p.string();
  }
  return error(std::string("no --model (-m) given and the default model ") + kDefaultModel +
               " was not found; run scripts/setup.sh to fetch it");
}

Result<SamplerParams> sampler_params(const Args& a) {
  SamplerParams sp;
  sp.temperature = static_cast<float>(a.number("temp"));
  sp.top_k = static_cast<int>(a.integer("top-k"));
  sp.top_p = static_cast<float>(a.number("top-p"));
  sp.min_p = static_cast<float>(a.number("min-p"));
  sp.repeat_penalty = static_cast<float>(a.number("repeat-penalty"));
  sp.frequency_penalty = static_cast<float>(a.number("frequency-penalty"));
  sp.presence_penalty = static_cast<float>(a.number("presence-penalty"));
  sp.penalty_last_n = static_cast<int>(a.integer("penalty-last-n"));
  sp.seed = a.has("seed") ? a.u64("seed")
                          : static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  TERN_TRY(validate(sp));
  return sp;
}

Result<KvOptions> kv_options(const Args& a) {
  KvOptions o;
  auto t = parse_kv_type(a.str("kv-type"));
  if (!t) return error("--kv-type: " + t.status().message());
  o.dtype = t.value();
  return o;
}

Result<std::unique_ptr<Backend>> backend_from_flags(const Args& a) {
  BackendOptions o;
  o.name = a.str("backend");
  if (a.has("device")) {
    if (a.has("backend") && a.str("backend") != a.str("device"))
      return error("--device " + a.str("device") + " and --backend " + a.str("backend") + " disagree; give one");
    o.name = a.str("device");
  }
  const int64_t t = a.integer("threads");
  if (t < 0 || t > 4096) return error("--threads must be 0 (all cores) or positive, got " + a.str("threads"));
  o.threads = static_cast<int>(t);
  o.matmul = a.str("matmul");
  o.graphs = !a.flag("no-graphs");
  o.float_matmul = a.str("float-matmul");
  return make_backend(o);
}

}  // namespace tern::cli
