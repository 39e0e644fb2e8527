// The KV cache store and causal grouped-query attention over the paged cache (KvView with a device block
// table):
//   prefill (n_tokens > 1): flash attention. A block takes kFlashRows query rows of one kv head (the rows are
//     (position, head-of-the-group) pairs, so a GQA group shares every K/V tile without copying K/V per head),
//     walks the keys in tiles of kFlashKeys staged in shared memory as fp32, and keeps an online softmax per
//     row (running max m, running sum l, unnormalised output). Tiles past a row's position are skipped; the
//     tile holding it is masked.
//   decode (n_tokens == 1): split-K flash decoding. The keys of each head are split over grid.y blocks so
//     that long contexts still fill the GPU; each block's 4 warps walk every 4th key of its split with an
//     online softmax, merge in shared memory, and a second kernel merges the splits:
//       M = max_s m_s,  L = sum_s l_s e^(m_s - M),  out = sum_s o_s e^(m_s - M) / L.
// The cache holds F32 or F16 rows; scores and sums are fp32.
#include <cmath>

#include "backend/cuda/common.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.h"

namespace tern::cuda {

namespace {

constexpr int kDimsPerLane = kMaxHeadDim / 32;

__device__ __forceinline__ float kv_get(const float* row, int e) { return row[e]; }
__device__ __forceinline__ float kv_get(const __half* row, int e) { return __half2float(row[e]); }
__device__ __forceinline__ void kv_put(float* row, int e, float v) { row[e] = v; }
__device__ __forceinline__ void kv_put(__half* row, int e, float v) { row[e] = __float2half(v); }

// Row `pos` of a pool, through the block table.
__device__ __forceinline__ uint8_t* kv_row(uint8_t* pool, const DeviceKv& kv, int pos) {
  return pool + static_cast<int64_t>(kv.blocks[pos / kv.block_size]) * kv.block_bytes +
         static_cast<int64_t>(pos % kv.block_size) * kv.row_bytes;
}

// exp(a - b), 0 when a is -inf (an empty partial result), whatever b is.
__device__ __forceinline__ float rescale(float a, float b) { return a == -INFINITY ? 0.0f : expf(a - b); }

template <typename KT>
__global__ void kv_store_kernel(DeviceKv kv, int pos0, const float* k, const float* v) {
  const int t = blockIdx.x;
  KT* kr = reinterpret_cast<KT*>(kv_row(kv.k, kv, pos0 + t));
  KT* vr = reinterpret_cast<KT*>(kv_row(kv.v, kv, pos0 + t));
  for (int e = threadIdx.x; e < kv.row_elems; e += blockDim.x) {
    kv_put(kr, e, k[static_cast<int64_t>(t) * kv.row_elems + e]);
    kv_put(vr, e, v[static_cast<int64_t>(t) * kv.row_elems + e]);
  }
}

template <typename KT>
__global__ void flash_kernel(const float* q, DeviceKv kv, int n_tokens, int pos0, int n_heads, int group, int hd,
                             float scale, float* out) {
  extern __shared__ float sm[];
  float* qs = sm;                        // (kFlashRows, hd), pre-scaled
  float* ks = qs + kFlashRows * hd;      // (kFlashKeys, hd + 1)
  float* vs = ks + kFlashKeys * (hd + 1);  // (kFlashKeys, hd)
  const int kvh = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int rows_total = n_tokens * group, r0 = blockIdx.x * kFlashRows;
  constexpr int kRowsPerWarp = kFlashRows / (kFlashThreads / 32);

  for (int idx = threadIdx.x; idx < kFlashRows * hd; idx += blockDim.x) {
    const int r = r0 + idx / hd, d = idx % hd;
    float val = 0.0f;
    if (r < rows_total) {
      const int t = r / group, h = kvh * group + r % group;
      val = q[(static_cast<int64_t>(t) * n_heads + h) * hd + d] * scale;
    }
    qs[idx] = val;
  }
  const int r_last = min(r0 + kFlashRows, rows_total) - 1;
  const int key_end = pos0 + r_last / group + 1;  // keys 0 .. key_end - 1 are seen by some row of the block

  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kDimsPerLane];
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    m[rr] = -INFINITY;
    l[rr] = 0.0f;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) acc[rr][i] = 0.0f;
  }

  for (int j0 = 0; j0 < key_end; j0 += kFlashKeys) {
    __syncthreads();  // the previous tile is consumed (and, the first time, qs is written)
    for (int idx = threadIdx.x; idx < kFlashKeys * hd; idx += blockDim.x) {
      const int jj = idx / hd, d = idx % hd, j = j0 + jj;
      float kval = 0.0f, vval = 0.0f;  // zeros past the end: p = 0 must not meet a NaN
      if (j < key_end) {
        kval = kv_get(reinterpret_cast<const KT*>(kv_row(kv.k, kv, j)) + static_cast<int64_t>(kvh) * hd, d);
        vval = kv_get(reinterpret_cast<const KT*>(kv_row(kv.v, kv, j)) + static_cast<int64_t>(kvh) * hd, d);
      }
      ks[jj * (hd + 1) + d] = kval;
      vs[jj * hd + d] = vval;
    }
    __syncthreads();
#pragma unroll
    for (int rr = 0; rr < kRowsPerWarp; ++rr) {
      const int lr = warp * kRowsPerWarp + rr, r = r0 + lr;
      if (r >= rows_total) break;           // uniform across the warp
      const int limit = pos0 + r / group;   // the last key this row sees
      if (j0 > limit) continue;             // uniform across the warp
      const int j = j0 + lane;
      float s = -INFINITY;
      if (j <= limit) {
        float dot = 0.0f;
        for (int d = 0; d < hd; ++d) dot += qs[lr * hd + d] * ks[lane * (hd + 1) + d];
        s = dot;
      }
      const float m_new = fmaxf(m[rr], warp_max(s));  // finite: key j0 <= limit is in the tile
      const float corr = rescale(m[rr], m_new);
      const float p = j <= limit ? expf(s - m_new) : 0.0f;
      l[rr] = l[rr] * corr + warp_sum(p);
      const int nk = min(kFlashKeys, limit - j0 + 1);
#pragma unroll
      for (int i = 0; i < kDimsPerLane; ++i) acc[rr][i] *= corr;
      for (int jj = 0; jj < nk; ++jj) {
        const float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
        for (int i = 0; i < kDimsPerLane; ++i) {
          const int d = lane + 32 * i;
          if (d < hd) acc[rr][i] += pj * vs[jj * hd + d];
        }
      }
      m[rr] = m_new;
    }
  }
#pragma unroll
  for (int rr = 0; rr < kRowsPerWarp; ++rr) {
    const int r = r0 + warp * kRowsPerWarp + rr;
    if (r >= rows_total) break;
    const int t = r / group, h = kvh * group + r % group;
    float* o = out + (static_cast<int64_t>(t) * n_heads + h) * hd;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) o[d] = acc[rr][i] / l[rr];
    }
  }
}

// One (head, split) per block. With one split the block writes the normalised output itself; otherwise
// (m, l, o[hd]) go to ws[(h * splits + split) * (hd + 2)].
template <typename KT>
__global__ void decode_kernel(const float* q, DeviceKv kv, int n_keys, int group, int hd, float scale, int splits,
                              float* ws, float* out) {
  extern __shared__ float sm[];  // (4 warps, hd + 2)
  const int h = blockIdx.x, split = blockIdx.y, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n_warps = blockDim.x >> 5;
  const int kvh = h / group;
  const int chunk = (n_keys + splits - 1) / splits;
  const int j_begin = split * chunk, j_end = min(n_keys, j_begin + chunk);
  float qr[kDimsPerLane], acc[kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    qr[i] = d < hd ? q[static_cast<int64_t>(h) * hd + d] * scale : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int j = j_begin + warp; j < j_end; j += n_warps) {
    const KT* kr = reinterpret_cast<const KT*>(kv_row(kv.k, kv, j)) + static_cast<int64_t>(kvh) * hd;
    const KT* vr = reinterpret_cast<const KT*>(kv_row(kv.v, kv, j)) + static_cast<int64_t>(kvh) * hd;
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) dot += qr[i] * kv_get(kr, d);
    }
    const float s = warp_sum(dot);
    const float m_new = fmaxf(m, s);
    const float corr = rescale(m, m_new), p = expf(s - m_new);
    l = l * corr + p;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) acc[i] = acc[i] * corr + p * kv_get(vr, d);
    }
    m = m_new;
  }
  float* mine = sm + warp * (hd + 2);
  if (lane == 0) mine[0] = m, mine[1] = l;
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int d = lane + 32 * i;
    if (d < hd) mine[2 + d] = acc[i];
  }
  __syncthreads();
  float M = -INFINITY;
  for (int w = 0; w < n_warps; ++w) M = fmaxf(M, sm[w * (hd + 2)]);
  float L = 0.0f;
  for (int w = 0; w < n_warps; ++w) L += sm[w * (hd + 2) + 1] * rescale(sm[w * (hd + 2)], M);
  float* part = ws + (static_cast<int64_t>(h) * splits + split) * (hd + 2);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float o = 0.0f;
    for (int w = 0; w < n_warps; ++w) o += sm[w * (hd + 2) + 2 + d] * rescale(sm[w * (hd + 2)], M);
    if (splits == 1)
      out[static_cast<int64_t>(h) * hd + d] = o / L;
    else
      part[2 + d] = o;
  }
  if (splits > 1 && threadIdx.x == 0) part[0] = M, part[1] = L;
}

__global__ void decode_combine_kernel(const float* ws, int splits, int hd, float* out) {
  const int h = blockIdx.x;
  const float* parts = ws + static_cast<int64_t>(h) * splits * (hd + 2);
  float M = -INFINITY;
  for (int s = 0; s < splits; ++s) M = fmaxf(M, parts[s * (hd + 2)]);
  float L = 0.0f;
  for (int s = 0; s < splits; ++s) L += parts[s * (hd + 2) + 1] * rescale(parts[s * (hd + 2)], M);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float o = 0.0f;
    for (int s = 0; s < splits; ++s) o += parts[s * (hd + 2) + 2 + d] * rescale(parts[s * (hd + 2)], M);
    out[static_cast<int64_t>(h) * hd + d] = o / L;
  }
}

template <typename KT>
cudaError_t attention_typed(const float* q, const DeviceKv& kv, int n_tokens, int pos0, int n_heads, int n_kv_heads,
                            int head_dim, float* out, float* ws, int n_sms, cudaStream_t s) {
  const int group = n_heads / n_kv_heads;
  const float scale = 1.0f / sqrtf(static_cast<float>(head_dim));
  if (n_tokens > 1) {
    const LaunchShape sh = flash_shape(n_tokens, n_heads, n_kv_heads, head_dim);
    flash_kernel<KT><<<dim3(sh.grid.x, sh.grid.y), sh.block.x, sh.smem, s>>>(q, kv, n_tokens, pos0, n_heads, group,
                                                                            head_dim, scale, out);
    return cudaGetLastError();
  }
  const int n_keys = pos0 + 1;
  const int splits = decode_splits(n_keys, n_heads, n_sms);
  const LaunchShape sh = decode_shape(n_heads, splits, head_dim);
  decode_kernel<KT><<<dim3(sh.grid.x, sh.grid.y), sh.block.x, sh.smem, s>>>(q, kv, n_keys, group, head_dim, scale,
                                                                           splits, ws, out);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess || splits == 1) return e;
  decode_combine_kernel<<<n_heads, kDecodeThreads, 0, s>>>(ws, splits, head_dim, out);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_kv_store(const DeviceKv& kv, int pos0, int n_tokens, const float* k, const float* v, cudaStream_t s) {
  if (kv.dtype == DType::F16)
    kv_store_kernel<__half><<<n_tokens, kElementwiseThreads, 0, s>>>(kv, pos0, k, v);
  else
    kv_store_kernel<float><<<n_tokens, kElementwiseThreads, 0, s>>>(kv, pos0, k, v);
  return cudaGetLastError();
}

cudaError_t launch_attention(const float* q, const DeviceKv& kv, int n_tokens, int pos0, int n_heads, int n_kv_heads,
                             int head_dim, float* out, float* ws, int n_sms, cudaStream_t s) {
  if (kv.dtype == DType::F16)
    return attention_typed<__half>(q, kv, n_tokens, pos0, n_heads, n_kv_heads, head_dim, out, ws, n_sms, s);
  return attention_typed<float>(q, kv, n_tokens, pos0, n_heads, n_kv_heads, head_dim, out, ws, n_sms, s);
}

cudaError_t init_attention_kernels() {
  const int smem = static_cast<int>(flash_shape(1, 1, 1, kMaxHeadDim).smem);
  cudaError_t e = cudaFuncSetAttribute(flash_kernel<float>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  if (e != cudaSuccess) return e;
  return cudaFuncSetAttribute(flash_kernel<__half>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
}

}  // namespace tern::cuda
