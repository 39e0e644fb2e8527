// ModelConfig: the one description of a Llama-family model that every loader produces.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace tern {

// Which elements of a head RoPE rotates together. This is a property of how Q/K rows are ordered in the
// file, not of the model:
//  - Adjacent: pairs (2i, 2i+1). llama2.c checkpoints, and GGUF "llama" files (llama.cpp's converter
//    permutes Hugging Face's Q/K rows into this order).
//  - HalfSplit: pairs (i, i + head_dim/2), the "rotate_half" of Hugging Face checkpoints.
// Both rotate pair i by pos * freq[i] (see rope_frequencies); only the pairing differs.
// The convention difference is handled in exactly one place: the Hugging Face loader (formats/hf_model.cpp)
// maps Q/K rows as they are and sets HalfSplit (no copy); `tern convert` (formats/convert.cpp) permutes the
// Q/K weight and bias rows into adjacent order when it writes a GGUF file, as llama.cpp's converter does.
enum class RopeStyle { Adjacent, HalfSplit };

// RoPE frequency scaling. Llama3 (Llama 3.1+, rope_scaling {"rope_type": "llama3"} in config.json): with
// wavelen = 2*pi / freq, pairs with wavelen < original_context / high_freq_factor keep freq, pairs with
// wavelen > original_context / low_freq_factor turn `factor` times slower, and those between blend the two:
//   smooth = (original_context / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
//   freq'  = (1 - smooth) * freq / factor + smooth * freq
enum class RopeScalingType { None, Llama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::None;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int original_context = 8192;  // original_max_position_embeddings
};

struct ModelConfig {
  std::string arch = "llama";
  std::string name;          // free text for `tern info`
  int dim = 0;               // embedding width
  int hidden_dim = 0;        // feed-forward width
  int n_layers = 0;
  int n_heads = 0;           // query heads
  int n_kv_heads = 0;        // key/value heads (GQA when < n_heads)
  int head_dim = 0;          // per-head width (usually dim / n_heads)
  int vocab_size = 0;
  int max_seq_len = 0;       // context length the model was trained for
  float rope_theta = 10000.0f;
  float norm_eps = 1e-5f;
  RopeStyle rope_style = RopeStyle::Adjacent;
  bool tied_embeddings = true;  // classifier shares token_embd.weight
  RopeScaling rope_scaling;
  // Per-pair divisors of the base frequencies (head_dim/2 values), as GGUF's rope_freqs.weight stores a
  // llama3 scaling; empty when absent. Never set together with rope_scaling.
  std::vector<float> rope_freq_factors;
  bool attn_bias = false;  // blk.N.attn_{q,k,v,output}.bias exist (Hugging Face attention_bias)
  bool mlp_bias = false;   // blk.N.ffn_{gate,up,down}.bias exist (Hugging Face mlp_bias)

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
};

// Range and consistency checks shared by all loaders; `source` names the file for the message.
Status validate_config(const ModelConfig& c, const std::string& source);

const char* rope_style_name(RopeStyle s);

// The per-pair divisors a llama3 scaling applies to the base frequencies theta^(-2i/head_dim): head_dim/2
// values, 1 for pairs it leaves alone (empty when c.rope_scaling.type is None). GGUF stores exactly these as
// rope_freqs.weight, so a converted file reproduces the same frequencies bit for bit.
std::vector<float> rope_llama3_factors(const ModelConfig& c);

// The rotation frequency of each of the head_dim/2 pairs: theta^(-2i/head_dim) divided by the llama3 or
// rope_freq_factors divisor. Computed once, when a model is created.
std::vector<float> rope_frequencies(const ModelConfig& c);

}  // namespace tern
