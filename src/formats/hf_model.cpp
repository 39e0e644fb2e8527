// A Hugging Face model folder (config.json + safetensors) -> ModelConfig + tensor views under GGUF names.
//
// Names: model.embed_tokens -> token_embd, model.norm -> output_norm, lm_head -> output, and
// model.layers.N.<part> -> blk.N.<part'> by kLayerNames below; ".weight" and ".bias" carry over.
// Q/K rows are mapped as they are, in Hugging Face's rotate_half order, so the config says
// RopeStyle::HalfSplit; `tern convert` is where rows are permuted into GGUF's adjacent-pair order.
#include <cstring>
#include <filesystem>

#include "formats/hf_config.h"
#include "formats/model_file.h"
#include "formats/safetensors.h"
#include "model/llama.h"

namespace tern {

namespace {

struct NamePair {
  const char* hf;
  const char* gguf;
};
constexpr NamePair kGlobalNames[] = {
    {"model.embed_tokens", "token_embd"}, {"model.norm", "output_norm"}, {"lm_head", "output"}};
constexpr NamePair kLayerNames[] = {
    {"self_attn.q_proj", "attn_q"},     {"self_attn.k_proj", "attn_k"},        {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"}, {"mlp.gate_proj", "ffn_gate"},        {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},       {"input_layernorm", "attn_norm"},     {"post_attention_layernorm", "ffn_norm"}};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Splits "stem.weight" / "stem.bias" into stem and ".weight"/".bias"; false for anything else.
bool split_kind(const std::string& name, std::string& stem, std::string& kind) {
  for (const char* k : {".weight", ".bias"})
    if (ends_with(name, k)) {
      stem = name.substr(0, name.size() - std::strlen(k));
      kind = k;
      return true;
    }
  return false;
}

// "model.layers.N.rest" -> N and rest; false if the name has another form.
bool split_layer(const std::string& stem, const char* prefix, int& layer, std::string& rest) {
  const size_t plen = std::strlen(prefix);
  if (stem.compare(0, plen, prefix) != 0) return false;
  size_t i = plen, n = 0;
  long v = 0;
  while (i < stem.size() && stem[i] >= '0' && stem[i] <= '9' && n < 7) v = v * 10 + (stem[i++] - '0'), ++n;
  if (n == 0 || i >= stem.size() || stem[i] != '.') return false;
  layer = static_cast<int>(v);
  rest = stem.substr(i + 1);
  return true;
}

// The GGUF name of a Hugging Face tensor name, or "" when it is not a Llama weight.
std::string to_gguf_name(const std::string& hf, int& layer) {
  layer = -1;
  std::string stem, kind, rest;
  if (!split_kind(hf, stem, kind)) return "";
  for (const auto& p : kGlobalNames)
    if (stem == p.hf) return std::string(p.gguf) + kind;
  if (!split_layer(stem, "model.layers.", layer, rest)) return "";
  for (const auto& p : kLayerNames)
    if (rest == p.hf) return "blk." + std::to_string(layer) + "." + p.gguf + kind;
  return "";
}

// The inverse, for messages about tensors that are missing or wrong.
std::string to_hf_name(const std::string& gguf) {
  std::string stem, kind, rest;
  int layer = -1;
  if (!split_kind(gguf, stem, kind)) return "";
  for (const auto& p : kGlobalNames)
    if (stem == p.gguf) return std::string(p.hf) + kind;
  if (!split_layer(stem, "blk.", layer, rest)) return "";
  for (const auto& p : kLayerNames)
    if (rest == p.gguf) return "model.layers." + std::to_string(layer) + "." + p.hf + kind;
  return "";
}

// Rewrites the first quoted GGUF tensor name in a validation message into the Hugging Face name (and the
// file holding it), which is what the user can find in their folder.
std::string with_hf_names(std::string msg, const std::map<std::string, std::string>& file_of) {
  const size_t a = msg.find('\'');
  const size_t b = a == std::string::npos ? a : msg.find('\'', a + 1);
  if (b == std::string::npos) return msg;
  const std::string gguf = msg.substr(a + 1, b - a - 1);
  const std::string hf = to_hf_name(gguf);
  if (hf.empty()) return msg;
  auto it = file_of.find(gguf);
  std::string note = " (" + gguf + (it != file_of.end() ? ", in " + it->second : "") + ")";
  return msg.substr(0, a) + "'" + hf + "'" + note + msg.substr(b + 1);
}

}  // namespace

Result<std::shared_ptr<ModelFile>> load_hf_model(const std::string& dir) {
  namespace fs = std::filesystem;
  auto cfg = load_hf_config((fs::path(dir) / "config.json").string());
  if (!cfg) return cfg.status();
  auto set = open_safetensors_dir(dir);
  if (!set) return set.status();

  auto m = std::make_shared<ModelFile>();
  m->path = dir;
  m->format = ModelFormat::HfFolder;
  m->config = cfg.value();
  ModelConfig& c = m->config;
  c.rope_style = RopeStyle::HalfSplit;  // rows kept in rotate_half order (see model/config.h)
  if (c.name.empty()) c.name = fs::path(dir).lexically_normal().filename().string();
  if (c.name.empty()) c.name = fs::path(dir).lexically_normal().parent_path().filename().string();

  std::map<std::string, std::string> file_of;  // GGUF name -> file holding it, for messages
  for (const auto& [hf, entry] : set.value().tensors) {
    const SafetensorsFile& f = set.value().file_of(entry);
    int layer = -1;
    if (ends_with(hf, ".rotary_emb.inv_freq")) continue;  // a buffer some old checkpoints saved; recomputed
    const std::string gguf = to_gguf_name(hf, layer);
    if (gguf.empty())
      return error(f.path() + ": tensor '" + hf + "' is not a weight of a Llama model (unexpected name)");
    if (layer >= c.n_layers)
      return error(f.path() + ": tensor '" + hf + "' belongs to layer " + std::to_string(layer) +
                   " but config.json has num_hidden_layers " + std::to_string(c.n_layers));
    if (gguf == "output.weight" && c.tied_embeddings) continue;  // tied: the classifier is embed_tokens
    if (ends_with(gguf, ".bias")) {
      const bool attn = gguf.find(".attn_") != std::string::npos;
      if (attn ? !c.attn_bias : !c.mlp_bias)
        return error(f.path() + ": tensor '" + hf + "' is a bias but config.json has " +
                     (attn ? "attention_bias" : "mlp_bias") + " false");
    }
    auto v = f.view(set.value().tensor_of(entry), gguf);
    if (!v) return v.status();
    TensorView t = std::move(v.value());
    // The format does not promise aligned data; a crafted file may misplace a tensor. Copy those.
    const size_t esize = t.dtype == DType::F32 ? 4 : 2;
    if (reinterpret_cast<uintptr_t>(t.data) % esize != 0) {
      std::vector<uint8_t> buf(t.nbytes);
      std::memcpy(buf.data(), t.data, t.nbytes);
      t.data = buf.data();
      m->weights.keep_alive(std::move(buf));
    }
    file_of[gguf] = f.path();
    m->weights.add(std::move(t));
  }
  for (const auto& f : set.value().files) m->weights.keep_alive(f.file());
  if (Status s = validate_llama_weights(c, m->weights, dir); !s) return error(with_hf_names(s.message(), file_of));
  return m;
}

}  // namespace tern
