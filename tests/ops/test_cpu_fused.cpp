// The cpu backend's fused layer ops against the composition of its own unfused ops (Backend's defaults,
// called with a qualified name so that they dispatch to the cpu backend's rmsnorm, matmul, rope, add_bias,
// swiglu and add): bit for bit, for every weight type and instruction set, with and without biases, for
// batches whose tokens sit at two runs of positions (two sequences). The unfused ops are themselves checked
// against the reference backend in test_cpu_backend.cpp.
#include <gtest/gtest.h>

#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "core/rng.h"
#include "model/config.h"
#include "ops/op_inputs.h"

namespace {

using namespace tern;
using namespace tern::test_ops;

// A float vector as a 1-D tensor of type t (norm weights and biases), rounded through t.
struct Vec {
  Weights w;
  explicit Vec(DType t, int64_t n, uint64_t seed) : w(make_weights(t, 1, n, seed)) { w.view.shape = {n}; }
};

// Token t of a batch of n: the first third at positions 5.., the rest at 40.. (a second sequence).
std::vector<int> positions(int n) {
  std::vector<int> pos(static_cast<size_t>(n));
  const int first = (n + 2) / 3;
  for (int t = 0; t < n; ++t) pos[static_cast<size_t>(t)] = t < first ? 5 + t : 40 + (t - first);
  return pos;
}

TEST(CpuFused, AttnInputIsTheUnfusedOpsBitForBit) {
  const int64_t D = 256;
  const int n_heads = 4, n_kv = 2, hd = 64;
  struct Case {
    DType q, k, v;
    DType bias;  // F32/F16/BF16, or Q8_0 for none
  };
  const std::vector<Case> cases = {
      {DType::F32, DType::F32, DType::F32, DType::Q8_0},  {DType::F16, DType::F16, DType::F16, DType::F32},
      {DType::BF16, DType::BF16, DType::BF16, DType::Q8_0}, {DType::Q8_0, DType::Q8_0, DType::Q8_0, DType::Q8_0},
      {DType::Q4_0, DType::Q4_0, DType::Q4_0, DType::F16},  {DType::Q4_1, DType::Q4_1, DType::Q4_1, DType::Q8_0},
      {DType::Q4_K, DType::Q4_K, DType::Q6_K, DType::Q8_0}, {DType::Q6_K, DType::Q6_K, DType::Q6_K, DType::BF16},
      {DType::Q5_0, DType::Q8_0, DType::Q5_0, DType::Q8_0},
  };
  const std::vector<float> freqs = [] {
    ModelConfig c;
    c.head_dim = hd;
    return rope_frequencies(c);
  }();
  Rng rng(3);
  for (CpuIsa isa : isas())
    for (const Case& c : cases)
      for (RopeStyle style : {RopeStyle::Adjacent, RopeStyle::HalfSplit})
        for (int n : {1, 7, 33}) {
          SCOPED_TRACE(testing::Message() << cpu_isa_name(isa) << " " << dtype_name(c.q) << "/" << dtype_name(c.k)
                                          << "/" << dtype_name(c.v) << " tokens " << n);
          Weights wq = make_weights(c.q, n_heads * hd, D, 11), wk = make_weights(c.k, n_kv * hd, D, 12);
          Weights wv = make_weights(c.v, n_kv * hd, D, 13);
          Vec norm(DType::F32, D, 14), bq(c.bias == DType::Q8_0 ? DType::F32 : c.bias, n_heads * hd, 15);
          Vec bk(bq.w.view.dtype, n_kv * hd, 16), bv(bq.w.view.dtype, n_kv * hd, 17);
          Backend::AttnInput a;
          a.norm = &norm.w.view;
          a.eps = 1e-5f;
          a.wq = &wq.view, a.wk = &wk.view, a.wv = &wv.view;
          if (c.bias != DType::Q8_0) a.bq = &bq.w.view, a.bk = &bk.w.view, a.bv = &bv.w.view;
          a.n_heads = n_heads, a.n_kv_heads = n_kv, a.head_dim = hd;
          a.freqs = freqs.data();
          a.style = style;
          const std::vector<float> x = random_floats(rng, static_cast<size_t>(n * D), -2, 2);
          const std::vector<int> pos = positions(n);
          auto cpu = make_cpu_backend_isa(2, isa);
          std::vector<float> xb(x.size()), q(static_cast<size_t>(n * n_heads * hd)), k(static_cast<size_t>(n * n_kv * hd));
          std::vector<float> v(k.size());
          std::vector<float> xb2 = xb, q2 = q, k2 = k, v2 = v;
          cpu->attn_input(a, x.data(), n, pos.data(), xb.data(), q.data(), k.data(), v.data());
          cpu->Backend::attn_input(a, x.data(), n, pos.data(), xb2.data(), q2.data(), k2.data(), v2.data());
          EXPECT_EQ(xb, xb2);
          EXPECT_EQ(q, q2);
          EXPECT_EQ(k, k2);
          EXPECT_EQ(v, v2);
        }
}

TEST(CpuFused, FfnInputIsTheUnfusedOpsBitForBit) {
  const int64_t D = 256, H = 320;  // H + 5 rows: five units of 64 hidden rows and a partial one
  Rng rng(4);
  for (CpuIsa isa : isas())
    for (DType t : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4_K, DType::Q6_K,
                    DType::Q5_1})
      for (bool bias : {false, true})
        for (int n : {1, 7, 33}) {
          SCOPED_TRACE(testing::Message() << cpu_isa_name(isa) << " " << dtype_name(t) << " bias " << bias
                                          << " tokens " << n);
          Weights wg = make_weights(t, H + 5, D, 21), wu = make_weights(t == DType::Q4_K ? DType::Q6_K : t, H + 5, D, 22);
          Vec norm(DType::F16, D, 23), bg(DType::F32, H + 5, 24), bu(DType::BF16, H + 5, 25);
          const std::vector<float> x = random_floats(rng, static_cast<size_t>(n * D), -2, 2);
          auto cpu = make_cpu_backend_isa(2, isa);
          std::vector<float> xb(x.size()), h(static_cast<size_t>(n * (H + 5))), h2(h.size());
          std::vector<float> xb_b = xb, h_b = h, h2_b = h2;
          const TensorView* pbg = bias ? &bg.w.view : nullptr;
          const TensorView* pbu = bias ? &bu.w.view : nullptr;
          cpu->ffn_input(x.data(), norm.w.view, 1e-6f, wg.view, wu.view, pbg, pbu, n, xb.data(), h.data(), h2.data());
          cpu->Backend::ffn_input(x.data(), norm.w.view, 1e-6f, wg.view, wu.view, pbg, pbu, n, xb_b.data(), h_b.data(),
                                  h2_b.data());
          EXPECT_EQ(xb, xb_b);
          EXPECT_EQ(h, h_b);
        }
}

TEST(CpuFused, MatmulResidualIsTheUnfusedOpsBitForBit) {
  const int64_t n_out = 96, n_in = 512;
  Rng rng(5);
  for (CpuIsa isa : isas())
    for (DType t : {DType::F32, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K, DType::Q3_K})
      for (bool bias : {false, true})
        for (int n : {1, 7, 33}) {
          SCOPED_TRACE(testing::Message() << cpu_isa_name(isa) << " " << dtype_name(t) << " bias " << bias
                                          << " tokens " << n);
          Weights w = make_weights(t, n_out, n_in, 31);
          Vec b(DType::F16, n_out, 32);
          const std::vector<float> y = random_floats(rng, static_cast<size_t>(n * n_in), -2, 2);
          std::vector<float> x = random_floats(rng, static_cast<size_t>(n * n_out), -2, 2), x2 = x;
          std::vector<float> tmp(x.size()), tmp2(x.size());
          auto cpu = make_cpu_backend_isa(2, isa);
          cpu->matmul_residual(w.view, bias ? &b.w.view : nullptr, y.data(), n, x.data(), tmp.data());
          cpu->Backend::matmul_residual(w.view, bias ? &b.w.view : nullptr, y.data(), n, x2.data(), tmp2.data());
          EXPECT_EQ(x, x2);
        }
}

// Three sequences (a prefill chunk, a decode token, a short chunk at an offset) with their own paged caches:
// the one-job batch against each sequence's kv_store and attention on its own.
TEST(CpuFused, AttentionBatchIsTheUnfusedOpsBitForBit) {
  const int n_heads = 6, n_kv = 2, hd = 64;
  const int64_t kd = n_kv * hd, qd = n_heads * hd;
  struct Seq {
    int n, pos0;
  };
  const std::vector<Seq> seqs = {{37, 0}, {1, 90}, {5, 20}};
  const int n = 43;
  Rng rng(6);
  for (CpuIsa isa : isas())
    for (DType t : {DType::F32, DType::F16, DType::Q8_0}) {
      SCOPED_TRACE(testing::Message() << cpu_isa_name(isa) << " " << dtype_name(t));
      const std::vector<float> q = random_floats(rng, static_cast<size_t>(n * qd));
      const std::vector<float> k = random_floats(rng, static_cast<size_t>(n * kd));
      const std::vector<float> v = random_floats(rng, static_cast<size_t>(n * kd));
      auto cpu = make_cpu_backend_isa(2, isa);
      // Each sequence's cache holds its earlier positions already (random, stored by the reference), twice:
      // one copy for each way of running.
      std::vector<PagedKv> a, b;
      std::vector<Backend::AttnSeq> sa, sb;
      a.reserve(seqs.size()), b.reserve(seqs.size());  // views point into the caches: no reallocation
      for (size_t i = 0, row = 0; i < seqs.size(); row += static_cast<size_t>(seqs[i].n), ++i) {
        const int n_pos = seqs[i].pos0 + seqs[i].n;
        a.emplace_back(t, kd, n_pos);
        b.emplace_back(t, kd, n_pos);
        if (seqs[i].pos0 > 0) {
          const std::vector<float> pk = random_floats(rng, static_cast<size_t>(seqs[i].pos0 * kd));
          const std::vector<float> pv = random_floats(rng, static_cast<size_t>(seqs[i].pos0 * kd));
          make_reference_backend()->kv_store(a.back().view, 0, seqs[i].pos0, pk.data(), pv.data());
          make_reference_backend()->kv_store(b.back().view, 0, seqs[i].pos0, pk.data(), pv.data());
        }
      }
      for (size_t i = 0, row = 0; i < seqs.size(); row += static_cast<size_t>(seqs[i].n), ++i) {
        Backend::AttnSeq s;
        s.n_tokens = seqs[i].n, s.pos0 = seqs[i].pos0, s.row = static_cast<int>(row);
        s.kv = a[i].view;
        sa.push_back(s);
        s.kv = b[i].view;
        sb.push_back(s);
      }
      std::vector<float> out(q.size()), out2(q.size());
      cpu->attention_batch(sa.data(), 3, q.data(), k.data(), v.data(), n_heads, n_kv, hd, out.data());
      cpu->Backend::attention_batch(sb.data(), 3, q.data(), k.data(), v.data(), n_heads, n_kv, hd, out2.data());
      EXPECT_EQ(out, out2);
      for (size_t i = 0; i < seqs.size(); ++i) {
        EXPECT_EQ(a[i].k, b[i].k);
        EXPECT_EQ(a[i].v, b[i].v);
      }
    }
}

}  // namespace
