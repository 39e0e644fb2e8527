// Device helpers shared by the kernels: reading elements of every supported weight type (the ggml block
// layouts of core/quant.h) and warp/block reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "core/dtype.h"

namespace tern::cuda {

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float half_bits(uint16_t b) { return __half2float(__ushort_as_half(b)); }
__device__ __forceinline__ float bf16_bits(uint16_t b) { return __uint_as_float(static_cast<uint32_t>(b) << 16); }

// Little-endian 16-bit field at a 2-byte aligned address (every ggml block is 2-byte aligned).
__device__ __forceinline__ uint16_t ld_u16(const uint8_t* p) { return *reinterpret_cast<const uint16_t*>(p); }

// The 6-bit scale and min of sub-block s of a Q4_K block (the "k4" packing, see core/quant.h).
__device__ __forceinline__ void q4k_scale_min(const uint8_t* scales, int s, float* sc, float* m) {
  if (s < 4) {
    *sc = static_cast<float>(scales[s] & 63);
    *m = static_cast<float>(scales[s + 4] & 63);
  } else {
    *sc = static_cast<float>((scales[s + 4] & 0xF) | ((scales[s - 4] >> 6) << 4));
    *m = static_cast<float>((scales[s + 4] >> 4) | ((scales[s] >> 6) << 4));
  }
}

// Element i of a row of type t (any supported weight type), as fp32. Used by the simple kernels (embedding,
// norms, biases, the naive and warp matvecs, the dequantize-for-GEMM pass).
__device__ __forceinline__ float load_weight(DType t, const uint8_t* row, int64_t i) {
  switch (t) {
    case DType::F32: return reinterpret_cast<const float*>(row)[i];
    case DType::F16: return __half2float(reinterpret_cast<const __half*>(row)[i]);
    case DType::BF16: return bf16_bits(reinterpret_cast<const uint16_t*>(row)[i]);
    case DType::Q8_0: {  // 34 bytes: f16 d, 32 x int8
      const uint8_t* b = row + (i / 32) * 34;
      return half_bits(ld_u16(b)) * static_cast<float>(static_cast<int8_t>(b[2 + i % 32]));
    }
    case DType::Q4_0: {  // 18 bytes: f16 d, 16 bytes of nibbles (j lo, j + 16 hi)
      const uint8_t* b = row + (i / 32) * 18;
      const int j = static_cast<int>(i % 32);
      const int q = j < 16 ? (b[2 + j] & 0xF) : (b[2 + j - 16] >> 4);
      return half_bits(ld_u16(b)) * static_cast<float>(q - 8);
    }
    case DType::Q4_1: {  // 20 bytes: f16 d, f16 m, 16 bytes of nibbles
      const uint8_t* b = row + (i / 32) * 20;
      const int j = static_cast<int>(i % 32);
      const int q = j < 16 ? (b[4 + j] & 0xF) : (b[4 + j - 16] >> 4);
      return half_bits(ld_u16(b)) * static_cast<float>(q) + half_bits(ld_u16(b + 2));
    }
    case DType::Q4_K: {  // 144 bytes: f16 d, f16 dmin, 12 bytes of scales, 128 bytes of nibbles
      const uint8_t* b = row + (i / 256) * 144;
      const int e = static_cast<int>(i % 256), c = e / 64, l = e % 64;
      const uint8_t byte = b[16 + 32 * c + (l % 32)];
      const int q = l < 32 ? (byte & 0xF) : (byte >> 4);
      float sc, m;
      q4k_scale_min(b + 4, 2 * c + (l >= 32), &sc, &m);
      return half_bits(ld_u16(b)) * sc * static_cast<float>(q) - half_bits(ld_u16(b + 2)) * m;
    }
    case DType::Q6_K: {  // 210 bytes: 128 bytes low nibbles, 64 bytes high bit pairs, 16 int8 scales, f16 d
      const uint8_t* b = row + (i / 256) * 210;
      const int e = static_cast<int>(i % 256), h = e / 128, w = e % 128, l = w % 32, k = w / 32;
      // Elements l, l+32, l+64, l+96 of half h: ql[l] lo, ql[l+32] lo, ql[l] hi, ql[l+32] hi; high bits
      // 2k, 2k+1 of qh[l].
      const uint8_t qlb = b[64 * h + l + (k & 1) * 32];
      const int lo = k < 2 ? (qlb & 0xF) : (qlb >> 4);
      const int hi = (b[128 + 32 * h + l] >> (2 * k)) & 3;
      return half_bits(ld_u16(b + 208)) * static_cast<float>(static_cast<int8_t>(b[192 + e / 16])) *
             static_cast<float>((lo | (hi << 4)) - 32);
    }
    default: return 0.0f;  // rejected at upload (cuda_supports_weight)
  }
}

}  // namespace tern::cuda
