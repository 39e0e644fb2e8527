// The small ops: embedding gather, RMSNorm, RoPE, SwiGLU, residual add, bias add. Each is a single pass
// over its data; shapes come from launch.h.
#include "backend/cuda/common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.h"

namespace tern::cuda {

namespace {

dim3 to_dim3(Dim3 d) { return dim3(d.x, d.y, d.z); }

// out (n_tokens, dim): grid (ceil(dim / 256), n_tokens).
__global__ void embedding_kernel(const uint8_t* table, DType t, size_t row_bytes, int64_t dim, const int* tokens,
                                 float* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= dim) return;
  const int tok = tokens[blockIdx.y];
  out[blockIdx.y * dim + i] = load_weight(t, table + static_cast<size_t>(tok) * row_bytes, i);
}

// One block per token row: sum of squares in fp32 (per thread, then warps, then the block).
__global__ void rmsnorm_kernel(const float* x, const uint8_t* w, DType wt, float eps, int64_t n, float* out) {
  __shared__ float partial[32];
  const float* xt = x + blockIdx.x * n;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += xt[i] * xt[i];
  ss = warp_sum(ss);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < (blockDim.x >> 5) ? partial[threadIdx.x] : 0.0f;
    v = warp_sum(v);
    if (threadIdx.x == 0) partial[0] = v;
  }
  __syncthreads();
  const float scale = rsqrtf(partial[0] / static_cast<float>(n) + eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) out[blockIdx.x * n + i] = xt[i] * scale * load_weight(wt, w, i);
}

// One thread per (token, head, pair). The angle is formed and turned in double, like the reference, so that
// large positions keep their precision (pos * freq reaches thousands of radians).
__global__ void rope_kernel(float* x, int n_tokens, int n_heads, int head_dim, int pos0, const float* freqs,
                            bool adjacent) {
  const int half = head_dim / 2;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<int64_t>(n_tokens) * n_heads * half) return;
  const int i = static_cast<int>(idx % half);
  const int64_t th = idx / half;  // token * n_heads + head
  const int t = static_cast<int>(th / n_heads);
  float* v = x + th * head_dim;
  double s, c;
  sincos(static_cast<double>(pos0 + t) * static_cast<double>(freqs[i]), &s, &c);
  const float cf = static_cast<float>(c), sf = static_cast<float>(s);
  const int a = adjacent ? 2 * i : i, b = adjacent ? 2 * i + 1 : i + half;
  const float x0 = v[a], x1 = v[b];
  v[a] = x0 * cf - x1 * sf;
  v[b] = x0 * sf + x1 * cf;
}

__global__ void swiglu_kernel(float* gate, const float* up, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = gate[i];
  gate[i] = g / (1.0f + expf(-g)) * up[i];
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] += y[i];
}

__global__ void add_bias_kernel(float* x, const uint8_t* b, DType bt, int64_t width, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] += load_weight(bt, b, i % width);
}

}  // namespace

cudaError_t launch_embedding(const DeviceWeight& table, const int* tokens, int n_tokens, float* out, cudaStream_t s) {
  LaunchShape sh = elementwise_shape(table.cols);
  sh.grid.y = static_cast<unsigned>(n_tokens);
  embedding_kernel<<<to_dim3(sh.grid), to_dim3(sh.block), 0, s>>>(static_cast<const uint8_t*>(table.data), table.dtype,
                                                                  table.row_bytes, table.cols, tokens, out);
  return cudaGetLastError();
}

cudaError_t launch_rmsnorm(const float* x, const DeviceWeight& w, float eps, int n_tokens, float* out, cudaStream_t s) {
  rmsnorm_kernel<<<n_tokens, kNormThreads, 0, s>>>(x, static_cast<const uint8_t*>(w.data), w.dtype, eps, w.cols, out);
  return cudaGetLastError();
}

cudaError_t launch_rope(float* x, int n_tokens, int n_heads, int head_dim, int pos0, const float* freqs,
                        RopeStyle style, cudaStream_t s) {
  const LaunchShape sh = elementwise_shape(static_cast<int64_t>(n_tokens) * n_heads * (head_dim / 2));
  rope_kernel<<<to_dim3(sh.grid), to_dim3(sh.block), 0, s>>>(x, n_tokens, n_heads, head_dim, pos0, freqs,
                                                             style == RopeStyle::Adjacent);
  return cudaGetLastError();
}

cudaError_t launch_swiglu(float* gate, const float* up, int64_t n, cudaStream_t s) {
  const LaunchShape sh = elementwise_shape(n);
  swiglu_kernel<<<to_dim3(sh.grid), to_dim3(sh.block), 0, s>>>(gate, up, n);
  return cudaGetLastError();
}

cudaError_t launch_add(float* x, const float* y, int64_t n, cudaStream_t s) {
  const LaunchShape sh = elementwise_shape(n);
  add_kernel<<<to_dim3(sh.grid), to_dim3(sh.block), 0, s>>>(x, y, n);
  return cudaGetLastError();
}

cudaError_t launch_add_bias(float* x, const DeviceWeight& b, int n_tokens, cudaStream_t s) {
  const int64_t n = b.cols * n_tokens;
  const LaunchShape sh = elementwise_shape(n);
  add_bias_kernel<<<to_dim3(sh.grid), to_dim3(sh.block), 0, s>>>(x, static_cast<const uint8_t*>(b.data), b.dtype,
                                                                 b.cols, n);
  return cudaGetLastError();
}

}  // namespace tern::cuda
