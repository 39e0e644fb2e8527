// Opening a model file of any supported format: one ModelConfig plus named tensor views.
// Tensor names follow GGUF's llama convention whatever the source format:
//   token_embd.weight (vocab, dim)          output_norm.weight (dim)       output.weight (vocab, dim), untied only
//   blk.N.attn_norm.weight (dim)            blk.N.ffn_norm.weight (dim)
//   blk.N.attn_q.weight (q_dim, dim)        blk.N.attn_k.weight (kv_dim, dim)   blk.N.attn_v.weight (kv_dim, dim)
//   blk.N.attn_output.weight (dim, q_dim)   blk.N.ffn_gate.weight (hidden, dim) [w1]
//   blk.N.ffn_up.weight (hidden, dim) [w3]  blk.N.ffn_down.weight (dim, hidden) [w2]
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/status.h"
#include "formats/gguf.h"
#include "formats/weights.h"
#include "model/config.h"

namespace tern {

enum class ModelFormat { Llama2c, Gguf, HfFolder };

struct ModelFile {
  std::string path;
  ModelFormat format = ModelFormat::Gguf;
  ModelConfig config;
  WeightStore weights;
  std::optional<GgufFile> gguf;  // kept for metadata (tokenizer, `tern info`) when the source is GGUF
};

// Detects the format (a directory is a Hugging Face model folder; otherwise the file's first bytes: GGUF magic,
// else a llama2.c checkpoint), loads it and validates every tensor the llama forward pass needs (names and
// shapes), naming the file and tensor.
Result<std::shared_ptr<ModelFile>> load_model_file(const std::string& path);

// The format-specific halves (exposed for tests).
Result<std::shared_ptr<ModelFile>> load_llama2c(const std::string& path);
Result<std::shared_ptr<ModelFile>> load_gguf_model(const std::string& path);
// A Hugging Face folder: config.json + model.safetensors (or shards named by model.safetensors.index.json).
// Tensors are mapped in place under their GGUF names; Q/K rows keep HF's order (rope_style HalfSplit).
// Validates the weights itself (errors name the Hugging Face tensor and the file holding it).
Result<std::shared_ptr<ModelFile>> load_hf_model(const std::string& dir);

const char* model_format_name(ModelFormat f);

}  // namespace tern
