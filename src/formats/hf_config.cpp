#include "formats/hf_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace tern {

using json = nlohmann::json;

namespace {

// Typed look-ups in one JSON object, each error naming the file and the (dotted) key.
class Reader {
 public:
  Reader(const json& obj, std::string source, std::string prefix = "")
      : obj_(obj), source_(std::move(source)), prefix_(std::move(prefix)) {}

  // Present and not null.
  bool has(const char* key) const { return obj_.contains(key) && !obj_.at(key).is_null(); }

  Status integer(const char* key, int& out, bool required) const {
    const json* v = get(key);
    if (!v) return required ? missing(key) : Status();
    if (!v->is_number_integer()) return wrong_type(key, *v, "an integer");
    const int64_t x = v->get<int64_t>();
    if (x < -(int64_t{1} << 31) || x > (int64_t{1} << 31) - 1)
      return error(source_ + ": key '" + prefix_ + key + "' = " + std::to_string(x) + " is out of range");
    out = static_cast<int>(x);
    return Status();
  }
  Status number(const char* key, float& out, bool required) const {
    const json* v = get(key);
    if (!v) return required ? missing(key) : Status();
    if (!v->is_number()) return wrong_type(key, *v, "a number");
    out = v->get<float>();
    return Status();
  }
  Status boolean(const char* key, bool& out) const {
    const json* v = get(key);
    if (!v) return Status();
    if (!v->is_boolean()) return wrong_type(key, *v, "a boolean (true or false)");
    out = v->get<bool>();
    return Status();
  }
  Status string(const char* key, std::string& out, bool required) const {
    const json* v = get(key);
    if (!v) return required ? missing(key) : Status();
    if (!v->is_string()) return wrong_type(key, *v, "a string");
    out = v->get<std::string>();
    return Status();
  }
  // An object, or null/absent (then `out` stays null).
  Status object(const char* key, const json*& out) const {
    const json* v = get(key);
    if (v && !v->is_object()) return wrong_type(key, *v, "an object or null");
    out = v;
    return Status();
  }
  const json* get(const char* key) const {
    auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }
  Status missing(const char* key) const { return error(source_ + ": missing key '" + prefix_ + key + "'"); }
  Status wrong_type(const char* key, const json& v, const char* expected) const {
    return error(source_ + ": key '" + prefix_ + key + "' is " + v.dump() + " (a JSON " + v.type_name() +
                 "), expected " + expected);
  }

 private:
  const json& obj_;
  std::string source_, prefix_;
};

// rope_scaling (transformers 4) or rope_parameters (transformers 5): the scaling type and its parameters.
Status read_rope_scaling(const json& obj, const std::string& source, const std::string& key, ModelConfig& c) {
  Reader r(obj, source, key + ".");
  std::string type = "default";
  if (r.has("rope_type")) TERN_TRY(r.string("rope_type", type, true));
  else if (r.has("type")) TERN_TRY(r.string("type", type, true));
  if (r.has("rope_theta")) TERN_TRY(r.number("rope_theta", c.rope_theta, true));
  if (type == "default") return Status();
  if (type != "llama3")
    return error(source + ": key '" + key + ".rope_type' = \"" + type +
                 "\" is not supported (supported: default, llama3)");
  RopeScaling& rs = c.rope_scaling;
  rs.type = RopeScalingType::Llama3;
  TERN_TRY(r.number("factor", rs.factor, true));
  TERN_TRY(r.number("low_freq_factor", rs.low_freq_factor, true));
  TERN_TRY(r.number("high_freq_factor", rs.high_freq_factor, true));
  TERN_TRY(r.integer("original_max_position_embeddings", rs.original_context, true));
  return Status();
}

}  // namespace

Result<ModelConfig> parse_hf_config(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return error(source + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  if (!j.is_object()) return error(source + ": is a JSON " + std::string(j.type_name()) + ", expected an object");
  Reader r(j, source);
  ModelConfig c;

  const json* archs = r.get("architectures");
  if (!archs) return r.missing("architectures");
  if (!archs->is_array() || archs->empty() || !(*archs)[0].is_string())
    return r.wrong_type("architectures", *archs, "a list of class names");
  const std::string arch = (*archs)[0].get<std::string>();
  const bool mistral = arch == "MistralForCausalLM";
  if (arch != "LlamaForCausalLM" && !mistral)
    return error(source + ": architecture '" + arch +
                 "' is not supported (supported: LlamaForCausalLM, MistralForCausalLM)");
  c.arch = "llama";  // Mistral is the llama architecture (plus an optional sliding window, handled below)
  if (r.has("_name_or_path")) {
    std::string name;
    if (r.string("_name_or_path", name, false).ok()) c.name = name;
  }

  TERN_TRY(r.integer("hidden_size", c.dim, true));
  TERN_TRY(r.integer("intermediate_size", c.hidden_dim, true));
  TERN_TRY(r.integer("num_hidden_layers", c.n_layers, true));
  TERN_TRY(r.integer("num_attention_heads", c.n_heads, true));
  TERN_TRY(r.integer("vocab_size", c.vocab_size, true));
  TERN_TRY(r.integer("max_position_embeddings", c.max_seq_len, true));
  c.n_kv_heads = c.n_heads;
  TERN_TRY(r.integer("num_key_value_heads", c.n_kv_heads, false));
  c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
  TERN_TRY(r.integer("head_dim", c.head_dim, false));
  c.norm_eps = 1e-6f;  // LlamaConfig's default
  TERN_TRY(r.number("rms_norm_eps", c.norm_eps, false));
  c.rope_theta = 10000.0f;
  TERN_TRY(r.number("rope_theta", c.rope_theta, false));
  c.tied_embeddings = false;  // LlamaConfig's default
  TERN_TRY(r.boolean("tie_word_embeddings", c.tied_embeddings));
  TERN_TRY(r.boolean("attention_bias", c.attn_bias));
  TERN_TRY(r.boolean("mlp_bias", c.mlp_bias));
  std::string act = "silu";
  TERN_TRY(r.string("hidden_act", act, false));
  if (act != "silu")
    return error(source + ": key 'hidden_act' = \"" + act + "\" is not supported (supported: silu)");

  const json* scaling = nullptr;
  TERN_TRY(r.object("rope_scaling", scaling));
  if (scaling) TERN_TRY(read_rope_scaling(*scaling, source, "rope_scaling", c));
  const json* params = nullptr;
  TERN_TRY(r.object("rope_parameters", params));
  if (params) TERN_TRY(read_rope_scaling(*params, source, "rope_parameters", c));

  if (mistral) {
    // Attention restricted to the last `sliding_window` positions equals full causal attention while the
    // sequence is no longer than the window, so capping the context keeps every result exact.
    int window = 4096;  // MistralConfig's default when the key is absent
    if (j.contains("sliding_window")) {
      window = 0;
      TERN_TRY(r.integer("sliding_window", window, false));  // null: no window
    }
    if (window < 0) return error(source + ": key 'sliding_window' = " + std::to_string(window) + " is negative");
    if (window > 0 && window < c.max_seq_len) c.max_seq_len = window;
  }
  TERN_TRY(validate_config(c, source));
  return c;
}

Result<ModelConfig> load_hf_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(path + ": cannot open (a Hugging Face model folder needs config.json)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_hf_config(ss.str(), path);
}

}  // namespace tern
