// Float GEMM for F32, F16 and BF16 weights on AVX-512: out (n_tokens, n_out) = x @ W^T with x in fp32.
// Tiles of 4 weight rows x 6 tokens keep 24 accumulators of 16 lanes in registers (F16/BF16 blocks are widened
// to fp32 once per call when more than one token tile reads them); the reduction dimension
// is walked in chunks of kFChunk so that a token tile's activations and a row block's weights stay in L1,
// with the accumulators parked in a small scratch between chunks. Each (row, token) result is the same
// sequence of FMAs (k ascending, 16 lanes, a masked last step, then one reduction) whatever tile or batch
// it is computed in, so batching never changes a token's output.
#pragma once

#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace tern::cpu {

inline bool fgemm_supports(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

// Scratch one thread needs for fgemm_avx512 (in floats) with row blocks of at most max_rows rows of n_in
// elements: the parked accumulators, and room for the block widened to fp32 (F16/BF16 with several token
// tiles).
int64_t fgemm_scratch_floats(int64_t max_rows, int64_t n_in);

// out[t * out_stride + r] for rows [0, n_rows) of w (row stride row_bytes, n_in elements of type t) and
// tokens [0, n_tokens) of x (row stride n_in); with `accumulate`, each result is added to what out holds
// (out + v, the residual connection). `scratch` holds fgemm_scratch_floats(n_rows) floats, 64-byte
// aligned. Requires AVX-512F.
void fgemm_avx512(DType t, const uint8_t* w, int64_t row_bytes, int64_t n_rows, int64_t n_in, const float* x,
                  int n_tokens, float* out, int64_t out_stride, float* scratch, bool accumulate = false);

}  // namespace tern::cpu
