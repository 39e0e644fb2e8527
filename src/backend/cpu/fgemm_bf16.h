// The float GEMM's bf16 mode (BackendOptions::float_matmul = "bf16"), for F16 and BF16 weights on CPUs with
// AVX512_BF16: out (n_tokens, n_out) = x @ W^T with x and W rounded to bf16 (round to nearest even) and every
// product summed in fp32 by vdpbf16ps, which computes 32 products per instruction where the fp32 kernel
// (fgemm.h) computes 16.
//
// Layout. Weights are copied once, at load (or first use), into rows of bf16 padded with zeros to a multiple
// of 32 elements (BF16 weights as they are, F16 ones rounded to bf16); each token's activations are rounded
// into the same padded form once per call. vdpbf16ps lane i then accumulates elements (2i, 2i+1) of each
// step of 32: a (row, token) result is the same chain of vdpbf16ps over k ascending followed by the same tree
// summing the 16 lanes (16 rows of a token at once), whatever tile or batch it is computed in, so batching
// never changes a token's output. Tiles are 4 rows x 6 tokens (24 accumulators in registers), and the
// reduction dimension is walked in L1-sized chunks as in fgemm.h.
//
// Accuracy. Each rounding to bf16 (8 significant bits) has relative error at most u = 2^-8, so a product
// w_i x_i is off by at most (2u + u^2) |w_i x_i| for F16 weights and u |w_i x_i| for BF16 ones (whose values
// are exact); the products of two bf16 are exact in fp32, and the fp32 sums add n * 2^-24 * sum |w_i x_i| at
// most. tests/ops/test_cpu_bf16.cpp checks that bound and docs/accuracy.md gives the whole-model effect.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace tern::cpu {

// Whether the bf16 mode handles weights of type t.
inline bool bgemm_supports(DType t) { return t == DType::F16 || t == DType::BF16; }

// Elements of one padded bf16 row of n_in elements (a multiple of 32).
inline int64_t bgemm_row_elems(int64_t n_in) { return (n_in + 31) / 32 * 32; }

// Whether this CPU can run the functions below (AVX-512 F/BW/VL and AVX512_BF16).
bool bgemm_cpu_supported();

// Rows [0, n_rows) of F16 or BF16 weights (src_row_bytes apart, n_in elements) as padded bf16 rows
// (bgemm_row_elems(n_in) elements apart) in dst: BF16 copied, F16 rounded to nearest even.
void bgemm_pack_weights(DType t, const uint8_t* src, int64_t src_row_bytes, int64_t n_rows, int64_t n_in,
                        uint16_t* dst);

// One activation row of n_in floats rounded to nearest even as a padded bf16 row.
void bgemm_pack_x(const float* x, int64_t n_in, uint16_t* dst);

// Scratch one thread needs (in floats, 64-byte aligned) for row blocks of at most max_rows rows.
int64_t bgemm_scratch_floats(int64_t max_rows);

// out[t * out_stride + r] for rows [0, n_rows) of the packed weights w and tokens [0, n_tokens) of the packed
// activations x (both rows of bgemm_row_elems(n_in) elements); with `accumulate`, each result is added to what
// out holds (the residual connection).
void bgemm_avx512bf16(const uint16_t* w, int64_t n_rows, int64_t n_in, const uint16_t* x, int n_tokens,
                      float* out, int64_t out_stride, float* scratch, bool accumulate = false);

}  // namespace tern::cpu
