// The reference backend checked against values computed by hand. Every faster backend is later tested
// against this one, so these tests pin the oracle itself to the math in backend.h.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/backend.h"

namespace {

using namespace tern;

TensorView view_f32(const std::vector<float>& v, std::vector<int64_t> shape) {
  TensorView t;
  t.name = "w";
  t.dtype = DType::F32;
  t.shape = std::move(shape);
  t.data = v.data();
  t.nbytes = v.size() * 4;
  return t;
}

TEST(ReferenceOps, RmsNorm) {
  auto be = make_reference_backend();
  // x = (1, 2, 3, 4): mean square = 30/4 = 7.5, eps 0 -> scale 1/sqrt(7.5).
  std::vector<float> x = {1, 2, 3, 4}, w = {1, 1, 2, 0.5f}, out(4);
  be->rmsnorm(x.data(), view_f32(w, {4}), 0.0f, 1, out.data());
  const float s = 1.0f / std::sqrt(7.5f);
  EXPECT_NEAR(out[0], 1 * s, 1e-6);
  EXPECT_NEAR(out[1], 2 * s, 1e-6);
  EXPECT_NEAR(out[2], 6 * s, 1e-6);
  EXPECT_NEAR(out[3], 2 * s, 1e-6);
  // eps enters under the root: x = (0, 0) gives 0, not NaN.
  std::vector<float> z = {0, 0}, w2 = {1, 1}, o2(2);
  be->rmsnorm(z.data(), view_f32(w2, {2}), 1e-5f, 1, o2.data());
  EXPECT_EQ(o2[0], 0.0f);
}

TEST(ReferenceOps, MatmulF32AndHalfTypes) {
  auto be = make_reference_backend();
  // W (2, 3) = [[1, 2, 3], [-1, 0.5, 0]], two tokens x0 = (1, 1, 1), x1 = (2, 0, -1).
  std::vector<float> w = {1, 2, 3, -1, 0.5f, 0}, x = {1, 1, 1, 2, 0, -1}, out(4);
  be->matmul(view_f32(w, {2, 3}), x.data(), 2, out.data());
  EXPECT_FLOAT_EQ(out[0], 6);     // 1 + 2 + 3
  EXPECT_FLOAT_EQ(out[1], -0.5);  // -1 + 0.5
  EXPECT_FLOAT_EQ(out[2], -1);    // 2 - 3
  EXPECT_FLOAT_EQ(out[3], -2);    // -2
  // The same weights as F16 and BF16: these values are exact in both, so results are identical.
  for (DType t : {DType::F16, DType::BF16}) {
    std::vector<uint16_t> h(6);
    for (int i = 0; i < 6; ++i) h[i] = t == DType::F16 ? f32_to_f16(w[i]) : f32_to_bf16(w[i]);
    TensorView hv = view_f32(w, {2, 3});
    hv.dtype = t;
    hv.data = h.data();
    hv.nbytes = 12;
    std::vector<float> o(4);
    be->matmul(hv, x.data(), 2, o.data());
    EXPECT_EQ(o, out) << dtype_name(t);
  }
}

TEST(ReferenceOps, EmbeddingGathersRows) {
  auto be = make_reference_backend();
  std::vector<float> table = {0, 1, 10, 11, 20, 21};  // (3, 2)
  int toks[] = {2, 0};
  std::vector<float> out(4);
  be->embedding(view_f32(table, {3, 2}), toks, 2, out.data());
  EXPECT_EQ(out, (std::vector<float>{20, 21, 0, 1}));
}

TEST(ReferenceOps, RopePairings) {
  auto be = make_reference_backend();
  // head_dim 4, theta 100: pair 0 turns by pos * 1, pair 1 by pos * 100^(-2/4) = pos * 0.1.
  const float freqs[] = {1.0f, 0.1f};
  const int pos = 3;
  const float a0 = 3.0f, a1 = 0.3f;
  {
    // Adjacent pairs (0,1), (2,3).
    std::vector<float> v = {1, 0, 0, 1};
    be->rope(v.data(), 1, 1, 4, pos, freqs, RopeStyle::Adjacent);
    EXPECT_NEAR(v[0], std::cos(a0), 1e-6);
    EXPECT_NEAR(v[1], std::sin(a0), 1e-6);
    EXPECT_NEAR(v[2], -std::sin(a1), 1e-6);
    EXPECT_NEAR(v[3], std::cos(a1), 1e-6);
  }
  {
    // Half split pairs (0,2), (1,3).
    std::vector<float> v = {1, 0, 0, 1};
    be->rope(v.data(), 1, 1, 4, pos, freqs, RopeStyle::HalfSplit);
    EXPECT_NEAR(v[0], std::cos(a0), 1e-6);
    EXPECT_NEAR(v[2], std::sin(a0), 1e-6);
    EXPECT_NEAR(v[1], -std::sin(a1), 1e-6);
    EXPECT_NEAR(v[3], std::cos(a1), 1e-6);
  }
  {
    // Position 0 is the identity; token t of a batch sits at pos0 + t.
    std::vector<float> v = {1, 2, 3, 4, 1, 0, 0, 1};
    be->rope(v.data(), 2, 1, 4, 0, freqs, RopeStyle::Adjacent);
    EXPECT_EQ(v[0], 1);
    EXPECT_EQ(v[3], 4);
    EXPECT_NEAR(v[4], std::cos(1.0f), 1e-6);
  }
}

TEST(ReferenceOps, RopeUsesTheFrequencyTable) {
  // Each pair turns by pos * freqs[i] whatever the table holds (a rescaled table is not a power series),
  // and every head of every token uses the same table.
  auto be = make_reference_backend();
  const float freqs[] = {0.5f, 2.0f};
  std::vector<float> v = {1, 0, 1, 0, 1, 0, 1, 0};  // (1 token, 2 heads, head_dim 4)
  be->rope(v.data(), 1, 2, 4, 5, freqs, RopeStyle::Adjacent);
  for (int h = 0; h < 2; ++h) {
    EXPECT_NEAR(v[4 * h + 0], std::cos(2.5f), 1e-6);
    EXPECT_NEAR(v[4 * h + 1], std::sin(2.5f), 1e-6);
    EXPECT_NEAR(v[4 * h + 2], std::cos(10.0f), 1e-6);
    EXPECT_NEAR(v[4 * h + 3], std::sin(10.0f), 1e-6);
  }
}

TEST(ReferenceOps, AddBiasEveryRow) {
  auto be = make_reference_backend();
  std::vector<float> x = {1, 2, 3, 10, 20, 30};  // (2 tokens, 3)
  std::vector<float> b = {0.5f, -1.0f, 4.0f};
  be->add_bias(x.data(), view_f32(b, {3}), 2);
  EXPECT_EQ(x, (std::vector<float>{1.5f, 1, 7, 10.5f, 19, 34}));
}

// A view of contiguous fp32 rows (n_pos, kv_dim) as one block holding every position.
KvView contiguous_kv(std::vector<float>& k, std::vector<float>& v, int64_t kv_dim, int n_pos) {
  static const int32_t kTable[1] = {0};
  KvView kv;
  kv.k = reinterpret_cast<uint8_t*>(k.data());
  kv.v = reinterpret_cast<uint8_t*>(v.data());
  kv.row_elems = kv_dim;
  kv.row_bytes = kv_dim * static_cast<int64_t>(sizeof(float));
  kv.block_size = n_pos;
  kv.block_bytes = kv.row_bytes * n_pos;
  kv.blocks = kTable;
  return kv;
}

TEST(ReferenceOps, AttentionCausalGqa) {
  auto be = make_reference_backend();
  // head_dim 2, 2 query heads sharing 1 kv head, 2 positions.
  // keys: k0 = (0, 0), k1 = (ln 3 * sqrt 2, 0); values v0 = (1, 0), v1 = (0, 1).
  const float L = std::log(3.0f) * std::sqrt(2.0f);
  std::vector<float> k = {0, 0, L, 0}, v = {1, 0, 0, 1};
  const KvView kv = contiguous_kv(k, v, 2, 2);
  // Query at position 0 sees only key 0: output = v0 for both heads.
  std::vector<float> q0 = {1, 0, 5, 5}, out0(4);
  be->attention(q0.data(), kv, 1, 0, 2, 1, 2, out0.data());
  EXPECT_NEAR(out0[0], 1, 1e-6);
  EXPECT_NEAR(out0[1], 0, 1e-6);
  EXPECT_NEAR(out0[2], 1, 1e-6);
  // Query at position 1, head 0 q = (1, 0): scores (0, ln 3) after the 1/sqrt(2) scale -> weights (1/4, 3/4).
  // Head 1 q = (0, 1): scores (0, 0) -> weights (1/2, 1/2).
  std::vector<float> q1 = {1, 0, 0, 1}, out1(4);
  be->attention(q1.data(), kv, 1, 1, 2, 1, 2, out1.data());
  EXPECT_NEAR(out1[0], 0.25, 1e-6);
  EXPECT_NEAR(out1[1], 0.75, 1e-6);
  EXPECT_NEAR(out1[2], 0.5, 1e-6);
  EXPECT_NEAR(out1[3], 0.5, 1e-6);
  // Both positions in one call (prefill) give the same rows.
  std::vector<float> q01 = {1, 0, 5, 5, 1, 0, 0, 1}, out01(8);
  be->attention(q01.data(), kv, 2, 0, 2, 1, 2, out01.data());
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(out01[i], out0[i], 1e-7);
    EXPECT_NEAR(out01[4 + i], out1[i], 1e-7);
  }
}

TEST(ReferenceOps, SwigluAndAdd) {
  auto be = make_reference_backend();
  // silu(g) = g * sigmoid(g): silu(0) = 0, silu(2) = 2 / (1 + e^-2).
  std::vector<float> g = {0, 2, -1}, u = {5, 3, 2};
  be->swiglu(g.data(), u.data(), 3);
  EXPECT_FLOAT_EQ(g[0], 0);
  EXPECT_NEAR(g[1], 2 / (1 + std::exp(-2.0)) * 3, 1e-6);
  EXPECT_NEAR(g[2], -1 / (1 + std::exp(1.0)) * 2, 1e-6);
  std::vector<float> x = {1, 2}, y = {0.5f, -2};
  be->add(x.data(), y.data(), 2);
  EXPECT_EQ(x, (std::vector<float>{1.5f, 0}));
}

TEST(Dtype, HalfConversionsRoundTrip) {
  // Every finite half converts to float and back unchanged.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;  // inf/nan
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);                // rounds to inf
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.5f)), 1.5f);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie to even
}

}  // namespace
