#include "perf/model_spec.h"

#include <sys/stat.h>

#include "formats/model_file.h"
#include "perf/presets.h"

namespace tern::perf {

namespace {

Compute float_compute(DType t) {
  switch (t) {
    case DType::F16: return Compute::F16;
    case DType::BF16: return Compute::BF16;
    default: return Compute::F32;
  }
}

}  // namespace

Result<Precision> choose_precision(Precision p, const Hardware& hw, const PrecisionChoice& choice) {
  const DType w = p.weights_dtype;
  const bool quantised = !dtype_is_float(w);
  DType act = DType::F32;
  if (hw.gpu) act = (w == DType::BF16) ? DType::BF16 : (w == DType::F32 ? DType::F32 : DType::F16);
  if (choice.act) act = *choice.act;
  if (!dtype_is_float(act))
    return error("activations must be f32, f16 or bf16 (got " + dtype_lower(act) + ")");
  DType kv = hw.gpu ? act : DType::F32;
  if (choice.kv) kv = *choice.kv;
  if (!(dtype_is_float(kv) || kv == DType::Q8_0 || kv == DType::Q4_0))
    return error("the KV cache must be f32, f16, bf16, q8_0 or q4_0 (got " + dtype_lower(kv) + ")");

  Compute mm;
  if (hw.gpu) {
    mm = quantised ? float_compute(act) : float_compute(w);
  } else if (w == DType::BF16) {
    mm = hw.has(Compute::BF16) ? Compute::BF16 : Compute::F32;
  } else if (quantised) {
    mm = hw.has(Compute::INT8) ? Compute::INT8 : Compute::F32;
  } else {
    mm = Compute::F32;
  }
  if (choice.matmul) mm = *choice.matmul;

  p.act_dtype = act;
  p.act_bytes = dtype_bytes(act);
  p.kv_dtype = kv;
  p.kv_bytes = dtype_bytes(kv);
  p.matmul = mm;
  p.attention = float_compute(act);
  return p;
}

Result<ModelSpec> model_spec_from_preset(const std::string& key, const Hardware& hw,
                                         const PrecisionChoice& choice) {
  auto preset = find_model_preset(key);
  if (!preset) return preset.status();
  ModelSpec m;
  m.name = key;
  m.source = preset->source;
  m.config = preset->config;
  const DType w = choice.weights.value_or(DType::F16);
  Precision p;
  p.weights = uniform_weight_bytes(w);
  p.weight_types = uniform_weight_types(w);
  p.weights_dtype = w;
  p.weights_name = std::string(dtype_name(w));
  auto chosen = choose_precision(p, hw, choice);
  if (!chosen) return chosen.status();
  m.precision = chosen.value();
  m.weight_bytes = weight_bytes_total(m.config, m.precision.weights);
  return m;
}

Result<ModelSpec> model_spec_from_file(const std::string& path, const Hardware& hw,
                                       const PrecisionChoice& choice) {
  auto mf = load_model_file(path);
  if (!mf) return mf.status();
  const ModelFile& f = *mf.value();
  ModelSpec m;
  m.name = path;
  m.source = std::string(model_format_name(f.format)) + ": " + path;
  m.config = f.config;
  Precision p;
  if (choice.weights) {  // what the model would be after converting every matrix to this type
    p.weights = uniform_weight_bytes(*choice.weights);
    p.weight_types = uniform_weight_types(*choice.weights);
    p.weights_dtype = *choice.weights;
    p.weights_name = std::string(dtype_name(*choice.weights));
  } else {
    auto sw = weight_bytes_from_store(f.config, f.weights);
    if (!sw) return error(path + ": " + sw.message());
    p.weights = sw->bytes;
    p.weight_types = sw->types;
    p.weights_dtype = sw->dominant;
    p.weights_name = sw->name;
  }
  auto chosen = choose_precision(p, hw, choice);
  if (!chosen) return chosen.status();
  m.precision = chosen.value();
  m.weight_bytes = choice.weights ? weight_bytes_total(m.config, m.precision.weights)
                                  : static_cast<double>(f.weights.total_bytes());
  return m;
}

Result<ModelSpec> resolve_model(const std::string& name_or_path, const Hardware& hw,
                                const PrecisionChoice& choice) {
  if (find_model_preset(name_or_path)) return model_spec_from_preset(name_or_path, hw, choice);
  struct stat st {};
  if (::stat(name_or_path.c_str(), &st) != 0)
    return error("unknown model '" + name_or_path +
                 "': no such file, and not a preset (presets: " + model_preset_names() + ")");
  return model_spec_from_file(name_or_path, hw, choice);
}

}  // namespace tern::perf
