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
// qs[4p + j]).
//
// Tails. A row whose block count is not a multiple of 16 ends in m < 16 tail blocks. A group of m lanes
// would cost the instructions of a full one, so for Q4_0 and Q4_1 when P = floor(16 / m) >= 4 (m <= 4;
// qgemm_layout says why not otherwise) the tails of P consecutive rows (rows pP .. pP + P - 1: a pack)
// share one tail group of P m lanes, lanes [j m, (j + 1) m) holding row pP + j's tail, stored as a group
// with P m in place of 16. A pack is
//   [tail group of the pack's P m lanes][row pP's full groups] ... [row pP + P - 1's full groups]
// (the tail first, so that one token reads the pack front to back) and the last pack of a matrix may have
// P' < P rows and P' m lanes. The activations' tail group holds the token's m tail blocks P times over
// (lane j m + k is block k). Per token, one pass of the tail group (the same vpdpbusd steps and scale FMAs
// as any group) gives a vector whose lanes [j m, (j + 1) m) are row pP + j's tail-block dots; each row adds
// its lanes (a masked add) to its accumulator of the full groups before the final horizontal sum. The tail
// thus costs each row 1 / P of a group plus one add. Otherwise (P = 1: Q8_0, Q4_K, m > 4) the tail is the
// row's own partial group, right after its full groups, read with masked loads (zero past its lanes) in
// the loop over groups. Either way a packed Q8_0, Q4_0 or Q4_1 matrix has exactly the original's bytes.
//
// Q4_K: a group is two super-blocks (16 sub-blocks of 32, each its own lane):
//   codes[4][16][4] as Q4_0's pairing, d[2] f16, dmin[2] f16, sc[16] u8, m[16] u8  296 bytes
// with w = d sc u - dmin m per sub-block, so dot_b = (d sc) dx I_b - (dmin m) s_b: the Q4_1 form with
// scales d * sc and dmin * m formed exactly in fp32 in the kernel. A row with an odd number of
// super-blocks ends in a half group (8 lanes, 148 bytes), its own partial group.
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
// in (a pack's tail vector for a token is the same whichever rows or tokens share the call, and the 16
// lanes are summed in one fixed order whether alone or four vectors at a time), so a token's output does
// not depend on the other tokens of the call (batching never changes results).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "backend/cpu/cpu_kernels.h"
#include "core/dtype.h"

namespace tern::cpu {

constexpr int kQGroup = 16;  // blocks per group
constexpr int kMinPack = 4;  // the fewest rows whose tails share a tail group (qgemm_layout says why)

// Whether the packed GEMM handles weights of type t.
inline bool qgemm_supports(DType t) {
  return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_1 || t == DType::Q4_K || t == DType::Q6_K;
}

// How a row of n_blocks blocks of 32 is split: full groups of 16, then `partial` tail blocks (0: none; for
// Q4_K 8, a single super-block), sharing a tail group with those of `pack` - 1 other rows (pack 1: the row's
// own partial group). For Q6_K a group is one super-block (8 blocks) and there is no tail.
struct QgemmLayout {
  int64_t groups = 0;      // full groups
  int partial = 0;         // tail blocks (lanes) of each row
  int pack = 1;            // P: rows whose tails share a tail group
  int64_t main_bytes = 0;  // bytes of a row's full groups
  int64_t tail_bytes = 0;  // bytes of a row's tail blocks (its share of a tail group)
  int64_t row_bytes = 0;   // main_bytes + tail_bytes
  int64_t x_groups() const { return groups + (partial > 0 ? 1 : 0); }
  bool shared_tail() const { return pack > 1; }
  // Bytes of the tail group of pack `pk` of a matrix of n_rows rows (fewer lanes in a short last pack).
  int64_t pack_tail_bytes(int64_t pk, int64_t n_rows) const {
    return tail_bytes * std::min<int64_t>(pack, n_rows - pk * pack);
  }
  // Where row r's full groups start.
  int64_t row_offset(int64_t r, int64_t n_rows) const {
    if (!shared_tail()) return r * row_bytes;
    const int64_t pk = r / pack;
    return pk * pack * row_bytes + pack_tail_bytes(pk, n_rows) + (r - pk * pack) * main_bytes;
  }
};
QgemmLayout qgemm_layout(DType t, int64_t n_blocks);

// Repacks rows [r0, r1) of a matrix of n_rows rows of n_blocks blocks from ggml layout (src: row 0) into the
// packed matrix at `dst` (n_rows * row_bytes bytes). Rows packed by different calls touch different bytes.
void qgemm_pack_weights(DType t, const void* src, uint8_t* dst, int64_t n_rows, int64_t r0, int64_t r1,
                        int64_t n_blocks);

// One token's activations, packed: per full group of 16 blocks, the int8 codes in step-major lane order,
// then dx[16] and c[16]; then the tail group (the tail blocks, `pack` times over).
struct alignas(64) XGroup {
  int8_t q[8 * 64];
  float d[kQGroup];
  float c[kQGroup];
};

// Quantizes one activation row (n = 32 * n_blocks floats) into the layout's x_groups() groups for weights of
// type t (which fixes c's factor; the tail group is zero past its pack * partial lanes). The rounding is
// quantize_row_q8x's.
void qgemm_pack_x(DType t, const float* x, XGroup* groups, int64_t n_blocks);

// The Q6_K layout of qgemm_pack_x (16-element lanes), which it calls for that type.
void qgemm_pack_x_q6k(const float* x, XGroup* groups, int64_t n_blocks);

// qgemm_pack_x with AVX-512: the same rounding (x * (1 / d) to nearest even), bit for bit.
void qgemm_pack_x_avx512(DType t, const float* x, XGroup* groups, int64_t n_blocks);

// out[t * out_stride + r] for rows [r0, r1) of the packed matrix w (n_rows rows, layout lay) and tokens
// [0, n_tokens) of the packed activations (x_stride groups apart); with `accumulate`, each result is added
// to what out holds (out + v, the residual connection). A range that starts or ends inside a pack computes
// that pack's tail group whole, so ranges aligned to lay.pack waste nothing. Requires AVX-512 VNNI.
void qgemm_avx512(DType t, const uint8_t* w, const QgemmLayout& lay, int64_t n_rows, int64_t r0, int64_t r1,
                  const XGroup* x, int64_t x_stride, int n_tokens, float* out, int64_t out_stride,
                  bool accumulate = false);

}  // namespace tern::cpu
