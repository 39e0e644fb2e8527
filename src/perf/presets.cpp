#include "perf/presets.h"

namespace tern::perf {

namespace {

ModelPreset preset(const char* key, const char* name, int dim, int hidden, int layers, int heads,
                   int kv_heads, int vocab, int ctx, float theta, bool tied, const char* source) {
  ModelPreset p;
  p.key = key;
  ModelConfig& c = p.config;
  c.name = name;
  c.dim = dim;
  c.hidden_dim = hidden;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.head_dim = dim / heads;
  c.vocab_size = vocab;
  c.max_seq_len = ctx;
  c.rope_theta = theta;
  c.rope_style = RopeStyle::HalfSplit;
  c.tied_embeddings = tied;
  p.source = source;
  return p;
}

}  // namespace

const std::vector<ModelPreset>& model_presets() {
  //                                 dim   hidden layers heads kv  vocab   ctx     theta  tied
  static const std::vector<ModelPreset> presets = {
      preset("llama-3-8b", "Meta-Llama-3-8B", 4096, 14336, 32, 32, 8, 128256, 8192, 500000, false,
             "meta-llama/Meta-Llama-3-8B config.json"),
      preset("llama-2-7b", "Llama-2-7b", 4096, 11008, 32, 32, 32, 32000, 4096, 10000, false,
             "meta-llama/Llama-2-7b-hf config.json"),
      preset(
          "mistral-7b", "Mistral-7B-v0.3", 4096, 14336, 32, 32, 8, 32768, 32768, 1000000, false,
          "mistralai/Mistral-7B-Instruct-v0.3 config.json (../shared/models/mistral-v0.3); v0.1 differs only "
          "in its vocabulary (32000) and a 4096-token sliding window, which this preset does not model"),
      preset("llama-3.2-1b", "Llama-3.2-1B", 2048, 8192, 16, 32, 8, 128256, 131072, 500000, true,
             "meta-llama/Llama-3.2-1B config.json"),
      preset("tinyllama-1.1b", "TinyLlama-1.1B", 2048, 5632, 22, 32, 4, 32000, 2048, 10000, false,
             "TinyLlama/TinyLlama-1.1B-Chat-v1.0 config.json"),
      preset("smollm2-135m", "SmolLM2-135M", 576, 1536, 30, 9, 3, 49152, 8192, 100000, true,
             "HuggingFaceTB/SmolLM2-135M config.json"),
      preset("stories15M", "stories15M", 288, 768, 6, 6, 6, 32000, 256, 10000, true,
             "karpathy/llama2.c README model table (stories15M.bin, shared classifier)"),
      preset("stories110M", "stories110M", 768, 2048, 12, 12, 12, 32000, 1024, 10000, true,
             "karpathy/llama2.c README model table (stories110M.bin, shared classifier)"),
  };
  return presets;
}

std::string model_preset_names() {
  std::string s;
  for (const ModelPreset& p : model_presets()) s += (s.empty() ? "" : ", ") + p.key;
  return s;
}

Result<ModelPreset> find_model_preset(const std::string& key) {
  for (const ModelPreset& p : model_presets())
    if (p.key == key) return p;
  return error("unknown model preset '" + key + "' (valid: " + model_preset_names() + ")");
}

}  // namespace tern::perf
