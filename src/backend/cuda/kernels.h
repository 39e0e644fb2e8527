// Host launchers of the CUDA kernels (one .cu per op family). Internal to src/backend/cuda/: each takes
// device pointers and a stream, queues its work and returns the launch status. Weight pointers are device
// copies in the file's own layout (core/quant.h); activations are fp32.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "backend/cuda/cuda_backend.h"
#include "core/dtype.h"
#include "model/config.h"

namespace tern::cuda {

// Weight row in the device copy: the bytes of one row of `cols` elements of type t.
struct DeviceWeight {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0, cols = 0;
  size_t row_bytes = 0;
};

cudaError_t launch_embedding(const DeviceWeight& table, const int* tokens, int n_tokens, float* out, cudaStream_t s);
cudaError_t launch_rmsnorm(const float* x, const DeviceWeight& w, float eps, int n_tokens, float* out, cudaStream_t s);
cudaError_t launch_rope(float* x, int n_tokens, int n_heads, int head_dim, int pos0, const float* freqs,
                        RopeStyle style, cudaStream_t s);
cudaError_t launch_swiglu(float* gate, const float* up, int64_t n, cudaStream_t s);
cudaError_t launch_add(float* x, const float* y, int64_t n, cudaStream_t s);
cudaError_t launch_add_bias(float* x, const DeviceWeight& b, int n_tokens, cudaStream_t s);

// out (n_tokens, rows) = x (n_tokens, cols) @ W^T with a matrix-vector kernel (n_tokens <= kMatvecMaxTokens
// for Fast; any for Naive/Warp). `v` must be the effective variant (matvec_effective).
cudaError_t launch_matvec(CudaMatmul v, const DeviceWeight& w, const float* x, int n_tokens, float* out, cudaStream_t s);

// The same through cuBLAS. `ws` holds gemm_workspace_bytes(...) bytes. Returns a readable reason on failure
// via `what` (a static string).
cudaError_t launch_gemm(cublasHandle_t h, const DeviceWeight& w, const float* x, int n_tokens, float* out, void* ws,
                        cudaStream_t s, const char** what);

// Paged KV cache access (KvView with device pointers; `blocks` is the device block table).
struct DeviceKv {
  DType dtype = DType::F32;  // F32 or F16
  uint8_t* k = nullptr;
  uint8_t* v = nullptr;
  int64_t block_bytes = 0, row_bytes = 0, row_elems = 0;
  int block_size = 0;
  const int32_t* blocks = nullptr;
};

cudaError_t launch_kv_store(const DeviceKv& kv, int pos0, int n_tokens, const float* k, const float* v, cudaStream_t s);

// Causal GQA attention of one sequence. n_tokens > 1: flash attention (flash_shape); n_tokens == 1: split-K
// flash decoding (decode_splits over n_sms) with `ws` of decode_workspace_bytes(n_heads, head_dim).
cudaError_t launch_attention(const float* q, const DeviceKv& kv, int n_tokens, int pos0, int n_heads, int n_kv_heads,
                             int head_dim, float* out, float* ws, int n_sms, cudaStream_t s);

// Raises the dynamic shared memory limit of the flash kernels to what head_dim 256 needs (once per device).
cudaError_t init_attention_kernels();

}  // namespace tern::cuda
