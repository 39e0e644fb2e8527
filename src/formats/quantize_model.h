// Model quantization: read a GGUF (any architecture, any tensor type tern dequantizes) or a llama2.c
// checkpoint, convert its weight matrices to one target type and write a GGUF v3 file. `tern quantize` is a
// thin wrapper around quantize_model().
//
// Per tensor:
//  - 1-D tensors (norm weights, biases) are written as F32, whatever their input type.
//  - Tensors of 2 or more dimensions are converted to the target type (dequantized to fp32 first when the
//    input is quantized; copied unchanged when already of the target type).
//  - A matrix whose row length is not a multiple of the target's block size, or whose input type tern cannot
//    dequantize, keeps its input type (bytes copied unchanged); each such tensor is listed in `kept`.
// Metadata: a GGUF input's keys are all copied in order (tokenizer included); a llama2.c input gets the llama
// keys built from its ModelConfig (no tokenizer: llama2.c keeps it in a separate tokenizer.bin).
// `general.file_type` is set to llama.cpp's file-type code for the target (e.g. 7 = mostly Q8_0),
// `general.quantization_version` to 2 for block-quantized targets, and `general.alignment` to 32.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"

namespace tern {

struct KeptTensor {
  std::string name;
  std::string reason;  // e.g. "row length 172 is not a multiple of the Q8_0 block size 32; stays F32"
};

struct QuantizeStats {
  int tensors_converted = 0;  // written in the target type by quantizing (or converting) their values
  int tensors_copied = 0;     // written unchanged: already of the target type
  int tensors_f32 = 0;        // 1-D tensors written as F32
  std::vector<KeptTensor> kept;   // tensors left in their input type (not counted above, except 1-D)
  std::vector<std::string> notes; // anything else worth telling the user (e.g. no tokenizer written)
  uint64_t bytes_in = 0;   // input file size
  uint64_t bytes_out = 0;  // output file size
  double seconds = 0.0;    // wall time of the whole conversion
};

// The types quantize_model() produces: F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K.
bool is_quantize_target(DType t);

// llama.cpp's `general.file_type` code for a file whose matrices are mostly of type t (F32 -> 0, F16 -> 1,
// Q4_0 -> 2, Q4_1 -> 3, Q8_0 -> 7, Q4_K -> 14 (Q4_K_S: every matrix Q4_K), BF16 -> 32); -1 if none.
int llama_file_type(DType t);

// Reads in_path, writes out_path. Large tensors are converted by n_threads threads (<= 0: one per core); the
// output does not depend on it. Errors name the file and, where one is involved, the tensor.
Result<QuantizeStats> quantize_model(const std::string& in_path, const std::string& out_path, DType target,
                                     int n_threads = 0);

}  // namespace tern
