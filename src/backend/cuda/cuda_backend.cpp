// The CUDA backend: one stream, one cuBLAS handle, the weights uploaded once by prepare() and found by their
// host pointer, and the kernels of this folder behind the Backend interface. Ops queue work and return;
// the first failure is kept and reported by synchronize() and copy_to_host() (ops cannot return a status).
#include "backend/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.h"
#include "formats/weights.h"

namespace tern {

Result<CudaMatmul> parse_cuda_matmul(const std::string& s) {
  if (s == "naive") return CudaMatmul::Naive;
  if (s == "warp") return CudaMatmul::Warp;
  if (s == "fast") return CudaMatmul::Fast;
  if (s == "cublas") return CudaMatmul::Cublas;
  return error("unknown matmul kernel '" + s + "' (choices: naive, warp, fast, cublas)");
}

const char* cuda_matmul_name(CudaMatmul m) {
  switch (m) {
    case CudaMatmul::Naive: return "naive";
    case CudaMatmul::Warp: return "warp";
    case CudaMatmul::Fast: return "fast";
    case CudaMatmul::Cublas: return "cublas";
  }
  return "?";
}

bool cuda_supports_weight(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q4_K:
    case DType::Q6_K: return true;
    default: return false;
  }
}

std::string cuda_weight_types_text() { return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K"; }

Status cuda_check_weights(const WeightStore& w) {
  for (const auto& [name, t] : w.all())
    if (!cuda_supports_weight(t.dtype))
      return error("tensor '" + name + "' has type " + std::string(dtype_name(t.dtype)) +
                   ", which the cuda backend does not support (supported: " + cuda_weight_types_text() + ")");
  return Status();
}

namespace {

std::string mib(size_t bytes) { return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB"; }

// "needed X, Y free of Z on <device>": the message of every failed device allocation.
std::string oom_message(size_t need, const char* what) {
  size_t free_b = 0, total_b = 0;
  cudaGetLastError();  // clear the failed allocation's error
  std::string have;
  if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) have = ", " + mib(free_b) + " free of " + mib(total_b);
  return std::string("cuda backend: out of device memory for ") + what + ": " + mib(need) + " needed" + have;
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(const CudaOptions& o, int n_sms) : opt_(o), n_sms_(n_sms) {}

  Status init() {
    TERN_TRY(cu(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating a stream"));
    if (cublasCreate(&cublas_) != CUBLAS_STATUS_SUCCESS) return error("cuda backend: cublasCreate failed");
    cublasSetStream(cublas_, stream_);
    TERN_TRY(cu(cuda::init_attention_kernels(), "configuring the attention kernels"));
    TERN_TRY(grow(tokens_, tokens_cap_, 4096 * sizeof(int), "token ids"));
    return Status();
  }

  ~CudaBackend() override {
    if (stream_) cudaStreamSynchronize(stream_);
    for (void* p : owned_) cudaFree(p);
    cudaFree(tokens_);
    cudaFree(gemm_ws_);
    cudaFree(attn_ws_);
    if (cublas_) cublasDestroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  const char* name() const override { return "cuda"; }
  bool supports(DType t) const override { return cuda_supports_weight(t); }
  bool supports_kv(DType t) const override { return t == DType::F32 || t == DType::F16; }
  bool host_memory() const override { return false; }

  Result<void*> alloc(size_t bytes) override {
    void* p = nullptr;
    if (cudaMalloc(&p, bytes == 0 ? 1 : bytes) != cudaSuccess) return error(oom_message(bytes, "a buffer"));
    if (cudaMemset(p, 0, bytes) != cudaSuccess) {
      cudaFree(p);
      return error(std::string("cuda backend: cudaMemset: ") + cudaGetErrorString(cudaGetLastError()));
    }
    return p;
  }
  void dealloc(void* p) override {
    cudaStreamSynchronize(stream_);  // the stream may still use it
    cudaFree(p);
  }

  Status copy_to_host(void* host_dst, const void* src, size_t bytes) override {
    record(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "copy to host");
    return synchronize();
  }
  void copy_from_host(void* dst, const void* host_src, size_t bytes) override {
    record(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream_), "copy from host");
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    record(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_), "device copy");
  }

  Status synchronize() override {
    record(cudaStreamSynchronize(stream_), "stream synchronize");
    return status_;
  }

  Status prepare(const WeightStore& w) override {
    TERN_TRY(cuda_check_weights(w));
    size_t need = 0;
    for (const auto& [name, t] : w.all())
      if (!weights_.count(t.data)) need += t.nbytes;
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && need > free_b)
      return error("cuda backend: out of device memory for the weights: " + mib(need) + " needed, " + mib(free_b) +
                   " free of " + mib(total_b));
    for (const auto& [name, t] : w.all()) {
      if (weights_.count(t.data)) continue;
      void* p = nullptr;
      if (cudaMalloc(&p, t.nbytes == 0 ? 1 : t.nbytes) != cudaSuccess)
        return error(oom_message(t.nbytes, ("tensor '" + name + "'").c_str()));
      owned_.push_back(p);
      TERN_TRY(cu(cudaMemcpy(p, t.data, t.nbytes, cudaMemcpyHostToDevice), "uploading the weights"));
      cuda::DeviceWeight d;
      d.data = p;
      d.dtype = t.dtype;
      d.rows = t.rows();
      d.cols = t.cols();
      d.row_bytes = row_bytes(t.dtype, static_cast<uint64_t>(t.cols()));
      weights_[t.data] = d;
    }
    return Status();
  }

  void embedding(const TensorView& table, const int* tokens, int n_tokens, float* out) override {
    const cuda::DeviceWeight* w = weight(table);
    if (!w) return;
    if (static_cast<size_t>(n_tokens) * sizeof(int) > tokens_cap_ &&
        !grow(tokens_, tokens_cap_, static_cast<size_t>(n_tokens) * sizeof(int), "token ids").ok())
      return;
    record(cudaMemcpyAsync(tokens_, tokens, sizeof(int) * static_cast<size_t>(n_tokens), cudaMemcpyHostToDevice, stream_),
           "token upload");
    record(cuda::launch_embedding(*w, static_cast<const int*>(tokens_), n_tokens, out, stream_), "embedding");
  }

  void rmsnorm(const float* x, const TensorView& w, float eps, int n_tokens, float* out) override {
    if (const cuda::DeviceWeight* d = weight(w)) record(cuda::launch_rmsnorm(x, *d, eps, n_tokens, out, stream_), "rmsnorm");
  }

  void matmul(const TensorView& w, const float* x, int n_tokens, float* out) override {
    const cuda::DeviceWeight* d = weight(w);
    if (!d) return;
    if (opt_.matmul != CudaMatmul::Cublas && n_tokens <= cuda::kMatvecMaxTokens) {
      const bool aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0;
      const CudaMatmul v = cuda::matvec_effective(opt_.matmul, d->dtype, d->cols, aligned);
      record(cuda::launch_matvec(v, *d, x, n_tokens, out, stream_), "matvec");
      return;
    }
    const size_t ws = cuda::gemm_workspace_bytes(d->dtype, d->rows, d->cols, n_tokens);
    if (ws > gemm_cap_ && !grow(gemm_ws_, gemm_cap_, ws, "the GEMM workspace").ok()) return;
    const char* what = "";
    const cudaError_t e = cuda::launch_gemm(cublas_, *d, x, n_tokens, out, gemm_ws_, stream_, &what);
    if (e == cudaErrorUnknown && status_.ok()) status_ = error(std::string("cuda backend: GEMM failed: ") + what);
    else record(e, "GEMM");
  }

  void rope(float* x, int n_tokens, int n_heads, int head_dim, int pos0, const float* freqs, RopeStyle style) override {
    record(cuda::launch_rope(x, n_tokens, n_heads, head_dim, pos0, freqs, style, stream_), "rope");
  }

  void kv_store(const KvView& kv, int pos0, int n_tokens, const float* k, const float* v) override {
    if (!check_kv(kv)) return;
    record(cuda::launch_kv_store(device_kv(kv), pos0, n_tokens, k, v, stream_), "kv_store");
  }

  void attention(const float* q, const KvView& kv, int n_tokens, int pos0, int n_heads, int n_kv_heads, int head_dim,
                 float* out) override {
    if (!check_kv(kv)) return;
    if (head_dim > cuda::kMaxHeadDim || head_dim % 2 != 0 || n_kv_heads < 1 || n_heads % n_kv_heads != 0) {
      fail("cuda backend: attention needs an even head_dim <= " + std::to_string(cuda::kMaxHeadDim) +
           " and n_heads a multiple of n_kv_heads (got head_dim " + std::to_string(head_dim) + ", " +
           std::to_string(n_heads) + "/" + std::to_string(n_kv_heads) + " heads)");
      return;
    }
    const size_t ws = cuda::decode_workspace_bytes(n_heads, head_dim);
    if (ws > attn_cap_ && !grow(attn_ws_, attn_cap_, ws, "the attention workspace").ok()) return;
    record(cuda::launch_attention(q, device_kv(kv), n_tokens, pos0, n_heads, n_kv_heads, head_dim, out,
                                  static_cast<float*>(attn_ws_), n_sms_, stream_),
           "attention");
  }

  void swiglu(float* gate, const float* up, int64_t n) override { record(cuda::launch_swiglu(gate, up, n, stream_), "swiglu"); }
  void add(float* x, const float* y, int64_t n) override { record(cuda::launch_add(x, y, n, stream_), "add"); }
  void add_bias(float* x, const TensorView& b, int n_tokens) override {
    if (const cuda::DeviceWeight* d = weight(b)) record(cuda::launch_add_bias(x, *d, n_tokens, stream_), "add_bias");
  }

 private:
  Status cu(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return Status();
    return error(std::string("cuda backend: ") + what + ": " + cudaGetErrorString(e));
  }
  void fail(std::string msg) {
    if (status_.ok()) status_ = error(std::move(msg));
  }
  void record(cudaError_t e, const char* op) {
    if (e != cudaSuccess && status_.ok()) status_ = error(std::string("cuda backend: ") + op + ": " + cudaGetErrorString(e));
  }
  // Grows a device scratch buffer to `bytes` (only when a call needs more than any before it).
  Status grow(void*& p, size_t& cap, size_t bytes, const char* what) {
    cudaStreamSynchronize(stream_);
    cudaFree(p);
    p = nullptr;
    cap = 0;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
      p = nullptr;
      const Status s = error(oom_message(bytes, what));
      fail(s.message());
      return s;
    }
    cap = bytes;
    return Status();
  }
  const cuda::DeviceWeight* weight(const TensorView& t) {
    auto it = weights_.find(t.data);
    if (it != weights_.end()) return &it->second;
    fail("cuda backend: tensor '" + t.name + "' is not on the device (Backend::prepare was not given its weights)");
    return nullptr;
  }
  bool check_kv(const KvView& kv) {
    if (kv.dtype == DType::F32 || kv.dtype == DType::F16) return true;
    fail("cuda backend: KV cache type " + std::string(dtype_name(kv.dtype)) + " is not supported (use f16 or f32)");
    return false;
  }
  static cuda::DeviceKv device_kv(const KvView& kv) {
    cuda::DeviceKv d;
    d.dtype = kv.dtype;
    d.k = kv.k;
    d.v = kv.v;
    d.block_bytes = kv.block_bytes;
    d.row_bytes = kv.row_bytes;
    d.row_elems = kv.row_elems;
    d.block_size = kv.block_size;
    d.blocks = kv.blocks;
    return d;
  }

  CudaOptions opt_;
  int n_sms_ = 1;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  Status status_;
  std::unordered_map<const void*, cuda::DeviceWeight> weights_;  // host pointer -> device copy
  std::vector<void*> owned_;                                     // the weights' device memory
  void* tokens_ = nullptr;
  size_t tokens_cap_ = 0;
  void* gemm_ws_ = nullptr;
  size_t gemm_cap_ = 0;
  void* attn_ws_ = nullptr;
  size_t attn_cap_ = 0;
};

}  // namespace

Status cuda_device_status() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess)
    return error(std::string("cuda backend: no usable CUDA device (cudaGetDeviceCount: ") + cudaGetErrorString(e) + ")");
  if (n == 0) return error("cuda backend: no CUDA device found");
  return Status();
}

Result<std::unique_ptr<Backend>> make_cuda_backend(const CudaOptions& o) {
  TERN_TRY(cuda_device_status());
  int n = 0;
  cudaGetDeviceCount(&n);
  if (o.device < 0 || o.device >= n)
    return error("cuda backend: device " + std::to_string(o.device) + " does not exist (" + std::to_string(n) +
                 " device(s) found)");
  if (cudaSetDevice(o.device) != cudaSuccess)
    return error(std::string("cuda backend: cudaSetDevice: ") + cudaGetErrorString(cudaGetLastError()));
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, o.device) != cudaSuccess)
    return error(std::string("cuda backend: cudaGetDeviceProperties: ") + cudaGetErrorString(cudaGetLastError()));
  if (prop.major < 8)
    return error("cuda backend: " + std::string(prop.name) + " has compute capability " + std::to_string(prop.major) +
                 "." + std::to_string(prop.minor) + "; this build needs 8.0 or newer (TERN_CUDA_ARCHS)");
  auto be = std::make_unique<CudaBackend>(o, prop.multiProcessorCount);
  TERN_TRY(be->init());
  return std::unique_ptr<Backend>(std::move(be));
}

}  // namespace tern
