// Corrupted quantized blocks: a block whose f16 scale (ggml's `d`, or the `m` / `dmin` offset scale) is NaN
// or infinite turns every weight it covers into NaN, and the first forward pass would spread it to every
// logit. Loaders reject such a tensor at load, naming the tensor and the block (llama.cpp runs the same
// check, ggml_validate_row_data, only with --check-tensors; here it is cheap enough to run always: one
// strided pass over the scales, see docs/quantization.md for its cost on a 1.1B model).
//
// The 6- and 8-bit sub-block scales of the K-quants and the integer codes cannot be non-finite, so only the
// f16 fields are read: Q4_0/Q5_0/Q8_0 d; Q4_1/Q5_1 d, m; Q2_K/Q4_K/Q5_K d, dmin; Q3_K/Q6_K d.
// Plain float tensors (F32/F16/BF16) are not scanned.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "core/tensor.h"

namespace tern {

// OK, or an error "PATH: tensor 'NAME' (TYPE): block B (row R, block C of the row) has a non-finite scale
// FIELD (f16 0xXXXX)". The block index B counts blocks from the start of the tensor.
Status check_quant_scales(const TensorView& t, const std::string& path);
// The same check on blocks [first_block, first_block + n_blocks) of `t`, held at `blocks` (a copy read from
// the file, so that the scan need not map the tensor's pages).
Status check_quant_blocks(const TensorView& t, const uint8_t* blocks, uint64_t first_block, uint64_t n_blocks,
                          const std::string& path);

// Byte offsets of the f16 scale fields inside one block of `t` (count in *n, at most 2); false for types
// that have none (plain floats, unknown types).
bool quant_scale_fields(DType t, int* n, uint32_t offsets[2], const char* names[2]);

}  // namespace tern
