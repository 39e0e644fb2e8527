#include "backend/backend.h"

#include <cstdlib>
#include <cstring>

#include "backend/cpu/cpu_backend.h"

#ifdef TERN_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace tern {

Result<void*> Backend::alloc(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (!p) return error("out of host memory: could not allocate " + std::to_string(bytes) + " bytes");
  std::memset(p, 0, rounded);
  return p;
}

void Backend::dealloc(void* p) { std::free(p); }

void Backend::attn_input(const AttnInput& a, const float* x, int n_tokens, const int* pos, float* xb, float* q,
                         float* k, float* v) {
  rmsnorm(x, *a.norm, a.eps, n_tokens, xb);
  matmul(*a.wq, xb, n_tokens, q);
  matmul(*a.wk, xb, n_tokens, k);
  matmul(*a.wv, xb, n_tokens, v);
  if (a.bq) {
    add_bias(q, *a.bq, n_tokens);
    add_bias(k, *a.bk, n_tokens);
    add_bias(v, *a.bv, n_tokens);
  }
  // rope takes a run of consecutive positions: one call per run (one per sequence of a batch).
  const int64_t qd = static_cast<int64_t>(a.n_heads) * a.head_dim, kd = static_cast<int64_t>(a.n_kv_heads) * a.head_dim;
  for (int t0 = 0; t0 < n_tokens;) {
    int t1 = t0 + 1;
    while (t1 < n_tokens && pos[t1] == pos[t1 - 1] + 1) ++t1;
    rope(q + t0 * qd, t1 - t0, a.n_heads, a.head_dim, pos[t0], a.freqs, a.style);
    rope(k + t0 * kd, t1 - t0, a.n_kv_heads, a.head_dim, pos[t0], a.freqs, a.style);
    t0 = t1;
  }
}

void Backend::attention_batch(const AttnSeq* seqs, int n_seqs, const float* q, const float* k, const float* v,
                              int n_heads, int n_kv_heads, int head_dim, float* out) {
  const int64_t qd = static_cast<int64_t>(n_heads) * head_dim, kd = static_cast<int64_t>(n_kv_heads) * head_dim;
  for (int i = 0; i < n_seqs; ++i) {
    const AttnSeq& s = seqs[i];
    kv_store(s.kv, s.pos0, s.n_tokens, k + s.row * kd, v + s.row * kd);
    attention(q + s.row * qd, s.kv, s.n_tokens, s.pos0, n_heads, n_kv_heads, head_dim, out + s.row * qd);
  }
}

void Backend::ffn_input(const float* x, const TensorView& norm, float eps, const TensorView& w_gate,
                        const TensorView& w_up, const TensorView* b_gate, const TensorView* b_up, int n_tokens,
                        float* xb, float* h, float* h2) {
  rmsnorm(x, norm, eps, n_tokens, xb);
  matmul(w_gate, xb, n_tokens, h);
  matmul(w_up, xb, n_tokens, h2);
  if (b_gate) add_bias(h, *b_gate, n_tokens);
  if (b_up) add_bias(h2, *b_up, n_tokens);
  swiglu(h, h2, static_cast<int64_t>(n_tokens) * w_gate.rows());
}

void Backend::matmul_residual(const TensorView& w, const TensorView* b, const float* y, int n_tokens, float* x,
                              float* tmp) {
  matmul(w, y, n_tokens, tmp);
  if (b) add_bias(tmp, *b, n_tokens);
  add(x, tmp, static_cast<int64_t>(n_tokens) * w.rows());
}

Result<std::unique_ptr<Backend>> make_backend(const std::string& name, int n_threads) {
  if (name == "cpu") return make_cpu_backend(n_threads);
  if (name == "reference") return make_reference_backend();
#ifdef TERN_HAVE_CUDA
  if (name == "cuda") return make_cuda_backend(CudaOptions{});
  return error("unknown backend '" + name + "' (choices: cpu, reference, cuda)");
#else
  if (name == "cuda") return error("backend 'cuda': this build of tern has no CUDA support (rebuild with -DTERN_CUDA=ON)");
  return error("unknown backend '" + name + "' (choices: cpu, reference)");
#endif
}

Result<std::unique_ptr<Backend>> make_backend(const BackendOptions& o) {
  auto fm = parse_float_matmul(o.float_matmul);
  if (!fm) return error("--float-matmul: " + fm.status().message());
  if (fm.value() != FloatMatmul::F32 && o.name != "cpu")
    return error("--float-matmul " + o.float_matmul + " is a mode of the cpu backend; it needs --backend cpu");
#ifdef TERN_HAVE_CUDA
  if (o.name == "cuda") {
    auto mm = parse_cuda_matmul(o.matmul);
    if (!mm) return mm.status();
    CudaOptions c;
    c.matmul = mm.value();
    c.graphs = o.graphs;
    return make_cuda_backend(c);
  }
#endif
  if (o.name != "cuda" && (o.matmul != "fast" || !o.graphs))
    return error("--matmul and --no-graphs choose CUDA kernels; they need --backend cuda");
  if (o.name == "cpu") return make_cpu_backend(o.threads, fm.value());
  return make_backend(o.name, o.threads);
}

}  // namespace tern
