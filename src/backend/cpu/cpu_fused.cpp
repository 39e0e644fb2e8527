// The CPU backend's fused layer ops (backend.h). Each does the work of its unfused composition in two
// parallel passes instead of four to eight, with results bit-identical to that composition on this backend
// (tests/ops/test_cpu_fused.cpp):
//   1. per token: RMSNorm into xb, then that row quantized and packed for each weight type that reads it
//      (and, for attention, the token's RoPE angles);
//   2. per unit of output rows (one head of Q, K or V; a block of the FFN's hidden rows): the product for
//      every token, then what follows it on the same rows while they are in cache: the bias, the rotation,
//      SiLU times up.
// A decode step thus hands work to the threads five times per layer (QKV, attention, Wo, gate/up, down)
// rather than twelve, and prefill no longer writes and rereads the normalised rows, the up product or the
// residual branch.
#include <algorithm>

#include "backend/cpu/cpu_backend_impl.h"
#include "core/quant.h"

namespace tern::cpu {

namespace {

// The bias as fp32 (converted into `scratch` unless it is F32 already); null for no bias.
const float* bias_f32(const TensorView* b, std::vector<float>& scratch) {
  if (!b) return nullptr;
  if (b->dtype == DType::F32) return static_cast<const float*>(b->data);
  grow(scratch, static_cast<size_t>(b->numel()));
  for (int64_t i = 0; i < b->numel(); ++i) scratch[static_cast<size_t>(i)] = load_element(b->dtype, b->data, i);
  return scratch.data();
}

}  // namespace

void CpuBackend::attn_input(const AttnInput& a, const float* x, int n_tokens, const int* pos, float* xb, float* q,
                            float* k, float* v) {
  const int64_t D = a.norm->numel(), hd = a.head_dim, half = hd / 2;
  const int64_t widths[3] = {a.n_heads * hd, a.n_kv_heads * hd, a.n_kv_heads * hd};
  const TensorView* ws[3] = {a.wq, a.wk, a.wv};
  float* outs[3] = {q, k, v};
  // Weights of one type read the same prepared activations: pack once per distinct type.
  MatmulPlan plans[3];
  int owner[3];  // which plan's activations each weight reads
  for (int i = 0; i < 3; ++i) {
    owner[i] = i;
    for (int j = 0; j < i; ++j)
      if (ws[j]->dtype == ws[i]->dtype) {
        owner[i] = owner[j];
        break;
      }
    plans[i] = plan_matmul(*ws[i], xb, n_tokens, act_[owner[i]]);
  }
  const float* nw = norm_weights(*a.norm);
  const float* bias[3] = {bias_f32(a.bq, bias_[0]), bias_f32(a.bk, bias_[1]), bias_f32(a.bv, bias_[2])};
  grow(rope_cs_, static_cast<size_t>(n_tokens * hd));
  float* cs = rope_cs_.data();
  pool_.parallel_for(n_tokens, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      float* xr = xb + t * D;
      norm_row(x + t * D, nw, a.eps, D, xr);
      for (int i = 0; i < 3; ++i)
        if (owner[i] == i) pack_token(plans[i], static_cast<int>(t), xr);
      rope_angles(pos[t], a.freqs, static_cast<int>(half), cs + t * hd);
    }
  });
  // Units: the heads of Q, then of K, then of V; each is head_dim rows of its weight for every token.
  const int n_units = a.n_heads + 2 * a.n_kv_heads;
  pool_.parallel_for(n_units, [&](int64_t u0, int64_t u1, int tid) {
    for (int64_t u = u0; u < u1; ++u) {
      const int i = u < a.n_heads ? 0 : u < a.n_heads + a.n_kv_heads ? 1 : 2;
      const int64_t head = i == 0 ? u : i == 1 ? u - a.n_heads : u - a.n_heads - a.n_kv_heads;
      const int64_t r0 = head * hd, r1 = r0 + hd, width = widths[i];
      float* out = outs[i];
      matmul_rows(plans[i], r0, r1, out, width, tid, false);
      for (int t = 0; t < n_tokens; ++t) {
        float* row = out + t * width;
        if (bias[i])
          for (int64_t r = r0; r < r1; ++r) row[r] += bias[i][r];
        if (i < 2) rope_head(row + r0, cs + t * hd, static_cast<int>(half), a.style);
      }
    }
  });
}

void CpuBackend::ffn_input(const float* x, const TensorView& norm, float eps, const TensorView& w_gate,
                           const TensorView& w_up, const TensorView* b_gate, const TensorView* b_up, int n_tokens,
                           float* xb, float* h, float* h2) {
  const int64_t D = norm.numel(), H = w_gate.rows();
  const bool shared = w_gate.dtype == w_up.dtype;
  const MatmulPlan pg = plan_matmul(w_gate, xb, n_tokens, act_[0]);
  const MatmulPlan pu = plan_matmul(w_up, xb, n_tokens, act_[shared ? 0 : 1]);
  const float* nw = norm_weights(norm);
  const float* bg = bias_f32(b_gate, bias_[0]);
  const float* bu = bias_f32(b_up, bias_[1]);
  pool_.parallel_for(n_tokens, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      float* xr = xb + t * D;
      norm_row(x + t * D, nw, eps, D, xr);
      pack_token(pg, static_cast<int>(t), xr);
      if (!shared) pack_token(pu, static_cast<int>(t), xr);
    }
  });
  // Units of 64 hidden rows (a whole number of the float GEMM's 16-row blocks): gate and up for every token, then
  // silu(gate) * up on those columns.
  constexpr int64_t kUnit = 64;
  const Kernels& k = k_;
  pool_.parallel_for((H + kUnit - 1) / kUnit, [&](int64_t u0, int64_t u1, int tid) {
    const int64_t r0 = u0 * kUnit, r1 = std::min(H, u1 * kUnit);
    matmul_rows(pg, r0, r1, h, H, tid, false);
    matmul_rows(pu, r0, r1, h2, H, tid, false);
    for (int t = 0; t < n_tokens; ++t) {
      float* g = h + t * H;
      float* up = h2 + t * H;
      if (bg)
        for (int64_t r = r0; r < r1; ++r) g[r] += bg[r];
      if (bu)
        for (int64_t r = r0; r < r1; ++r) up[r] += bu[r];
      k.silu_mul(g + r0, up + r0, r1 - r0);
    }
  });
}

void CpuBackend::matmul_residual(const TensorView& w, const TensorView* b, const float* y, int n_tokens, float* x,
                                 float* tmp) {
  // With a bias the composition adds it to the product before the residual: keep that order.
  if (b) return Backend::matmul_residual(w, b, y, n_tokens, x, tmp);
  const MatmulPlan p = plan_matmul(w, y, n_tokens, act_[0]);
  pack_all(p);
  matmul_all(p, x, true);
}

}  // namespace tern::cpu
