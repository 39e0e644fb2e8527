// GGUF files of architecture "llama" -> ModelConfig + tensor views into the map.
#include <atomic>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "formats/model_file.h"
#include "formats/quant_check.h"
#include "model/llama.h"

namespace tern {

const char* model_format_name(ModelFormat f) {
  switch (f) {
    case ModelFormat::Gguf: return "gguf";
    case ModelFormat::Llama2c: return "llama2.c";
    case ModelFormat::HfFolder: return "hugging face folder";
  }
  return "?";
}

namespace {

// Every quantized tensor's f16 block scales must be finite (quant_check.h). The scan reads one 2-byte field
// per block straight from the map and is bound by memory bandwidth; the tensors are shared out over up to
// two threads (docs/quantization.md gives its cost). The first error in tensor order is reported.
Status check_gguf_quant_scales(const WeightStore& w, const std::string& path) {
  std::vector<const TensorView*> quant;
  uint64_t bytes = 0;
  for (const auto& [name, t] : w.all())
    if (auto info = dtype_info(static_cast<uint32_t>(t.dtype)); info && info->block_elems > 1) {
      quant.push_back(&t);
      bytes += t.nbytes;
    }
  std::vector<Status> st(quant.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < quant.size();) st[i] = check_quant_scales(*quant[i], path);
  };
  if (bytes >= (64u << 20) && std::thread::hardware_concurrency() > 1) {
    std::thread helper(work);
    work();
    helper.join();
  } else {
    work();
  }
  for (Status& s : st) TERN_TRY(std::move(s));
  return Status();
}

}  // namespace

Result<std::shared_ptr<ModelFile>> load_gguf_model(const std::string& path) {
  auto g = GgufFile::open(path);
  if (!g) return g.status();
  const GgufFile& gf = g.value();
  auto m = std::make_shared<ModelFile>();
  m->path = path;
  m->format = ModelFormat::Gguf;
  ModelConfig& c = m->config;

  auto arch = gf.get_string("general.architecture");
  if (!arch) return arch.status();
  if (arch.value() != "llama")
    return error(path + ": architecture '" + arch.value() + "' is not supported (supported: llama)");
  c.arch = arch.value();
  if (auto name = gf.get_string("general.name")) c.name = name.value();
  if (gf.tensors().empty()) return error(path + ": has no tensors (a vocab-only file cannot be run as a model)");

  const std::string p = c.arch + ".";
  auto get_int = [&](const std::string& key, int& out) -> Status {
    auto v = gf.get_uint(p + key);
    if (!v) return v.status();
    if (v.value() > (1u << 30)) return error(path + ": key '" + p + key + "' = " + std::to_string(v.value()) + " is absurd");
    out = static_cast<int>(v.value());
    return Status();
  };
  TERN_TRY(get_int("embedding_length", c.dim));
  TERN_TRY(get_int("feed_forward_length", c.hidden_dim));
  TERN_TRY(get_int("block_count", c.n_layers));
  TERN_TRY(get_int("attention.head_count", c.n_heads));
  TERN_TRY(get_int("context_length", c.max_seq_len));
  c.n_kv_heads = c.n_heads;
  if (gf.find(p + "attention.head_count_kv")) TERN_TRY(get_int("attention.head_count_kv", c.n_kv_heads));
  c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
  if (gf.find(p + "attention.key_length")) TERN_TRY(get_int("attention.key_length", c.head_dim));
  if (gf.find(p + "attention.value_length")) {
    int vlen = 0;
    TERN_TRY(get_int("attention.value_length", vlen));
    if (vlen != c.head_dim)
      return error(path + ": key_length " + std::to_string(c.head_dim) + " != value_length " + std::to_string(vlen) +
                   " is not supported");
  }
  if (gf.find(p + "rope.freq_base")) {
    auto v = gf.get_float(p + "rope.freq_base");
    if (!v) return v.status();
    c.rope_theta = static_cast<float>(v.value());
  }
  if (gf.find(p + "attention.layer_norm_rms_epsilon")) {
    auto v = gf.get_float(p + "attention.layer_norm_rms_epsilon");
    if (!v) return v.status();
    c.norm_eps = static_cast<float>(v.value());
  }
  if (gf.find(p + "rope.dimension_count")) {
    int rd = 0;
    TERN_TRY(get_int("rope.dimension_count", rd));
    if (rd != c.head_dim)
      return error(path + ": key '" + p + "rope.dimension_count' = " + std::to_string(rd) +
                   " (partial rotary) is not supported; head_dim is " + std::to_string(c.head_dim));
  }
  if (const GgufValue* st = gf.find(p + "rope.scaling.type"); st && st->type == GgufType::STRING && st->str != "none")
    return error(path + ": rope scaling '" + st->str + "' is not supported yet");
  // GGUF llama files hold Q/K rows in adjacent-pair order (the converter permutes them from HF's layout).
  c.rope_style = RopeStyle::Adjacent;

  for (const auto& info : gf.tensors()) {
    auto v = gf.view(info);
    if (!v) return v.status();
    m->weights.add(std::move(v.value()));
  }
  TERN_TRY(check_gguf_quant_scales(m->weights, path));
  c.tied_embeddings = m->weights.find("output.weight") == nullptr;
  // A llama3 RoPE scaling: llama.cpp's converter stores the per-pair divisors of the base frequencies as
  // rope_freqs.weight (head_dim/2 floats) rather than as metadata keys.
  if (const TensorView* rf = m->weights.find("rope_freqs.weight")) {
    if (rf->dtype != DType::F32 || rf->shape != std::vector<int64_t>{c.head_dim / 2})
      return error(path + ": tensor 'rope_freqs.weight' has type " + std::string(dtype_name(rf->dtype)) +
                   " and shape " + rf->shape_str() + ", expected F32 [" + std::to_string(c.head_dim / 2) + "]");
    const float* f = static_cast<const float*>(rf->data);
    c.rope_freq_factors.assign(f, f + c.head_dim / 2);
  }
  // Projection biases (optional in llama.cpp's llama architecture): all four attention ones or none, and
  // likewise for the feed-forward; validate_llama_weights names any that is missing.
  c.attn_bias = m->weights.find("blk.0.attn_q.bias") != nullptr;
  c.mlp_bias = m->weights.find("blk.0.ffn_gate.bias") != nullptr;
  const TensorView* emb = m->weights.find("token_embd.weight");
  if (!emb) return error(path + ": missing tensor 'token_embd.weight'");
  c.vocab_size = static_cast<int>(emb->shape[0]);
  if (gf.find(p + "vocab_size")) {
    int vs = 0;
    TERN_TRY(get_int("vocab_size", vs));
    if (vs != c.vocab_size)
      return error(path + ": key '" + p + "vocab_size' = " + std::to_string(vs) + " but tensor 'token_embd.weight' has " +
                   std::to_string(c.vocab_size) + " rows");
  }
  TERN_TRY(validate_config(c, path));
  m->weights.keep_alive(gf.file());
  m->gguf = std::move(g.value());
  return m;
}

Result<std::shared_ptr<ModelFile>> load_model_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return load_hf_model(path);  // validates its own weights
  auto f = MappedFile::open(path);
  if (!f) return f.status();
  // A file named .gguf without the magic is a damaged GGUF: the GGUF parser says "bad magic", where the
  // llama2.c reader would report its first bytes as an absurd dim.
  bool is_gguf = path.ends_with(".gguf") ||
                 (f.value()->size() >= 4 && std::memcmp(f.value()->data(), "GGUF", 4) == 0);
  f.value().reset();
  auto m = is_gguf ? load_gguf_model(path) : load_llama2c(path);
  if (!m) return m;
  TERN_TRY(validate_llama_weights(m.value()->config, m.value()->weights, path));
  return m;
}

}  // namespace tern
