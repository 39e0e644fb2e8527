// Random-weight GGUF models of real shapes (`tern synth`): for benchmarks and tests where real weights of
// that size cannot be had. The files are GGUF v3 "llama" models with llama.cpp's metadata keys and a
// synthetic SentencePiece-style vocabulary (tokenizer.ggml.model = "llama": <unk>, <s>, </s>, the 256 byte
// tokens <0x00>..<0xFF>, then unique filler pieces), so llama.cpp loads them as well as tern.
//
// Weights: every matrix N(0, 0.02) (as real checkpoints are initialised, so activations stay finite), every
// norm 1.0 in F32. Each tensor is generated and written on its own (GgufWriter's fill callbacks), so a 7B
// model never sits in memory. Values depend only on the seed, the tensor and the row block, never on the
// thread count. A matrix whose row length is not a whole number of the type's blocks falls back, as
// llama.cpp's quantizer does: K-quants to Q8_0, then to F16.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "model/config.h"

namespace tern {

// The shape names (the spelling), each backed by a model preset of perf/presets.h.
const std::vector<std::string>& synth_shape_names();
std::string synth_shape_names_text();  // "stories15M, stories110M, ..."
// A shape by name or preset key, case-insensitive; the error lists the valid names.
Result<ModelConfig> synth_shape(const std::string& name);

// F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K.
bool can_synth(DType t);
std::string synth_types_text();
Result<DType> parse_synth_type(const std::string& name);  // case-insensitive; the error lists the types

struct SynthOptions {
  std::string shape;
  DType type = DType::F16;
  uint64_t seed = 0;
  int layers = 0;       // > 0: override the shape's layer count
  int threads = 0;      // <= 0: one per core
  float stddev = 0.02f; // of the matrices
};

struct SynthFallback {
  std::string tensor;
  DType type;  // what it was written as
};

struct SynthStats {
  ModelConfig config;
  uint64_t tensor_bytes = 0;
  int tensors = 0;
  std::vector<SynthFallback> fallbacks;
  double seconds = 0;
};

Result<SynthStats> synth_model(const SynthOptions& opts, const std::string& out_path);

// The matrix type `want` falls back to for rows of `cols` elements (itself when it fits).
DType synth_matrix_type(DType want, int64_t cols);

// Q6_K quantization of n values (a multiple of 256): per 16-element sub-block scale = max|x| / 31 as an
// int8 multiple of the block's f16 scale d = max scale / 127, codes round(x / (d * scale)) + 32 in [0, 63].
// (core/quant.h reads Q6_K but has no writer.)
void quantize_row_q6_k(const float* src, void* dst, int64_t n);

}  // namespace tern
