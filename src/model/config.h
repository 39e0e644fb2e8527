// ModelConfig: the one description of a Llama-family model that every loader produces.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace tern {

// Which elements of a head RoPE rotates together. This is a property of how Q/K rows are ordered in the
// file, not of the model:
//  - Adjacent: pairs (2i, 2i+1). llama2.c checkpoints, and GGUF "llama" files (llama.cpp's converter
//    permutes Hugging Face's Q/K rows into this order).
//  - HalfSplit: pairs (i, i + head_dim/2), the "rotate_half" of Hugging Face checkpoints.
// Both rotate pair i by pos * theta^(-2i/head_dim); only the pairing differs.
enum class RopeStyle { Adjacent, HalfSplit };

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

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
};

// Range and consistency checks shared by all loaders; `source` names the file for the message.
Status validate_config(const ModelConfig& c, const std::string& source);

const char* rope_style_name(RopeStyle s);

}  // namespace tern
