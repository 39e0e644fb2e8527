// Launch shapes of the CUDA kernels, as plain C++ so that they are unit-tested on machines without a GPU
// (tests/cuda/test_cuda_launch.cpp). The kernels (*.cu) take their grid, block and shared-memory sizes
// from here; docs/cuda.md explains each choice.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "backend/cuda/cuda_backend.h"
#include "core/dtype.h"

namespace tern::cuda {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};
struct LaunchShape {
  Dim3 grid, block;
  size_t smem = 0;  // dynamic shared memory, bytes
};

inline unsigned ceil_div(int64_t a, int64_t b) { return static_cast<unsigned>((a + b - 1) / b); }

// ---- matrix-vector products (decode) ----------------------------------------------------------------------

// Calls with at most this many tokens use the matrix-vector kernels (the fast one reads each weight once for
// all of them); more go to cuBLAS, where the weight read is amortised over enough tokens to be compute-bound.
constexpr int kMatvecMaxTokens = 4;
constexpr int kNaiveThreads = 128;   // naive: one thread per output row
constexpr int kWarpRowsPerBlock = 8; // warp: one warp per row, 8 warps per block
constexpr int kFastRowsPerBlock = 4; // fast: one warp per row, 4 rows (128 threads) per block

// Elements of one 16-byte vector load for the plain float types (fast kernel), 0 for block-quantized types.
inline int vector_elems(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16:
    case DType::BF16: return 8;
    default: return 0;
  }
}

// Elements one lane handles per step of the fast kernel for quantized types: a whole block (Q8_0, Q4_0,
// Q4_1: 32) or, for Q4_K, one 64-element chunk (32 bytes of codes holding two sub-blocks).
inline int quant_unit_elems(DType t) {
  switch (t) {
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_1: return 32;
    case DType::Q4_K: return 64;
    default: return 0;
  }
}

// Whether the fast kernel can take this weight: its 16-byte loads need rows whose length is a whole number
// of vectors (float types) and an input x aligned to 16 bytes (every row of x then is too, since n_in is a
// multiple of 4). Otherwise the warp kernel runs instead.
inline bool fast_matvec_ok(DType t, int64_t n_in, bool x_aligned16) {
  if (!x_aligned16) return false;
  if (const int v = vector_elems(t)) return n_in % v == 0;
  if (const int u = quant_unit_elems(t)) return n_in % u == 0;
  return false;
}

// The kernel that actually runs for a requested variant (fast falls back to warp when its loads don't fit).
inline CudaMatmul matvec_effective(CudaMatmul want, DType t, int64_t n_in, bool x_aligned16) {
  if (want == CudaMatmul::Fast && !fast_matvec_ok(t, n_in, x_aligned16)) return CudaMatmul::Warp;
  return want;
}

// Grid and block for out (n_tokens, n_out) = x (n_tokens, n_in) @ W^T. Naive and warp run one token per
// grid row (blockIdx.y); fast loops over the tokens inside the kernel (grid.y = 1).
inline LaunchShape matvec_shape(CudaMatmul v, int64_t n_out, int n_tokens) {
  LaunchShape s;
  switch (v) {
    case CudaMatmul::Naive:
      s.block.x = kNaiveThreads;
      s.grid.x = ceil_div(n_out, kNaiveThreads);
      s.grid.y = static_cast<unsigned>(n_tokens);
      break;
    case CudaMatmul::Warp:
      s.block.x = 32 * kWarpRowsPerBlock;
      s.grid.x = ceil_div(n_out, kWarpRowsPerBlock);
      s.grid.y = static_cast<unsigned>(n_tokens);
      break;
    case CudaMatmul::Fast:
    case CudaMatmul::Cublas:  // not a matvec kernel; shape of the fast one for completeness
      s.block.x = 32 * kFastRowsPerBlock;
      s.grid.x = ceil_div(n_out, kFastRowsPerBlock);
      break;
  }
  return s;
}

// ---- GEMM through cuBLAS (prefill and batches) --------------------------------------------------------------

// Quantized weights are dequantized to f16 a slab of rows at a time, so the scratch stays bounded whatever the
// matrix (a 128256 x 4096 classifier would need 1 GiB at once): at most this many bytes per slab.
constexpr size_t kDequantSlabBytes = size_t{64} << 20;

// Rows per dequantized slab: as many as fit in kDequantSlabBytes, at least one, at most n_out.
inline int64_t gemm_slab_rows(int64_t n_out, int64_t n_in) {
  const int64_t rows = static_cast<int64_t>(kDequantSlabBytes / (2 * static_cast<size_t>(std::max<int64_t>(n_in, 1))));
  return std::clamp<int64_t>(rows, 1, std::max<int64_t>(n_out, 1));
}

// Scratch bytes of one GEMM call: the activations converted to 16-bit (n_tokens x n_in) unless the weight is
// F32 (plain SGEMM), plus one f16 slab for quantized weights. Each part is rounded up to 256 bytes.
inline size_t gemm_workspace_bytes(DType t, int64_t n_out, int64_t n_in, int n_tokens) {
  auto round = [](size_t b) { return (b + 255) / 256 * 256; };
  if (t == DType::F32) return 0;
  size_t bytes = round(2 * static_cast<size_t>(n_tokens) * static_cast<size_t>(n_in));
  if (t != DType::F16 && t != DType::BF16) bytes += round(2 * static_cast<size_t>(gemm_slab_rows(n_out, n_in) * n_in));
  return bytes;
}

// ---- attention ----------------------------------------------------------------------------------------------

constexpr int kMaxHeadDim = 256;   // lanes hold head_dim / 32 <= 8 values each
constexpr int kFlashRows = 16;     // query rows (position, head of the group) per block: 4 warps x 4 rows
constexpr int kFlashKeys = 32;     // keys per tile: one per lane when scoring
constexpr int kFlashThreads = 128;
constexpr int kDecodeThreads = 128;  // 4 warps, each walking every 4th key of the split
constexpr int kMaxSplits = 64;
constexpr int kMinKeysPerSplit = 64;

// Prefill (n_tokens > 1): the rows of one kv head are its (query position, query head) pairs, so a block
// shares each K/V tile among the heads of a GQA group without copying K/V per head.
// grid = (ceil(n_tokens * group / kFlashRows), n_kv_heads).
inline LaunchShape flash_shape(int n_tokens, int n_heads, int n_kv_heads, int head_dim) {
  LaunchShape s;
  const int group = n_heads / n_kv_heads;
  s.block.x = kFlashThreads;
  s.grid.x = ceil_div(static_cast<int64_t>(n_tokens) * group, kFlashRows);
  s.grid.y = static_cast<unsigned>(n_kv_heads);
  // Q rows (kFlashRows x head_dim), K tile (kFlashKeys x (head_dim + 1), padded against bank conflicts),
  // V tile (kFlashKeys x head_dim), all fp32.
  s.smem = sizeof(float) * (static_cast<size_t>(kFlashRows) * head_dim +
                            static_cast<size_t>(kFlashKeys) * (head_dim + 1) + static_cast<size_t>(kFlashKeys) * head_dim);
  return s;
}

// Key tiles a flash block walks: up to the last key its last row may see (causal).
inline int flash_tiles(int pos0, int last_token) { return static_cast<int>(ceil_div(pos0 + last_token + 1, kFlashKeys)); }

// Decode (one query per head): split the keys so that n_heads * splits blocks fill the GPU (two blocks per
// SM), but give each split at least kMinKeysPerSplit keys; at most kMaxSplits.
inline int decode_splits(int n_keys, int n_heads, int n_sms) {
  const int want = static_cast<int>(ceil_div(2 * static_cast<int64_t>(std::max(n_sms, 1)), std::max(n_heads, 1)));
  const int by_keys = static_cast<int>(ceil_div(n_keys, kMinKeysPerSplit));
  return std::clamp(std::min(want, by_keys), 1, kMaxSplits);
}

// grid = (n_heads, splits); one block of kDecodeThreads per (head, split).
inline LaunchShape decode_shape(int n_heads, int splits, int head_dim) {
  LaunchShape s;
  s.block.x = kDecodeThreads;
  s.grid.x = static_cast<unsigned>(n_heads);
  s.grid.y = static_cast<unsigned>(splits);
  // The 4 warps' (max, sum, head_dim accumulators) for the in-block merge.
  s.smem = sizeof(float) * (kDecodeThreads / 32) * (static_cast<size_t>(head_dim) + 2);
  return s;
}

// Partial results of split-K decoding: per (head, split) a running max, a sum and head_dim unnormalised
// outputs, merged by a second kernel.
inline size_t decode_workspace_bytes(int n_heads, int head_dim) {
  return sizeof(float) * static_cast<size_t>(n_heads) * kMaxSplits * (static_cast<size_t>(head_dim) + 2);
}

// ---- small ops ----------------------------------------------------------------------------------------------

constexpr int kElementwiseThreads = 256;
constexpr int kNormThreads = 256;  // one block per token row

inline LaunchShape elementwise_shape(int64_t n) {
  LaunchShape s;
  s.block.x = kElementwiseThreads;
  s.grid.x = ceil_div(std::max<int64_t>(n, 1), kElementwiseThreads);
  return s;
}

}  // namespace tern::cuda
