// The CPU backend: the reference backend's ops, threaded where the work is heavy (matmul over output rows,
// attention over (token, head) pairs) and with SIMD dot products chosen at run time (cpu_kernels.h).
// Scratch buffers are members grown to the largest size seen, so a steady-state decode step allocates
// nothing.
#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <chrono>
#include <cassert>
#include <cmath>
#include <unordered_map>
#include <vector>

#include "backend/cpu/attention.h"
#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/fgemm.h"
#include "backend/cpu/qgemm.h"
#include "core/quant.h"
#include "core/thread_pool.h"
#include "formats/weights.h"

namespace tern {

CpuIsa cpu_best_isa() {
  if (cpu_supports_isa(CpuIsa::Avx512)) return CpuIsa::Avx512;
  if (cpu_supports_isa(CpuIsa::Avx2)) return CpuIsa::Avx2;
  return CpuIsa::Scalar;
}

bool cpu_supports_isa(CpuIsa isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  switch (isa) {
    case CpuIsa::Scalar: return true;
    case CpuIsa::Avx2: return avx2;
    case CpuIsa::Avx512:
      return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }
  return false;
#else
  return isa == CpuIsa::Scalar;
#endif
}

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Scalar: return "scalar";
    case CpuIsa::Avx2: return "avx2";
    case CpuIsa::Avx512: return "avx512";
  }
  return "?";
}

namespace {

using cpu::BlockQ8X;
using cpu::Kernels;

const Kernels& kernels_for(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Avx512: return cpu::avx512_kernels();
    case CpuIsa::Avx2: return cpu::avx2_kernels();
    case CpuIsa::Scalar: break;
  }
  return cpu::scalar_kernels();
}

template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// How a matmul reads its weights.
enum class Path { Float, Quant, QuantK, Dequant };

Path path_for(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16: return Path::Float;
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_1: return Path::Quant;
    case DType::Q4_K:
    case DType::Q6_K: return Path::QuantK;
    default: return Path::Dequant;
  }
}

class CpuBackend final : public Backend {
 public:
  CpuBackend(int n_threads, CpuIsa isa)
      : pool_(n_threads), k_(kernels_for(isa)), qgemm_(isa == CpuIsa::Avx512), attn_(pool_, k_) {
    row_scratch_.resize(static_cast<size_t>(pool_.size()));
    fscratch_.resize(static_cast<size_t>(pool_.size()));
  }

  const char* name() const override { return "cpu"; }
  bool supports(DType t) const override { return dtype_is_supported(t); }

  // Repacks every weight the packed integer GEMM will read, at load rather than at its first use. The
  // embedding table is left alone: it is read by rows (and packed at first use only when the classifier
  // shares it).
  Status prepare(const WeightStore& weights) override {
    if (!qgemm_) return Status();
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& [name, t] : weights.all()) {
      if (name == "token_embd.weight" || t.shape.size() != 2 || !cpu::qgemm_supports(t.dtype)) continue;
      if (t.cols() % (t.dtype == DType::Q4_K || t.dtype == DType::Q6_K ? 256 : 32) != 0) continue;
      packed_weights(t);
    }
    prep_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return Status();
  }
  PrepareStats prepare_stats() const override { return prep_; }

  void embedding(const TensorView& table, const int* tokens, int n_tokens, float* out) override {
    const int64_t dim = table.cols();
    for (int t = 0; t < n_tokens; ++t) row_to_f32(table.dtype, table.row_ptr(tokens[t]), out + t * dim, dim);
  }

  void rmsnorm(const float* x, const TensorView& w, float eps, int n_tokens, float* out) override {
    const int64_t n = w.numel();
    const float* wf = static_cast<const float*>(w.data);
    if (w.dtype != DType::F32) {
      grow(norm_w_, static_cast<size_t>(n));
      row_to_f32(w.dtype, w.data, norm_w_.data(), n);
      wf = norm_w_.data();
    }
    for (int t = 0; t < n_tokens; ++t) {
      const float* xt = x + t * n;
      const double ss = k_.dot_f32(xt, xt, n);
      const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
      float* ot = out + t * n;
      for (int64_t i = 0; i < n; ++i) ot[i] = xt[i] * scale * wf[i];
    }
  }

  void matmul(const TensorView& w, const float* x, int n_tokens, float* out) override {
    const int64_t n_out = w.rows(), n_in = w.cols();
    const DType dt = w.dtype;
    const Path path = path_for(dt);
    const size_t rbytes = row_bytes(dt, n_in);
    const uint8_t* wdata = static_cast<const uint8_t*>(w.data);
    // Rows per block: a block of weight rows (about 32 KiB, L1-sized) is read from memory once and then
    // used against every token of the call before moving on (the simple tiling for prefill).
    const int64_t block_rows = std::clamp<int64_t>(static_cast<int64_t>((32 << 10) / std::max<size_t>(rbytes, 1)), 1, 64);
    const Kernels& k = k_;

    if ((path == Path::Quant || path == Path::QuantK) && qgemm_) {
      // The packed integer GEMM (qgemm.h): activations quantized and packed once per call, weights packed
      // once per tensor; blocks of rows are spread over the threads.
      const int64_t nb = n_in / cpu::kQ8XBlock;
      const cpu::QgemmLayout lay = cpu::qgemm_layout(dt, nb);
      const int64_t ng = lay.x_groups();
      const size_t prb = static_cast<size_t>(lay.row_bytes);
      const uint8_t* packed = packed_weights(w);
      grow(xg_, static_cast<size_t>(n_tokens * ng + 1));
      cpu::XGroup* xg = xg_.data();
      pool_.parallel_for(n_tokens, [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; ++t) cpu::qgemm_pack_x_avx512(dt, x + t * n_in, xg + t * ng, nb);
      });
      // Rows per block: about 16 KiB of weights, which stay in L1 while every token tile passes over them.
      const int64_t rows = std::clamp<int64_t>(static_cast<int64_t>((16 << 10) / prb) & ~int64_t{1}, 2, 32);
      pool_.parallel_for((n_out + rows - 1) / rows, [&](int64_t i0, int64_t i1, int) {
        const int64_t r0 = i0 * rows, r1 = std::min(n_out, i1 * rows);
        for (int64_t b0 = r0; b0 < r1; b0 += rows)
          cpu::qgemm_avx512(dt, packed + b0 * prb, static_cast<int64_t>(prb), std::min(rows, r1 - b0), nb, xg, ng,
                            n_tokens, out + b0, n_out);
      });
      return;
    }

    if (path == Path::Quant) {
      // One integer dot product per (row, token): each activation row is quantized once per call.
      const int64_t nb = n_in / cpu::kQ8XBlock;
      grow(xq_, static_cast<size_t>(n_tokens * nb));
      BlockQ8X* xq = xq_.data();
      pool_.parallel_for(n_tokens, [&](int64_t t0, int64_t t1, int) {
        for (int64_t t = t0; t < t1; ++t) cpu::quantize_row_q8x(x + t * n_in, xq + t * nb, n_in);
      });
      float (*dot)(const void*, const BlockQ8X*, int64_t) =
          dt == DType::Q8_0 ? k.dot_q8_0 : dt == DType::Q4_0 ? k.dot_q4_0 : k.dot_q4_1;
      pool_.parallel_for(n_out, [&](int64_t r0, int64_t r1, int) {
        for (int64_t b0 = r0; b0 < r1; b0 += block_rows) {
          const int64_t b1 = std::min(r1, b0 + block_rows);
          for (int t = 0; t < n_tokens; ++t)
            for (int64_t r = b0; r < b1; ++r) out[t * n_out + r] = dot(wdata + r * rbytes, xq + t * nb, nb);
        }
      });
      return;
    }

    if (path == Path::Float && qgemm_) {
      // The float GEMM (fgemm.h): blocks of 16 rows spread over the threads.
      constexpr int64_t kRowBlock = 16;
      const int64_t scratch = cpu::fgemm_scratch_floats(kRowBlock);
      for (auto& f : fscratch_) grow(f, static_cast<size_t>(scratch / 16));
      pool_.parallel_for((n_out + kRowBlock - 1) / kRowBlock, [&](int64_t i0, int64_t i1, int tid) {
        float* sc = fscratch_[static_cast<size_t>(tid)].data()->f;
        for (int64_t b = i0; b < i1; ++b) {
          const int64_t r0 = b * kRowBlock, rows = std::min(kRowBlock, n_out - r0);
          cpu::fgemm_avx512(dt, wdata + r0 * rbytes, static_cast<int64_t>(rbytes), rows, n_in, x, n_tokens, out + r0,
                            n_out, sc);
        }
      });
      return;
    }

    if (path == Path::Float) {
      pool_.parallel_for(n_out, [&](int64_t r0, int64_t r1, int) {
        for (int64_t b0 = r0; b0 < r1; b0 += block_rows) {
          const int64_t b1 = std::min(r1, b0 + block_rows);
          for (int t = 0; t < n_tokens; ++t) {
            const float* xt = x + t * n_in;
            for (int64_t r = b0; r < b1; ++r) {
              const void* row = wdata + r * rbytes;
              float v;
              if (dt == DType::F32) v = k.dot_f32(static_cast<const float*>(row), xt, n_in);
              else if (dt == DType::F16) v = k.dot_f16(static_cast<const uint16_t*>(row), xt, n_in);
              else v = k.dot_bf16(static_cast<const uint16_t*>(row), xt, n_in);
              out[t * n_out + r] = v;
            }
          }
        }
      });
      return;
    }

    // Any other type: expand each weight row to fp32 once (into this thread's scratch), then dot it with
    // every token.
    for (auto& s : row_scratch_) grow(s, static_cast<size_t>(n_in));
    pool_.parallel_for(n_out, [&](int64_t r0, int64_t r1, int tid) {
      float* row = row_scratch_[static_cast<size_t>(tid)].data();
      for (int64_t r = r0; r < r1; ++r) {
        row_to_f32(dt, wdata + r * rbytes, row, n_in);
        for (int t = 0; t < n_tokens; ++t) out[t * n_out + r] = k.dot_f32(row, x + t * n_in, n_in);
      }
    });
  }

  void rope(float* x, int n_tokens, int n_heads, int head_dim, int pos0, const float* freqs,
            RopeStyle style) override {
    const int half = head_dim / 2;
    grow(rope_cs_, static_cast<size_t>(2 * half));
    float* cs = rope_cs_.data();
    for (int t = 0; t < n_tokens; ++t) {
      const int pos = pos0 + t;
      // cos/sin once per (position, pair), shared by every head; computed as the reference does (double
      // angle) so the rotation is bit-identical.
      for (int i = 0; i < half; ++i) {
        const double angle = pos * static_cast<double>(freqs[i]);
        cs[2 * i] = static_cast<float>(std::cos(angle));
        cs[2 * i + 1] = static_cast<float>(std::sin(angle));
      }
      for (int h = 0; h < n_heads; ++h) {
        float* v = x + (static_cast<int64_t>(t) * n_heads + h) * head_dim;
        for (int i = 0; i < half; ++i) {
          const float c = cs[2 * i], s = cs[2 * i + 1];
          const int a = style == RopeStyle::Adjacent ? 2 * i : i;
          const int b = style == RopeStyle::Adjacent ? 2 * i + 1 : i + half;
          const float x0 = v[a], x1 = v[b];
          v[a] = x0 * c - x1 * s;
          v[b] = x0 * s + x1 * c;
        }
      }
    }
  }

  void kv_store(const KvView& kv, int pos0, int n_tokens, const float* k, const float* v) override {
    attn_.store(kv, pos0, n_tokens, k, v);
  }

  void attention(const float* q, const KvView& kv, int n_tokens, int pos0, int n_heads, int n_kv_heads,
                 int head_dim, float* out) override {
    attn_.run(q, kv, n_tokens, pos0, n_heads, n_kv_heads, head_dim, out);
  }

  void swiglu(float* gate, const float* up, int64_t n) override {
    // One exp per element: split over the threads (a decode step's 5632-wide FFN is otherwise a serial
    // stretch while the other threads wait).
    constexpr int64_t kPiece = 1024;
    pool_.parallel_for((n + kPiece - 1) / kPiece, [&](int64_t p0, int64_t p1, int) {
      const int64_t e = std::min(n, p1 * kPiece);
      for (int64_t i = p0 * kPiece; i < e; ++i) {
        const float g = gate[i];
        gate[i] = g / (1.0f + std::exp(-g)) * up[i];
      }
    });
  }

  void add(float* x, const float* y, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
  }

  void add_bias(float* x, const TensorView& b, int n_tokens) override {
    const int64_t n = b.numel();
    const float* bf = static_cast<const float*>(b.data);
    if (b.dtype != DType::F32) {
      grow(bias_, static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) bias_[static_cast<size_t>(i)] = load_element(b.dtype, b.data, i);
      bf = bias_.data();
    }
    for (int t = 0; t < n_tokens; ++t)
      for (int64_t i = 0; i < n; ++i) x[t * n + i] += bf[i];
  }

 private:
  // The packed copy of a Q8_0/Q4_0/Q4_1 weight tensor for the integer GEMM, made at its first use and kept
  // for the backend's life (keyed by the tensor's data pointer; weights never move).
  const uint8_t* packed_weights(const TensorView& w) {
    auto it = packed_.find(w.data);
    if (it != packed_.end()) return reinterpret_cast<const uint8_t*>(it->second.data());
    std::vector<Line>& buf = packed_[w.data];
    const int64_t n_rows = w.rows(), nb = w.cols() / cpu::kQ8XBlock;
    const size_t rb = row_bytes(w.dtype, w.cols());
    const size_t prb = static_cast<size_t>(cpu::qgemm_layout(w.dtype, nb).row_bytes);
    buf.resize((prb * static_cast<size_t>(n_rows) + sizeof(Line) - 1) / sizeof(Line));
    prep_.bytes += buf.size() * sizeof(Line);
    uint8_t* dst = reinterpret_cast<uint8_t*>(buf.data());
    const uint8_t* src = static_cast<const uint8_t*>(w.data);
    pool_.parallel_for(n_rows, [&](int64_t r0, int64_t r1, int) {
      cpu::qgemm_pack_weights(w.dtype, src + r0 * rb, dst + r0 * prb, r1 - r0, nb);
    });
    return dst;
  }

  ThreadPool pool_;
  const Kernels& k_;
  bool qgemm_;  // the packed integer GEMM and the float GEMM are available (AVX-512 VNNI)
  struct alignas(64) Line {
    uint8_t b[64];
  };  // packed tensors start on a cache line
  struct alignas(64) Vec16 {
    float f[16];
  };
  std::vector<std::vector<Vec16>> fscratch_;  // per thread: the float GEMM's parked accumulators
  std::unordered_map<const void*, std::vector<Line>> packed_;
  PrepareStats prep_;  // repacking done so far
  std::vector<cpu::XGroup> xg_;  // packed activations of one matmul call
  cpu::Attention attn_;
  std::vector<BlockQ8X> xq_;                      // quantized activations of one matmul call
  std::vector<std::vector<float>> row_scratch_;   // per thread: one dequantized weight row
  std::vector<float> norm_w_, bias_, rope_cs_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend_isa(int n_threads, CpuIsa isa) {
  assert(cpu_supports_isa(isa));
  return std::make_unique<CpuBackend>(n_threads, isa);
}

std::unique_ptr<Backend> make_cpu_backend(int n_threads) { return make_cpu_backend_isa(n_threads, cpu_best_isa()); }

}  // namespace tern
