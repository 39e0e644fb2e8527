// config.json of a Hugging Face Llama or Mistral checkpoint -> ModelConfig.
//
// Read (LlamaConfig / MistralConfig field names):
//   architectures            required; LlamaForCausalLM or MistralForCausalLM
//   hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, vocab_size,
//   max_position_embeddings  required integers
//   num_key_value_heads      integer or null (null/absent: num_attention_heads)
//   head_dim                 integer or null (null/absent: hidden_size / num_attention_heads)
//   rms_norm_eps             number (default 1e-6), rope_theta number (default 10000)
//   tie_word_embeddings, attention_bias, mlp_bias   booleans (default false)
//   hidden_act               "silu" if present
//   rope_scaling             null, or {"rope_type" (or "type"): "default" | "llama3", factor, low_freq_factor,
//                            high_freq_factor, original_max_position_embeddings}
//   rope_parameters          transformers 5's spelling of the two above: {"rope_theta", "rope_type", ...}
//   sliding_window           Mistral only: null, or a window; the context is capped at the window, where
//                            sliding-window attention and full causal attention are the same computation
// Every error names the file and key and, for a wrong type, the type expected.
#pragma once

#include <string>

#include "core/status.h"
#include "model/config.h"

namespace tern {

// Parses config.json text; `source` (the file's path) prefixes every message.
Result<ModelConfig> parse_hf_config(const std::string& json_text, const std::string& source);
Result<ModelConfig> load_hf_config(const std::string& path);

}  // namespace tern
