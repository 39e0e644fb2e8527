// Matrix-vector products for decode, in three steps of refinement (docs/cuda.md):
//   naive: one thread per output row, one element at a time. Neighbouring threads read addresses a whole
//          row apart, so every load is its own memory transaction: the baseline.
//   warp:  one warp per row; lane l reads elements l, l+32, ... (coalesced), a shuffle reduction sums them.
//   fast:  one warp per row, 4 rows per block; each lane loads 16 bytes at a time (float types: the warp
//          reads 512 contiguous bytes per step) or a whole quant block / Q4_K chunk, dequantizes in registers
//          and multiplies it with every token of the call (up to kMatvecMaxTokens), so each weight byte is
//          read from memory once per call.
#include "backend/cuda/common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.h"

namespace tern::cuda {

namespace {

dim3 to_dim3(Dim3 d) { return dim3(d.x, d.y, d.z); }

__global__ void matvec_naive(const uint8_t* w, DType t, size_t row_bytes, int64_t n_out, int64_t n_in, const float* x,
                             float* out) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= n_out) return;
  const uint8_t* row = w + r * row_bytes;
  const float* xt = x + blockIdx.y * n_in;
  float acc = 0.0f;
  for (int64_t i = 0; i < n_in; ++i) acc += load_weight(t, row, i) * xt[i];
  out[blockIdx.y * n_out + r] = acc;
}

__global__ void matvec_warp(const uint8_t* w, DType t, size_t row_bytes, int64_t n_out, int64_t n_in, const float* x,
                            float* out) {
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpRowsPerBlock + (threadIdx.x >> 5);
  if (r >= n_out) return;
  const uint8_t* row = w + r * row_bytes;
  const float* xt = x + blockIdx.y * n_in;
  float acc = 0.0f;
  for (int64_t i = lane; i < n_in; i += 32) acc += load_weight(t, row, i) * xt[i];
  acc = warp_sum(acc);
  if (lane == 0) out[blockIdx.y * n_out + r] = acc;
}

constexpr int NT = kMatvecMaxTokens;

__device__ __forceinline__ float4 ld_x4(const float* p) { return *reinterpret_cast<const float4*>(p); }

// Float weights: one 16-byte vector of V elements per lane per step.
template <DType T>
__device__ __forceinline__ void load_vec(const uint8_t* p, float* w) {
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  if constexpr (T == DType::F32) {
    w[0] = __uint_as_float(u.x), w[1] = __uint_as_float(u.y), w[2] = __uint_as_float(u.z), w[3] = __uint_as_float(u.w);
  } else {
    const uint32_t words[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      if constexpr (T == DType::F16) {
        w[2 * k] = half_bits(static_cast<uint16_t>(words[k] & 0xFFFF));
        w[2 * k + 1] = half_bits(static_cast<uint16_t>(words[k] >> 16));
      } else {
        w[2 * k] = bf16_bits(static_cast<uint16_t>(words[k] & 0xFFFF));
        w[2 * k + 1] = bf16_bits(static_cast<uint16_t>(words[k] >> 16));
      }
    }
  }
}

template <DType T>
__global__ void matvec_fast_float(const uint8_t* w, size_t row_bytes, int64_t n_out, int64_t n_in, const float* x,
                                  int nt, float* out) {
  constexpr int V = T == DType::F32 ? 4 : 8;
  constexpr int ES = T == DType::F32 ? 4 : 2;  // element size
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kFastRowsPerBlock + (threadIdx.x >> 5);
  if (r >= n_out) return;
  const uint8_t* row = w + r * row_bytes;
  float acc[NT] = {};
  for (int64_t base = static_cast<int64_t>(lane) * V; base < n_in; base += 32 * V) {
    float wv[V];
    load_vec<T>(row + base * ES, wv);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t < nt) {
#pragma unroll
        for (int k = 0; k < V; k += 4) {
          const float4 xv = ld_x4(x + t * n_in + base + k);
          acc[t] += wv[k] * xv.x + wv[k + 1] * xv.y + wv[k + 2] * xv.z + wv[k + 3] * xv.w;
        }
      }
    }
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    if (t < nt) {
      const float s = warp_sum(acc[t]);
      if (lane == 0) out[t * n_out + r] = s;
    }
  }
}

// Quantized weights: lane handles unit u (a 32-element block, or a 64-element Q4_K chunk) and adds
// its dot with each token's x to acc[t].
template <DType T>
__device__ __forceinline__ void unit_dot(const uint8_t* row, int64_t u, const float* x, int64_t n_in, int nt,
                                         float* acc) {
  if constexpr (T == DType::Q8_0) {
    const uint8_t* b = row + u * 34;
    const float d = half_bits(ld_u16(b));
    float s[NT] = {};
#pragma unroll
    for (int j = 0; j < 32; j += 2) {
      const uint16_t q2 = ld_u16(b + 2 + j);
      const float q0 = static_cast<float>(static_cast<int8_t>(q2 & 0xFF));
      const float q1 = static_cast<float>(static_cast<int8_t>(q2 >> 8));
#pragma unroll
      for (int t = 0; t < NT; ++t)
        if (t < nt) {
          const float2 xv = *reinterpret_cast<const float2*>(x + t * n_in + u * 32 + j);
          s[t] += q0 * xv.x + q1 * xv.y;
        }
    }
#pragma unroll
    for (int t = 0; t < NT; ++t) acc[t] += d * s[t];
  } else if constexpr (T == DType::Q4_0 || T == DType::Q4_1) {
    constexpr int BB = T == DType::Q4_0 ? 18 : 20;  // block bytes
    constexpr int QO = T == DType::Q4_0 ? 2 : 4;    // offset of the codes
    const uint8_t* b = row + u * BB;
    const float d = half_bits(ld_u16(b));
    float sq[NT] = {}, sx[NT] = {};
#pragma unroll
    for (int j = 0; j < 16; j += 2) {
      const uint16_t q2 = ld_u16(b + QO + j);
      const float lo0 = static_cast<float>(q2 & 0xF), hi0 = static_cast<float>((q2 >> 4) & 0xF);
      const float lo1 = static_cast<float>((q2 >> 8) & 0xF), hi1 = static_cast<float>(q2 >> 12);
#pragma unroll
      for (int t = 0; t < NT; ++t)
        if (t < nt) {
          const float* xt = x + t * n_in + u * 32;
          const float2 xl = *reinterpret_cast<const float2*>(xt + j);
          const float2 xh = *reinterpret_cast<const float2*>(xt + 16 + j);
          sq[t] += lo0 * xl.x + lo1 * xl.y + hi0 * xh.x + hi1 * xh.y;
          sx[t] += xl.x + xl.y + xh.x + xh.y;
        }
    }
    if constexpr (T == DType::Q4_0) {
#pragma unroll
      for (int t = 0; t < NT; ++t) acc[t] += d * (sq[t] - 8.0f * sx[t]);  // d * (q - 8)
    } else {
      const float m = half_bits(ld_u16(b + 2));
#pragma unroll
      for (int t = 0; t < NT; ++t) acc[t] += d * sq[t] + m * sx[t];  // d * q + m
    }
  } else {  // Q4_K: chunk c of block u / 4: sub-block 2c in the low nibbles, 2c + 1 in the high nibbles
    const uint8_t* b = row + (u / 4) * 144;
    const int c = static_cast<int>(u % 4);
    const float d = half_bits(ld_u16(b)), dmin = half_bits(ld_u16(b + 2));
    float sc0, m0, sc1, m1;
    q4k_scale_min(b + 4, 2 * c, &sc0, &m0);
    q4k_scale_min(b + 4, 2 * c + 1, &sc1, &m1);
    const uint4* qp = reinterpret_cast<const uint4*>(b + 16 + 32 * c);
    const uint4 qa = qp[0], qb = qp[1];
    const uint32_t words[8] = {qa.x, qa.y, qa.z, qa.w, qb.x, qb.y, qb.z, qb.w};
    float slq[NT] = {}, slx[NT] = {}, shq[NT] = {}, shx[NT] = {};
#pragma unroll
    for (int k = 0; k < 8; ++k) {  // bytes 4k .. 4k+3: elements 4k.. (low) and 32 + 4k.. (high)
      const uint32_t wd = words[k];
#pragma unroll
      for (int t = 0; t < NT; ++t)
        if (t < nt) {
          const float* xt = x + t * n_in + u * 64;
          const float4 xl = ld_x4(xt + 4 * k), xh = ld_x4(xt + 32 + 4 * k);
          slq[t] += static_cast<float>(wd & 0xF) * xl.x + static_cast<float>((wd >> 8) & 0xF) * xl.y +
                    static_cast<float>((wd >> 16) & 0xF) * xl.z + static_cast<float>((wd >> 24) & 0xF) * xl.w;
          shq[t] += static_cast<float>((wd >> 4) & 0xF) * xh.x + static_cast<float>((wd >> 12) & 0xF) * xh.y +
                    static_cast<float>((wd >> 20) & 0xF) * xh.z + static_cast<float>(wd >> 28) * xh.w;
          slx[t] += xl.x + xl.y + xl.z + xl.w;
          shx[t] += xh.x + xh.y + xh.z + xh.w;
        }
    }
#pragma unroll
    for (int t = 0; t < NT; ++t)
      acc[t] += d * (sc0 * slq[t] + sc1 * shq[t]) - dmin * (m0 * slx[t] + m1 * shx[t]);
  }
}

template <DType T>
__global__ void matvec_fast_quant(const uint8_t* w, size_t row_bytes, int64_t n_out, int64_t n_in, const float* x,
                                  int nt, float* out) {
  constexpr int U = T == DType::Q4_K ? 64 : 32;
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kFastRowsPerBlock + (threadIdx.x >> 5);
  if (r >= n_out) return;
  const uint8_t* row = w + r * row_bytes;
  float acc[NT] = {};
  const int64_t n_units = n_in / U;
  for (int64_t u = lane; u < n_units; u += 32) unit_dot<T>(row, u, x, n_in, nt, acc);
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    if (t < nt) {
      const float s = warp_sum(acc[t]);
      if (lane == 0) out[t * n_out + r] = s;
    }
  }
}

}  // namespace

cudaError_t launch_matvec(CudaMatmul v, const DeviceWeight& w, const float* x, int n_tokens, float* out, cudaStream_t s) {
  const auto* wp = static_cast<const uint8_t*>(w.data);
  if (v == CudaMatmul::Naive || v == CudaMatmul::Warp) {
    const LaunchShape sh = matvec_shape(v, w.rows, n_tokens);
    if (v == CudaMatmul::Naive)
      matvec_naive<<<to_dim3(sh.grid), to_dim3(sh.block), 0, s>>>(wp, w.dtype, w.row_bytes, w.rows, w.cols, x, out);
    else
      matvec_warp<<<to_dim3(sh.grid), to_dim3(sh.block), 0, s>>>(wp, w.dtype, w.row_bytes, w.rows, w.cols, x, out);
    return cudaGetLastError();
  }
  // Fast: the tokens of the call in groups of kMatvecMaxTokens.
  const LaunchShape sh = matvec_shape(CudaMatmul::Fast, w.rows, n_tokens);
  for (int t0 = 0; t0 < n_tokens; t0 += NT) {
    const int nt = n_tokens - t0 < NT ? n_tokens - t0 : NT;
    const float* xt = x + static_cast<int64_t>(t0) * w.cols;
    float* ot = out + static_cast<int64_t>(t0) * w.rows;
    const dim3 g = to_dim3(sh.grid), b = to_dim3(sh.block);
    switch (w.dtype) {
      case DType::F32: matvec_fast_float<DType::F32><<<g, b, 0, s>>>(wp, w.row_bytes, w.rows, w.cols, xt, nt, ot); break;
      case DType::F16: matvec_fast_float<DType::F16><<<g, b, 0, s>>>(wp, w.row_bytes, w.rows, w.cols, xt, nt, ot); break;
      case DType::BF16: matvec_fast_float<DType::BF16><<<g, b, 0, s>>>(wp, w.row_bytes, w.rows, w.cols, xt, nt, ot); break;
      case DType::Q8_0: matvec_fast_quant<DType::Q8_0><<<g, b, 0, s>>>(wp, w.row_bytes, w.rows, w.cols, xt, nt, ot); break;
      case DType::Q4_0: matvec_fast_quant<DType::Q4_0><<<g, b, 0, s>>>(wp, w.row_bytes, w.rows, w.cols, xt, nt, ot); break;
      case DType::Q4_1: matvec_fast_quant<DType::Q4_1><<<g, b, 0, s>>>(wp, w.row_bytes, w.rows, w.cols, xt, nt, ot); break;
      case DType::Q4_K: matvec_fast_quant<DType::Q4_K><<<g, b, 0, s>>>(wp, w.row_bytes, w.rows, w.cols, xt, nt, ot); break;
      default: return cudaErrorInvalidValue;
    }
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

}  // namespace tern::cuda
