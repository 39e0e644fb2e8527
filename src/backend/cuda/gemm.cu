// Matrix products for prefill and batches (n_tokens > kMatvecMaxTokens, or --matmul cublas) through cuBLAS.
//   F32 weights:        SGEMM on the weights as they are.
//   F16 / BF16 weights: the activations are converted to the weight's type, then GemmEx with fp32 output and
//                       fp32 accumulation (tensor cores).
//   quantized weights:  a slab of rows at a time (gemm_slab_rows) is dequantized to f16, then as F16.
// Row-major out (n_tokens, n_out) is column-major (n_out, n_tokens); row-major W (n_out, n_in) is
// column-major (n_in, n_out), so out = op(W) x with op = transpose, k = n_in.
#include "backend/cuda/common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.h"

namespace tern::cuda {

namespace {

__global__ void to_half_kernel(const float* x, int64_t n, __half* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __float2half(x[i]);
}

__global__ void to_bf16_kernel(const float* x, int64_t n, __nv_bfloat16* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = __float2bfloat16(x[i]);
}

// rows x n_in elements of W starting at row r0, as f16 (row-major, one slab).
__global__ void dequant_rows_kernel(const uint8_t* w, DType t, size_t row_bytes, int64_t r0, int64_t rows, int64_t n_in,
                                    __half* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * n_in) return;
  const int64_t r = i / n_in, c = i % n_in;
  out[i] = __float2half(load_weight(t, w + (r0 + r) * row_bytes, c));
}

}  // namespace

cudaError_t launch_gemm(cublasHandle_t h, const DeviceWeight& w, const float* x, int n_tokens, float* out, void* ws,
                        cudaStream_t s, const char** what) {
  const float alpha = 1.0f, beta = 0.0f;
  const int n_out = static_cast<int>(w.rows), n_in = static_cast<int>(w.cols);
  *what = "cuBLAS";
  cublasStatus_t st = cublasSetStream(h, s);
  if (st != CUBLAS_STATUS_SUCCESS) {
    *what = cublasGetStatusString(st);
    return cudaErrorUnknown;
  }
  if (w.dtype == DType::F32) {
    st = cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, n_out, n_tokens, n_in, &alpha, static_cast<const float*>(w.data), n_in,
                     x, n_in, &beta, out, n_out);
    if (st != CUBLAS_STATUS_SUCCESS) {
      *what = cublasGetStatusString(st);
      return cudaErrorUnknown;
    }
    return cudaSuccess;
  }
  // Activations in the 16-bit type of the (possibly dequantized) weight.
  const int64_t nx = static_cast<int64_t>(n_tokens) * n_in;
  const LaunchShape xs = elementwise_shape(nx);
  const bool bf16 = w.dtype == DType::BF16;
  if (bf16)
    to_bf16_kernel<<<xs.grid.x, xs.block.x, 0, s>>>(x, nx, static_cast<__nv_bfloat16*>(ws));
  else
    to_half_kernel<<<xs.grid.x, xs.block.x, 0, s>>>(x, nx, static_cast<__half*>(ws));
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  const cudaDataType_t type = bf16 ? CUDA_R_16BF : CUDA_R_16F;
  if (w.dtype == DType::F16 || bf16) {
    st = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n_out, n_tokens, n_in, &alpha, w.data, type, n_in, ws, type, n_in,
                      &beta, out, CUDA_R_32F, n_out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) {
      *what = cublasGetStatusString(st);
      return cudaErrorUnknown;
    }
    return cudaSuccess;
  }
  __half* slab = reinterpret_cast<__half*>(static_cast<uint8_t*>(ws) + (2 * static_cast<size_t>(nx) + 255) / 256 * 256);
  const int64_t slab_rows = gemm_slab_rows(n_out, n_in);
  for (int64_t r0 = 0; r0 < n_out; r0 += slab_rows) {
    const int64_t rows = n_out - r0 < slab_rows ? n_out - r0 : slab_rows;
    const LaunchShape ds = elementwise_shape(rows * n_in);
    dequant_rows_kernel<<<ds.grid.x, ds.block.x, 0, s>>>(static_cast<const uint8_t*>(w.data), w.dtype, w.row_bytes, r0,
                                                         rows, n_in, slab);
    e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    st = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), n_tokens, n_in, &alpha, slab, CUDA_R_16F, n_in,
                      ws, CUDA_R_16F, n_in, &beta, out + r0, CUDA_R_32F, n_out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) {
      *what = cublasGetStatusString(st);
      return cudaErrorUnknown;
    }
  }
  return cudaSuccess;
}

}  // namespace tern::cuda
