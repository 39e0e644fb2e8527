// The op interface every backend implements. Activations are fp32, row-major, one row per token;
// weights are TensorViews of any type the backend supports. Each op is testable alone against the
// reference backend (tests/ops/).
#pragma once

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

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // Whether matmul/embedding/rmsnorm accept weights of this type.
  virtual bool supports(DType t) const = 0;

  // out (n_tokens, n_in... ) <- rows `tokens[t]` of table (vocab, dim): out (n_tokens, dim).
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
};

// The reference backend: plain scalar loops, the oracle for every faster path.
std::unique_ptr<Backend> make_reference_backend();

// The CPU backend: a persistent thread pool and SIMD kernels picked at run time (backend/cpu/).
// n_threads <= 0 means the number of physical cores.
std::unique_ptr<Backend> make_cpu_backend(int n_threads);

// A backend by name: "cpu" or "reference"; an error naming the choices for anything else.
// n_threads applies to "cpu" (<= 0: physical cores).
Result<std::unique_ptr<Backend>> make_backend(const std::string& name, int n_threads);

}  // namespace tern
