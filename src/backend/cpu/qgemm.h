// Integer GEMM for Q8_0, Q4_0 and Q4_1 weights on AVX-512 VNNI: out (n_tokens, n_out) = x @ W^T with x
// quantized to int8 per block of 32 on the fly.
//
// Layout. vpdpbusd sums four u8 x s8 products into each of 16 int32 lanes. The weights are repacked once
// (at first use) so that lane k of a 64-byte load holds four codes of block k of a group of 16 blocks:
// eight such loads (steps s = 0..7, elements 4s..4s+3 of every block) leave each lane holding its whole
// block's integer dot product, and one int->float conversion plus two FMAs apply the 16 blocks' scales at
// once. Per row, each group of 16 blocks is stored as
//   Q8_0: codes[8][16][4] as u8 (w + 128), then d[16] f16                        34 x 16 bytes
//   Q4_0: codes[4][16][4], byte = elements (4p + j) | (4p + 16 + j) << 4, d[16]    18 x 16 bytes
//   Q4_1: as Q4_0, then d[16], m[16] f16                                          20 x 16 bytes
// (Q4_0 and Q4_1 keep ggml's nibble pairing: the byte of pair p, lane k, position j is block k's
// qs[4p + j]). A row whose block count is not a multiple of 16 ends in a partial group of m < 16 lanes,
// stored the same way with m in place of 16 and read with masked loads (the activations' partial group is
// zero past lane m), so a packed row has exactly the original's bytes.
//
// Q4_K: a group is two super-blocks (16 sub-blocks of 32, each its own lane):
//   codes[4][16][4] as Q4_0's pairing, d[2] f16, dmin[2] f16, sc[16] u8, m[16] u8  296 bytes
// with w = d sc u - dmin m per sub-block, so dot_b = (d sc) dx I_b - (dmin m) s_b: the Q4_1 form with
// scales d * sc and dmin * m formed exactly in fp32 in the kernel. A row with an odd number of
// super-blocks ends in a half group (8 lanes, 148 bytes).
//
// Q6_K: scales are per 16 elements, so a group is one super-block of 16 lanes of 16 elements, four steps
// (lane k of step s holds elements 16k + 4s .. 16k + 4s + 3):
//   lo[2][16][4] (steps 0|1 and 2|3 as low|high nibbles), hi[16][4] (step s's top two bits at bits 2s),
//   sc[16] int8, d f16                                                                 210 bytes
// with w = d sc (u - 32), so dot_lane = (d sc) (dx I - 32 s_lane): the activations of a lane carry the dx of
// their 32-block and c = -32 dx sum(x over the lane's 16).
//
// Offsets. With u the unsigned codes and x_b the int8 activations of block b with scale dx_b and
// s_b = dx_b * sum(x_b):
//   Q8_0: w = dw (u - 128)   ->  dot_b = dw (dx I_b - 128 s_b)
//   Q4_0: w = dw (u - 8)     ->  dot_b = dw (dx I_b - 8 s_b)
//   Q4_1: w = dw u + m       ->  dot_b = dw dx I_b + m s_b
// where I_b = sum(u * x_b) is exact in int32. The activation side carries dx_b and c_b = k s_b (k = -128,
// -8 or 1) per block, packed per token in the same lane order.
//
// Every (row, token) result goes through the same instruction sequence whatever the tile it is computed
// in, so a token's output does not depend on the other tokens of the call (batching never changes results).
#pragma once

#include <cstdint>
#include <vector>

#include "backend/cpu/cpu_kernels.h"
#include "core/dtype.h"

namespace tern::cpu {

constexpr int kQGroup = 16;  // blocks per group

// Whether the packed GEMM handles weights of type t.
inline bool qgemm_supports(DType t) {
  return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_1 || t == DType::Q4_K || t == DType::Q6_K;
}

// How a row of n_blocks blocks of 32 is split: full groups of 16, then a partial group of `partial` lanes
// (0: none; for Q4_K 8, a single super-block). For Q6_K a group is one super-block (8 blocks).
struct QgemmLayout {
  int64_t groups = 0;     // full groups
  int partial = 0;        // lanes of the final partial group
  int64_t row_bytes = 0;  // bytes of a packed row
  int64_t x_groups() const { return groups + (partial > 0 ? 1 : 0); }
};
QgemmLayout qgemm_layout(DType t, int64_t n_blocks);

// Repacks n_rows rows of n_blocks blocks from ggml layout into `dst` (qgemm_layout(t).row_bytes each).
void qgemm_pack_weights(DType t, const void* src, uint8_t* dst, int64_t n_rows, int64_t n_blocks);

// One token's activations, packed: per full group of 16 blocks, the int8 codes in step-major lane order,
// then dx[16] and c[16].
struct alignas(64) XGroup {
  int8_t q[8 * 64];
  float d[kQGroup];
  float c[kQGroup];
};

// Quantizes one activation row (n = 32 * n_blocks floats) into the layout's x_groups() groups for weights of
// type t (which fixes c's factor; a partial group is zero past its lanes). The rounding is
// quantize_row_q8x's.
void qgemm_pack_x(DType t, const float* x, XGroup* groups, int64_t n_blocks);

// The Q6_K layout of qgemm_pack_x (16-element lanes), which it calls for that type.
void qgemm_pack_x_q6k(const float* x, XGroup* groups, int64_t n_blocks);

// qgemm_pack_x with AVX-512: the same rounding (x * (1 / d) to nearest even), bit for bit.
void qgemm_pack_x_avx512(DType t, const float* x, XGroup* groups, int64_t n_blocks);

// out[t * out_stride + r] for rows [0, n_rows) of the packed weights (row stride row_bytes) and tokens
// [0, n_tokens) of the packed activations (x_stride groups apart); with `accumulate`, each result is added
// to what out holds (out + v, the residual connection). Requires AVX-512 VNNI.
void qgemm_avx512(DType t, const uint8_t* w, int64_t row_bytes, int64_t n_rows, int64_t n_blocks, const XGroup* x,
                  int64_t x_stride, int n_tokens, float* out, int64_t out_stride, bool accumulate = false);

}  // namespace tern::cpu
