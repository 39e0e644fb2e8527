// The op interface every backend implements. Activations are fp32, row-major, one row per token;
// weights are TensorViews of any type the backend supports. Each op is testable alone against the
// reference backend (tests/ops/).
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string>

#include "core/status.h"
#include "core/tensor.h"
#include "model/config.h"

namespace tern {

// Where one layer of one sequence keeps its keys and values. The cache is paged: positions are grouped in
// blocks of `block_size` rows, and position p lives at row p % block_size of block blocks[p / block_size].
// A row holds one position's n_kv_heads * head_dim values of type `dtype` (F32, F16 or Q8_0; for Q8_0,
// head_dim is a multiple of 32 so that each head starts on a block boundary). A contiguous cache is the
// case of one block of n_ctx rows, or of a table 0, 1, 2, ...
//
// Every pointer of a view lives in its backend's memory (Backend::alloc): host memory for cpu and
// reference, device memory for cuda. That includes the block table: LlamaModel uploads each call's tables
// into a backend buffer before the layers run (one copy per forward call, none for host backends), so a
// device kernel reads `blocks` directly. k_row/v_row dereference `blocks` and are for host backends only.
struct KvView {
  DType dtype = DType::F32;
  uint8_t* k = nullptr;      // this layer's key pool: block b starts at k + b * block_bytes
  uint8_t* v = nullptr;      // this layer's value pool, laid out the same way
  int64_t block_bytes = 0;   // block_size * row_bytes
  int64_t row_elems = 0;     // values of one position: n_kv_heads * head_dim
  int64_t row_bytes = 0;     // bytes of one position: row_bytes(dtype, row_elems)
  int block_size = 0;
  const int32_t* blocks = nullptr;  // the sequence's block table

  uint8_t* k_row(int64_t pos) const { return k + blocks[pos / block_size] * block_bytes + (pos % block_size) * row_bytes; }
  uint8_t* v_row(int64_t pos) const { return v + blocks[pos / block_size] * block_bytes + (pos % block_size) * row_bytes; }
};

class WeightStore;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // --- Memory in the backend's place ------------------------------------------------------------------
  // Activations, the KV cache pools and block tables live where the backend computes: every float* an op
  // takes (and every pointer of a KvView) comes from alloc(). Weights stay TensorViews of host memory; a
  // backend that needs them elsewhere copies them once in prepare() and finds its copy by the host pointer.
  // The defaults are host memory, so the cpu and reference backends pay nothing for this seam.

  // Whether alloc() returns host memory (then callers may read and write buffers directly and skip copies).
  virtual bool host_memory() const { return true; }
  // `bytes` of zero-filled memory, 64-byte aligned; an error naming the size when it cannot be had.
  virtual Result<void*> alloc(size_t bytes);
  virtual void dealloc(void* p);
  // Copies between host memory and backend memory, and within backend memory (regions may overlap for
  // copy()). copy_to_host waits for the ops queued before it and reports any error they hit.
  virtual Status copy_to_host(void* host_dst, const void* src, size_t bytes) {
    if (bytes) std::memcpy(host_dst, src, bytes);
    return Status();
  }
  virtual void copy_from_host(void* dst, const void* host_src, size_t bytes) {
    if (bytes) std::memcpy(dst, host_src, bytes);
  }
  virtual void copy(void* dst, const void* src, size_t bytes) {
    if (bytes) std::memmove(dst, src, bytes);
  }
  // Called once per model by LlamaModel::create, before any op: a device backend uploads the weights here
  // (and rejects, naming the tensor, any type it cannot compute with). A backend keeps what it prepared
  // until it is destroyed, so one backend can serve several models.
  virtual Status prepare(const WeightStore& weights) { return Status(); }
  // What prepare() has done so far, for reports: the bytes of weight copies the backend keeps (repacked
  // for its kernels, or uploaded) and the seconds that took.
  struct PrepareStats {
    double seconds = 0;
    size_t bytes = 0;
  };
  virtual PrepareStats prepare_stats() const { return {}; }
  // Waits until every queued op has finished; the first error any of them hit (ops themselves return
  // nothing, so a device backend records its first failure and reports it here and in copy_to_host).
  virtual Status synchronize() { return Status(); }
  // Whether kv_store/attention handle a cache of this type (cpu and reference: F32, F16, Q8_0).
  virtual bool supports_kv(DType t) const { return t == DType::F32 || t == DType::F16 || t == DType::Q8_0; }

  // --- Ops -----------------------------------------------------------------------------------------------
  // Pointers are backend memory (see above), except where an op says host.

  // Whether matmul/embedding/rmsnorm accept weights of this type.
  virtual bool supports(DType t) const = 0;

  // out (n_tokens, n_in... ) <- rows `tokens[t]` of table (vocab, dim): out (n_tokens, dim).
  // `tokens` is host memory on every backend.
  virtual void embedding(const TensorView& table, const int* tokens, int n_tokens, float* out) = 0;

  // out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w, for n_tokens rows of width n = w.numel().
  virtual void rmsnorm(const float* x, const TensorView& w, float eps, int n_tokens, float* out) = 0;

  // out (n_tokens, n_out) = x (n_tokens, n_in) @ W^T, with W of shape (n_out, n_in).
  virtual void matmul(const TensorView& w, const float* x, int n_tokens, float* out) = 0;

  // Rotates x (n_tokens, n_heads, head_dim) in place; token t sits at position pos0 + t.
  // Pair i (of head_dim/2) turns by angle pos * freqs[i]; `style` says which elements pair up. The table
  // (head_dim/2 values, usually theta^(-2i/head_dim), possibly rescaled) comes from rope_frequencies().
  virtual void rope(float* x, int n_tokens, int n_heads, int head_dim, int pos0, const float* freqs,
                    RopeStyle style) = 0;

  // Writes the keys and values of positions pos0 .. pos0 + n_tokens - 1 (k, v: (n_tokens, n_kv_heads,
  // head_dim) fp32) into the cache rows of one layer, converting them to kv.dtype.
  virtual void kv_store(const KvView& kv, int pos0, int n_tokens, const float* k, const float* v) = 0;

  // Causal grouped-query attention for one layer of one sequence.
  //   q (n_tokens, n_heads, head_dim): queries of positions pos0 .. pos0 + n_tokens - 1
  //   kv: the cache rows 0 .. pos0 + n_tokens - 1 of this layer and sequence (already stored)
  //   out (n_tokens, n_heads, head_dim)
  // Query head h reads kv head h / (n_heads / n_kv_heads). Scores are scaled by 1/sqrt(head_dim).
  virtual void attention(const float* q, const KvView& kv, int n_tokens, int pos0, int n_heads, int n_kv_heads,
                         int head_dim, float* out) = 0;

  // gate <- silu(gate) * up, elementwise over n values (SwiGLU).
  virtual void swiglu(float* gate, const float* up, int64_t n) = 0;

  // x <- x + y over n values (residual connection).
  virtual void add(float* x, const float* y, int64_t n) = 0;

  // x[t] <- x[t] + b for each of n_tokens rows of width b.numel() (projection biases; b of any float type).
  virtual void add_bias(float* x, const TensorView& b, int n_tokens) = 0;

  // --- Fused ops -------------------------------------------------------------------------------------------
  // Each is the composition of the ops above that its comment writes out, and that is what the default
  // does. A backend overrides one to save passes over memory and hand-offs between threads (the cpu
  // backend does, with results bit-identical to its own unfused ops); the model calls only these for the
  // layers' work.

  // The attention block's input for n_tokens rows of the residual stream x (n_tokens, dim):
  //   xb = rmsnorm(x) * norm;  q = xb Wq^T (+ bq);  k = xb Wk^T (+ bk);  v = xb Wv^T (+ bv)
  //   then q and k rotated (rope), token t at position pos[t] (host memory).
  struct AttnInput {
    const TensorView* norm = nullptr;
    float eps = 0;
    const TensorView *wq = nullptr, *wk = nullptr, *wv = nullptr;
    const TensorView *bq = nullptr, *bk = nullptr, *bv = nullptr;  // all three or none
    int n_heads = 0, n_kv_heads = 0, head_dim = 0;
    const float* freqs = nullptr;  // rope_frequencies(), backend memory
    RopeStyle style = RopeStyle::Adjacent;
  };
  virtual void attn_input(const AttnInput& a, const float* x, int n_tokens, const int* pos, float* xb, float* q,
                          float* k, float* v);

  // The attention of several sequences of one batch. Sequence i's n_tokens tokens are rows row .. row +
  // n_tokens - 1 of q, k, v and out (rows of the call, as attn_input wrote them) at positions pos0 ..:
  // their keys and values are stored into its cache view (kv_store), then its queries attend over it
  // (attention).
  struct AttnSeq {
    KvView kv;
    int n_tokens = 0, pos0 = 0, row = 0;
  };
  virtual void attention_batch(const AttnSeq* seqs, int n_seqs, const float* q, const float* k, const float* v,
                               int n_heads, int n_kv_heads, int head_dim, float* out);

  // The feed-forward block's input: xb = rmsnorm(x) * norm; h = silu(xb Wgate^T (+ b_gate)) * (xb Wup^T
  // (+ b_up)), h of shape (n_tokens, w_gate.rows()). h2 is scratch of h's size.
  virtual void ffn_input(const float* x, const TensorView& norm, float eps, const TensorView& w_gate,
                         const TensorView& w_up, const TensorView* b_gate, const TensorView* b_up, int n_tokens,
                         float* xb, float* h, float* h2);

  // A projection added to the residual stream: x += y W^T (+ b), x of shape (n_tokens, w.rows()). tmp is
  // scratch of x's size.
  virtual void matmul_residual(const TensorView& w, const TensorView* b, const float* y, int n_tokens, float* x,
                               float* tmp);
};

// A buffer of backend memory, freed with its backend's dealloc (move-only). The backend must outlive it.
class BackendBuffer {
 public:
  BackendBuffer() = default;
  static Result<BackendBuffer> make(Backend& be, size_t bytes) {
    BackendBuffer b;
    if (bytes == 0) return Result<BackendBuffer>(std::move(b));
    auto p = be.alloc(bytes);
    if (!p) return p.status();
    b.be_ = &be;
    b.p_ = p.value();
    b.n_ = bytes;
    return Result<BackendBuffer>(std::move(b));
  }
  BackendBuffer(BackendBuffer&& o) noexcept : be_(o.be_), p_(o.p_), n_(o.n_) { o.be_ = nullptr, o.p_ = nullptr, o.n_ = 0; }
  BackendBuffer& operator=(BackendBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      be_ = o.be_, p_ = o.p_, n_ = o.n_;
      o.be_ = nullptr, o.p_ = nullptr, o.n_ = 0;
    }
    return *this;
  }
  BackendBuffer(const BackendBuffer&) = delete;
  BackendBuffer& operator=(const BackendBuffer&) = delete;
  ~BackendBuffer() { reset(); }

  void reset() {
    if (p_) be_->dealloc(p_);
    be_ = nullptr, p_ = nullptr, n_ = 0;
  }
  void* get() const { return p_; }
  float* f32() const { return static_cast<float*>(p_); }
  uint8_t* u8() const { return static_cast<uint8_t*>(p_); }
  size_t size() const { return n_; }

 private:
  Backend* be_ = nullptr;
  void* p_ = nullptr;
  size_t n_ = 0;
};

// The reference backend: plain scalar loops, the oracle for every faster path.
std::unique_ptr<Backend> make_reference_backend();

// The CPU backend: a persistent thread pool and SIMD kernels picked at run time (backend/cpu/).
// n_threads <= 0 means the number of physical cores.
std::unique_ptr<Backend> make_cpu_backend(int n_threads);

// How to build a backend from the command line's choices.
struct BackendOptions {
  std::string name = "cpu";      // cpu, reference or cuda
  int threads = 0;               // cpu: <= 0 means the physical cores
  std::string matmul = "fast";   // cuda: decode matrix-vector kernel (naive, warp, fast, cublas)
  bool graphs = true;            // cuda: CUDA graphs for the decode step
  // cpu: how F16 and BF16 weights are multiplied: "f32" (widened to fp32, exact products) or "bf16"
  // (activations and F16 weights rounded to bf16, products by AVX512_BF16; backend/cpu/fgemm_bf16.h).
  std::string float_matmul = "f32";
};
Result<std::unique_ptr<Backend>> make_backend(const BackendOptions& o);

// A backend by name: "cpu", "reference" or "cuda" (the NVIDIA GPU backend, backend/cuda/cuda_backend.h,
// with its default options; in a build without TERN_CUDA an error saying so); an error naming the choices
// for anything else. n_threads applies to "cpu" (<= 0: physical cores).
Result<std::unique_ptr<Backend>> make_backend(const std::string& name, int n_threads);

}  // namespace tern
