// Any loaded model (Hugging Face folder, GGUF, llama2.c) -> a GGUF llama file that behaves like the output of
// llama.cpp's converter. `tern convert` is a thin wrapper around convert_to_gguf().
//
// What is written:
//  - metadata: general.architecture = llama, general.name, general.file_type, general.alignment and the
//    llama.* hyperparameters (context_length, embedding_length, block_count, feed_forward_length,
//    attention.head_count[_kv], attention.key_length/value_length when head_dim != dim / n_heads,
//    rope.freq_base, rope.dimension_count, attention.layer_norm_rms_epsilon, vocab_size). A GGUF input's
//    other keys (its tokenizer among them) are copied first, in order. A Hugging Face folder's tokenizer.json
//    (with tokenizer_config.json: special tokens, chat template) is translated into tokenizer.ggml.* keys
//    (tokenizer/hf_tokenizer_json.h); one GGUF cannot express leaves the output without a tokenizer, with a note.
//  - tensors under their GGUF names (the ModelFile's names), in llama.cpp's usual order.
//  - Q/K rows in adjacent-pair order: a half-split input (a Hugging Face folder) has the rows of
//    attn_q/attn_k (weights and biases) permuted per head, row h*hd + 2j + s <- row h*hd + s*hd/2 + j, the
//    permutation llama.cpp's converter applies. The model's math is unchanged; only the pairing convention.
//  - a llama3 RoPE scaling as rope_freqs.weight (head_dim/2 F32 divisors), as llama.cpp stores it.
// Types: by default every tensor keeps its type (bytes copied, or permuted rows). With `type` set (F32, F16
// or BF16), tensors of two or more dimensions are converted to it and 1-D tensors (norms, biases) to F32.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "formats/model_file.h"

namespace tern {

struct ConvertOptions {
  std::optional<DType> type;  // F32, F16 or BF16; unset: keep each tensor's type
};

struct ConvertStats {
  int tensors = 0;           // tensors written
  int tensors_permuted = 0;  // Q/K weights and biases whose rows were reordered
  int tensors_converted = 0; // tensors whose type changed
  uint64_t bytes_out = 0;
  int tokenizer_tokens = 0;        // tokens of the tokenizer written from tokenizer.json (0: none written)
  std::vector<std::string> notes;  // e.g. that no tokenizer was written
};

Result<ConvertStats> convert_to_gguf(const ModelFile& m, const std::string& out_path, const ConvertOptions& opt = {});

// Reorders the rows of one Q or K projection (weight: rows x row_bytes; bias: one element per row) from
// half-split to adjacent pairs, independently in each head of `head_dim` rows. Exposed for tests.
void permute_half_to_adjacent(const uint8_t* src, uint8_t* dst, int64_t rows, size_t row_bytes, int head_dim);

}  // namespace tern
