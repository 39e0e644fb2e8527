// The CPU backend's class, shared by the files that implement it:
//   cpu_backend.cpp  instruction-set dispatch, the element-wise ops, repacking at load, the factory
//   cpu_matmul.cpp   matmul: a plan per call (activations prepared once), then any range of rows
//   cpu_fused.cpp    the fused layer ops (attn_input, ffn_input, matmul_residual)
// The ops are threaded where the work is heavy (matmul over output rows, attention over (token block, kv
// head) items) and use SIMD kernels chosen at run time (cpu_kernels.h). Scratch buffers are members grown
// to the largest size seen, so a steady-state decode step allocates nothing.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/attention.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/qgemm.h"
#include "core/huge_arena.h"
#include "core/thread_pool.h"

namespace tern::cpu {

template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// How a matmul reads its weights: fp32-convertible floats, Q8_0/Q4_0/Q4_1 against int8 activation blocks,
// the K-quants, or anything else dequantized a row at a time.
enum class Path { Float, Quant, QuantK, Dequant };
Path path_for(DType t);

// Activations of one matmul call in the form its kernel reads: packed groups (the AVX-512 integer GEMM) or
// int8 blocks (the portable integer dots). Float and dequantizing paths read the fp32 rows directly.
struct ActBuffer {
  std::vector<XGroup> xg;
  std::vector<BlockQ8X> xq;
  std::vector<uint16_t> xh;  // bf16 rows of bgemm_row_elems(n_in) (the float GEMM's bf16 mode), from xh_rows()
  // The first bf16 row, 64-byte aligned (xh holds 32 elements of slack), so that no load splits a cache line.
  uint16_t* xh_rows() {
    const auto a = reinterpret_cast<uintptr_t>(xh.data());
    return xh.data() + (64 - a % 64) % 64 / 2;
  }
};

// One matmul call y = x W^T set up for computing any range of W's rows: which kernel, the weight bytes it
// reads (the packed copy for the integer GEMM) and where its prepared activations are.
struct MatmulPlan {
  const TensorView* w = nullptr;
  Path path = Path::Float;
  bool qgemm = false, fgemm = false;  // the AVX-512 packed integer GEMM / float GEMM
  bool bgemm = false;                 // the float GEMM's bf16 mode (fgemm_bf16.h)
  const uint8_t* wdata = nullptr;     // rows of the weight as the kernel reads them
  int64_t row_bytes = 0;              // bytes of one such row
  int64_t n_in = 0, n_blocks = 0, x_groups = 0;
  int64_t grain = 1;                  // rows per block of work (L1-sized for the GEMMs)
  QgemmLayout qlay;                   // the integer GEMM's packed layout
  const float* x = nullptr;           // fp32 activations (n_tokens, n_in)
  ActBuffer* act = nullptr;           // prepared activations (qgemm, Quant)
  int n_tokens = 0;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(int n_threads, CpuIsa isa, FloatMatmul fm = FloatMatmul::F32);

  const char* name() const override { return bf16_ ? "cpu-bf16" : "cpu"; }  // bench reports show the mode
  bool supports(DType t) const override;
  Status prepare(const WeightStore& weights) override;
  PrepareStats prepare_stats() const override { return prep_; }

  void embedding(const TensorView& table, const int* tokens, int n_tokens, float* out) override;
  void rmsnorm(const float* x, const TensorView& w, float eps, int n_tokens, float* out) override;
  void matmul(const TensorView& w, const float* x, int n_tokens, float* out) override;
  void rope(float* x, int n_tokens, int n_heads, int head_dim, int pos0, const float* freqs,
            RopeStyle style) override;
  void kv_store(const KvView& kv, int pos0, int n_tokens, const float* k, const float* v) override;
  void attention(const float* q, const KvView& kv, int n_tokens, int pos0, int n_heads, int n_kv_heads,
                 int head_dim, float* out) override;
  void swiglu(float* gate, const float* up, int64_t n) override;
  void add(float* x, const float* y, int64_t n) override;
  void add_bias(float* x, const TensorView& b, int n_tokens) override;

  void attention_batch(const AttnSeq* seqs, int n_seqs, const float* q, const float* k, const float* v, int n_heads,
                       int n_kv_heads, int head_dim, float* out) override;
  void attn_input(const AttnInput& a, const float* x, int n_tokens, const int* pos, float* xb, float* q, float* k,
                  float* v) override;
  void ffn_input(const float* x, const TensorView& norm, float eps, const TensorView& w_gate, const TensorView& w_up,
                 const TensorView* b_gate, const TensorView* b_up, int n_tokens, float* xb, float* h,
                 float* h2) override;
  void matmul_residual(const TensorView& w, const TensorView* b, const float* y, int n_tokens, float* x,
                       float* tmp) override;

 private:
  // --- matmul (cpu_matmul.cpp) ---
  // Sets up a call of w against x (n_tokens rows); `act` receives the prepared activations. Prepares nothing
  // yet: pack_token (per token, any thread) or pack_all (every token, threaded) does.
  MatmulPlan plan_matmul(const TensorView& w, const float* x, int n_tokens, ActBuffer& act);
  void pack_token(const MatmulPlan& p, int t, const float* x_row) const;
  void pack_all(const MatmulPlan& p);
  // out[t * out_stride + r] (= or += with accumulate) for rows [r0, r1) and every token, on thread tid.
  void matmul_rows(const MatmulPlan& p, int64_t r0, int64_t r1, float* out, int64_t out_stride, int tid,
                   bool accumulate);
  // The plan's rows spread over the pool in blocks of p.grain.
  void matmul_all(const MatmulPlan& p, float* out, bool accumulate);
  // The backend's copy of a weight in the layout its kernel reads, made at load (prepare) or first use and
  // kept for the backend's life in packed_arena_ (keyed by the tensor's data pointer; weights never move);
  // nullptr when there is no memory for it. Packed for the integer GEMM (qgemm.h); as padded bf16 rows for
  // the bf16 mode (fgemm_bf16.h); as it is for the float GEMM (only to have it in huge pages).
  const uint8_t* packed_weights(const TensorView& w);
  const uint8_t* bf16_weights(const TensorView& w);
  const uint8_t* float_weights(const TensorView& w);
  // What the three share: `bytes` from the arena, filled by fill(r0, r1, dst) for w's rows [r0, r1) on
  // the pool, once per tensor.
  template <class Fill>
  const uint8_t* kept_copy(const TensorView& w, size_t bytes, Fill&& fill) {
    if (auto it = packed_.find(w.data); it != packed_.end()) return it->second;
    uint8_t* dst = packed_arena_.allocate(bytes);
    if (!dst) return nullptr;
    prep_.bytes += bytes;
    packed_.emplace(w.data, dst);
    pool_.parallel_for(w.rows(), [&](int64_t r0, int64_t r1, int) { fill(r0, r1, dst); });
    return dst;
  }

  // --- shared by rmsnorm and the fused ops ---
  // The norm weight as fp32 (converted into norm_w_ unless it is F32 already).
  const float* norm_weights(const TensorView& w);
  // One row: out = x / sqrt(mean(x^2) + eps) * w.
  void norm_row(const float* x, const float* w, float eps, int64_t n, float* out) const;
  // cos and sin of pos * freqs[i] for the head_dim / 2 pairs, interleaved (the reference's double angle).
  static void rope_angles(int pos, const float* freqs, int half, float* cs);
  static void rope_head(float* v, const float* cs, int half, RopeStyle style);

  ThreadPool pool_;
  const Kernels& k_;
  bool avx512_;  // the packed integer GEMM and the float GEMM are available (AVX-512 VNNI)
  bool bf16_;    // F16 and BF16 weights go through the bf16 mode (FloatMatmul::Bf16; AVX512_BF16)
  struct alignas(64) Vec16 {
    float f[16];
  };
  std::vector<std::vector<Vec16>> fscratch_;  // per thread: the float GEMM's parked accumulators
  // The repacked weights, and the float GEMM's copies (fp32 or bf16 mode), in huge pages.
  HugePageArena packed_arena_;
  std::unordered_map<const void*, const uint8_t*> packed_;  // original data -> its repacked or copied form
  PrepareStats prep_;  // repacking done so far
  ActBuffer act_[3];   // activations of up to three weights of one call (q, k, v)
  Attention attn_;
  std::vector<std::vector<float>> row_scratch_;  // per thread: one dequantized weight row
  std::vector<float> norm_w_, bias_[3], rope_cs_;
};

}  // namespace tern::cpu
