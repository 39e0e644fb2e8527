// The CPU backend (cpu_backend_impl.h): instruction-set dispatch, the element-wise ops, repacking at load
// and the factory.
#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstring>
#include <string>
#include <cmath>

#include "backend/cpu/cpu_backend_impl.h"
#include "backend/cpu/fgemm_bf16.h"
#include "core/quant.h"
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

Result<FloatMatmul> parse_float_matmul(const std::string& s) {
  if (s == "f32") return FloatMatmul::F32;
  if (s == "bf16") return FloatMatmul::Bf16;
  return error("unknown float matmul mode '" + s + "' (choices: f32, bf16)");
}

bool cpu_supports_bf16_matmul() { return cpu_supports_isa(CpuIsa::Avx512) && cpu::bgemm_cpu_supported(); }

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Scalar: return "scalar";
    case CpuIsa::Avx2: return "avx2";
    case CpuIsa::Avx512: return "avx512";
  }
  return "?";
}

namespace cpu {

namespace {

const Kernels& kernels_for(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Avx512: return avx512_kernels();
    case CpuIsa::Avx2: return avx2_kernels();
    case CpuIsa::Scalar: break;
  }
  return scalar_kernels();
}

}  // namespace

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

CpuBackend::CpuBackend(int n_threads, CpuIsa isa, FloatMatmul fm)
    : pool_(n_threads),
      k_(kernels_for(isa)),
      avx512_(isa == CpuIsa::Avx512),
      bf16_(fm == FloatMatmul::Bf16),
      attn_(pool_, k_) {
  row_scratch_.resize(static_cast<size_t>(pool_.size()));
  fscratch_.resize(static_cast<size_t>(pool_.size()));
}

bool CpuBackend::supports(DType t) const { return dtype_is_supported(t); }

// Repacks every weight the packed integer GEMM will read, and copies every one the float GEMM will read (in
// the bf16 mode, F16 and BF16 ones as padded bf16 rows, fgemm_bf16.h), at load rather than at first use,
// into huge pages (core/huge_arena.h: a decode step's stream of weights then takes no TLB miss per 4 KiB),
// and hands the original's pages back to the kernel (WeightStore::release_pages): the backend reads only its
// copy, so the process's memory holds the weights once. The embedding table is left alone: it is read by
// rows (and packed at first use only when the classifier shares it).
Status CpuBackend::prepare(const WeightStore& weights) {
  if (!avx512_) return Status();
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& [name, t] : weights.all()) {
    if (name == "token_embd.weight" || t.shape.size() != 2) continue;
    const uint8_t* copy = nullptr;
    if (bf16_ && bgemm_supports(t.dtype))
      copy = bf16_weights(t);
    else if (path_for(t.dtype) == Path::Float)
      copy = float_weights(t);
    else if (qgemm_supports(t.dtype) &&
             t.cols() % (t.dtype == DType::Q4_K || t.dtype == DType::Q6_K ? 256 : 32) == 0)
      copy = packed_weights(t);
    else
      continue;  // read in place
    if (!copy)
      return error("cpu backend: out of memory for the copy of " + name + " (" + std::to_string(t.nbytes) +
                   " bytes)");
    weights.release_pages(t);
  }
  prep_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return Status();
}

void CpuBackend::embedding(const TensorView& table, const int* tokens, int n_tokens, float* out) {
  const int64_t dim = table.cols();
  for (int t = 0; t < n_tokens; ++t) row_to_f32(table.dtype, table.row_ptr(tokens[t]), out + t * dim, dim);
}

const float* CpuBackend::norm_weights(const TensorView& w) {
  if (w.dtype == DType::F32) return static_cast<const float*>(w.data);
  grow(norm_w_, static_cast<size_t>(w.numel()));
  row_to_f32(w.dtype, w.data, norm_w_.data(), w.numel());
  return norm_w_.data();
}

void CpuBackend::norm_row(const float* x, const float* w, float eps, int64_t n, float* out) const {
  const double ss = k_.dot_f32(x, x, n);
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

void CpuBackend::rmsnorm(const float* x, const TensorView& w, float eps, int n_tokens, float* out) {
  const int64_t n = w.numel();
  const float* wf = norm_weights(w);
  for (int t = 0; t < n_tokens; ++t) norm_row(x + t * n, wf, eps, n, out + t * n);
}

// cos/sin once per (position, pair), shared by every head; computed as the reference does (double angle)
// so the rotation is bit-identical.
void CpuBackend::rope_angles(int pos, const float* freqs, int half, float* cs) {
  for (int i = 0; i < half; ++i) {
    const double angle = pos * static_cast<double>(freqs[i]);
    cs[2 * i] = static_cast<float>(std::cos(angle));
    cs[2 * i + 1] = static_cast<float>(std::sin(angle));
  }
}

void CpuBackend::rope_head(float* v, const float* cs, int half, RopeStyle style) {
  for (int i = 0; i < half; ++i) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    const int a = style == RopeStyle::Adjacent ? 2 * i : i;
    const int b = style == RopeStyle::Adjacent ? 2 * i + 1 : i + half;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
  }
}

void CpuBackend::rope(float* x, int n_tokens, int n_heads, int head_dim, int pos0, const float* freqs,
                      RopeStyle style) {
  const int half = head_dim / 2;
  grow(rope_cs_, static_cast<size_t>(2 * half));
  for (int t = 0; t < n_tokens; ++t) {
    rope_angles(pos0 + t, freqs, half, rope_cs_.data());
    for (int h = 0; h < n_heads; ++h)
      rope_head(x + (static_cast<int64_t>(t) * n_heads + h) * head_dim, rope_cs_.data(), half, style);
  }
}

void CpuBackend::kv_store(const KvView& kv, int pos0, int n_tokens, const float* k, const float* v) {
  attn_.store(kv, pos0, n_tokens, k, v);
}

void CpuBackend::attention(const float* q, const KvView& kv, int n_tokens, int pos0, int n_heads, int n_kv_heads,
                           int head_dim, float* out) {
  attn_.run(q, kv, n_tokens, pos0, n_heads, n_kv_heads, head_dim, out);
}

// Every sequence's keys and values stored, then one job over the attention items of all of them (a
// decode step of 8 streams was 8 jobs of 3-4 items each on 2 threads).
void CpuBackend::attention_batch(const AttnSeq* seqs, int n_seqs, const float* q, const float* k, const float* v,
                                 int n_heads, int n_kv_heads, int head_dim, float* out) {
  const int64_t kd = static_cast<int64_t>(n_kv_heads) * head_dim;
  for (int i = 0; i < n_seqs; ++i)
    attn_.store(seqs[i].kv, seqs[i].pos0, seqs[i].n_tokens, k + seqs[i].row * kd, v + seqs[i].row * kd);
  attn_.run_batch(seqs, n_seqs, q, n_heads, n_kv_heads, head_dim, out);
}

void CpuBackend::swiglu(float* gate, const float* up, int64_t n) {
  // One exp per element: split over the threads (a decode step's 5632-wide FFN is otherwise a serial
  // stretch while the other threads wait).
  constexpr int64_t kPiece = 1024;
  const Kernels& k = k_;
  pool_.parallel_for((n + kPiece - 1) / kPiece, [&](int64_t p0, int64_t p1, int) {
    const int64_t b = p0 * kPiece, e = std::min(n, p1 * kPiece);
    k.silu_mul(gate + b, up + b, e - b);
  });
}

void CpuBackend::add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void CpuBackend::add_bias(float* x, const TensorView& b, int n_tokens) {
  const int64_t n = b.numel();
  const float* bf = static_cast<const float*>(b.data);
  if (b.dtype != DType::F32) {
    grow(bias_[0], static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) bias_[0][static_cast<size_t>(i)] = load_element(b.dtype, b.data, i);
    bf = bias_[0].data();
  }
  for (int t = 0; t < n_tokens; ++t)
    for (int64_t i = 0; i < n; ++i) x[t * n + i] += bf[i];
}

}  // namespace cpu

std::unique_ptr<Backend> make_cpu_backend_isa(int n_threads, CpuIsa isa, FloatMatmul fm) {
  assert(cpu_supports_isa(isa));
  assert(fm == FloatMatmul::F32 || (isa == CpuIsa::Avx512 && cpu_supports_bf16_matmul()));
  return std::make_unique<cpu::CpuBackend>(n_threads, isa, fm);
}

Result<std::unique_ptr<Backend>> make_cpu_backend(int n_threads, FloatMatmul fm) {
  if (fm == FloatMatmul::Bf16 && !cpu_supports_bf16_matmul())
    return error("--float-matmul bf16 needs a CPU with AVX-512 VNNI and AVX512_BF16, which this one lacks; use f32");
  return make_cpu_backend_isa(n_threads, cpu_best_isa(), fm);
}

std::unique_ptr<Backend> make_cpu_backend(int n_threads) { return make_cpu_backend_isa(n_threads, cpu_best_isa()); }

}  // namespace tern
