// The cpu backend's bf16 mode for F16 and BF16 weights (FloatMatmul::Bf16, backend/cpu/fgemm_bf16.h): its
// roundings against scalar round-to-nearest-even, its products against a double-precision product of the
// same fp32 inputs within a derived bound, batch independence (alone == in a batch, bit for bit; fused ops ==
// their composition), and the default mode left exactly as it was. Tests that run the mode skip on CPUs
// without AVX512_BF16.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/fgemm.h"
#include "backend/cpu/fgemm_bf16.h"
#include "core/dtype.h"
#include "core/rng.h"
#include "formats/model_file.h"
#include "formats/synth.h"
#include "model/config.h"
#include "model/llama.h"
#include "ops/op_inputs.h"
#include "test_util.h"

namespace {

using namespace tern;
using namespace tern::test_ops;

#define REQUIRE_BF16()                                                                        \
  if (!cpu_supports_bf16_matmul()) GTEST_SKIP() << "no AVX512_BF16 (or AVX-512 VNNI) on this CPU"

std::unique_ptr<Backend> bf16_backend(int n_threads = 2) {
  return make_cpu_backend_isa(n_threads, CpuIsa::Avx512, FloatMatmul::Bf16);
}

// Scalar round to nearest even (core/dtype.h), the value the mode must compute with.
float to_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(CpuBf16, PackingRoundsToNearestEven) {
  REQUIRE_BF16();
  // Activations: random values, and exact ties between two bf16 neighbours (even mantissa: down; odd: up),
  // n = 75 (two full steps of 32 and a partial one whose padding must be zero).
  Rng rng(1);
  std::vector<float> x = random_floats(rng, 75, -3.0f, 3.0f);
  x[0] = from_bits(0x3F808000u);  // 1.0 + half an ulp of bf16: tie, rounds down to 0x3F80
  x[1] = from_bits(0x3F818000u);  // tie above an odd mantissa: rounds up to 0x3F82
  x[2] = from_bits(0xBF818000u);
  x[3] = from_bits(0x3F808001u);  // just above a tie: up
  x[4] = 0.0f, x[5] = -0.0f, x[6] = 65504.0f, x[7] = 1e-30f;
  std::vector<uint16_t> got(static_cast<size_t>(cpu::bgemm_row_elems(75)), 0xFFFF);
  ASSERT_EQ(got.size(), 96u);
  cpu::bgemm_pack_x(x.data(), 75, got.data());
  for (size_t i = 0; i < 75; ++i) EXPECT_EQ(got[i], f32_to_bf16(x[i])) << "element " << i << " = " << x[i];
  for (size_t i = 75; i < got.size(); ++i) EXPECT_EQ(got[i], 0) << "padding " << i;
  EXPECT_EQ(got[0], 0x3F80);
  EXPECT_EQ(got[1], 0x3F82);
  EXPECT_EQ(got[2], 0xBF82);
  EXPECT_EQ(got[3], 0x3F81);

  // F16 weights: every finite half value (F16 -> fp32 is exact, so this is the one rounding), in rows of 50.
  std::vector<uint16_t> h;
  for (uint32_t c = 0; c < 65536; ++c)
    if ((c & 0x7C00u) != 0x7C00u) h.push_back(static_cast<uint16_t>(c));
  const int64_t n_in = 50, n_rows = static_cast<int64_t>(h.size()) / n_in, ld = cpu::bgemm_row_elems(n_in);
  std::vector<uint16_t> packed(static_cast<size_t>(n_rows * ld), 0xFFFF);
  cpu::bgemm_pack_weights(DType::F16, reinterpret_cast<const uint8_t*>(h.data()), n_in * 2, n_rows, n_in,
                          packed.data());
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t i = 0; i < ld; ++i) {
      const uint16_t g = packed[static_cast<size_t>(r * ld + i)];
      if (i >= n_in) {
        ASSERT_EQ(g, 0) << "padding of row " << r;
        continue;
      }
      const uint16_t code = h[static_cast<size_t>(r * n_in + i)];
      ASSERT_EQ(g, f32_to_bf16(f16_to_f32(code))) << "f16 code " << code;
    }
  // BF16 weights are copied as they are.
  cpu::bgemm_pack_weights(DType::BF16, reinterpret_cast<const uint8_t*>(h.data()), n_in * 2, n_rows, n_in,
                          packed.data());
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t i = 0; i < n_in; ++i)
      ASSERT_EQ(packed[static_cast<size_t>(r * ld + i)], h[static_cast<size_t>(r * n_in + i)]);
}

// The bf16 mode against double-precision products, for rows r and tokens t:
//   exact = sum_i w_i x_i                  (the same fp32 inputs the fp32 mode reads; F16 weights as fp32)
//   tight = sum_i bf16(w_i) bf16(x_i)      (the inputs rounded as the mode must round them)
void check_bf16_matmul(DType t, int64_t n_out, int64_t n_in, int n_tokens) {
  SCOPED_TRACE(testing::Message() << dtype_name(t) << " " << n_out << "x" << n_in << " tokens " << n_tokens);
  Weights w = make_weights(t, n_out, n_in, 500 + static_cast<uint64_t>(t) * 3 + static_cast<uint64_t>(n_in));
  Rng rng(900 + static_cast<uint64_t>(n_tokens));
  std::vector<float> x = random_floats(rng, static_cast<size_t>(n_tokens * n_in), -2.0f, 2.0f);
  std::vector<float> got(static_cast<size_t>(n_tokens * n_out), NAN);
  bf16_backend()->matmul(w.view, x.data(), n_tokens, got.data());
  const double u = 1.0 / 256;             // bf16 unit roundoff: 8 significant bits, round to nearest
  const double u32 = FLT_EPSILON / 2;     // fp32 unit roundoff
  const double n = static_cast<double>(n_in);
  const double uw = t == DType::BF16 ? 0.0 : u;  // BF16 weights are exact in bf16; F16 ones are rounded
  for (int tk = 0; tk < n_tokens; ++tk) {
    const float* xt = x.data() + tk * n_in;
    for (int64_t r = 0; r < n_out; ++r) {
      const float* wr = w.f32.data() + r * n_in;
      double exact = 0, absdot = 0, tight = 0, abstight = 0;
      for (int64_t i = 0; i < n_in; ++i) {
        exact += static_cast<double>(wr[i]) * xt[i];
        absdot += std::fabs(static_cast<double>(wr[i]) * xt[i]);
        const double p = static_cast<double>(to_bf16(wr[i])) * to_bf16(xt[i]);
        tight += p;
        abstight += std::fabs(p);
      }
      const double g = got[static_cast<size_t>(tk * n_out + r)];
      // Against `tight`: the products of two bf16 are exact in fp32 (8 + 8 significant bits), so the only
      // error is the fp32 summation of n terms in some order: at most n u32 sum|p_i| (Higham 3.1).
      const double tol_tight = n * u32 * abstight + 1e-30;
      ASSERT_LE(std::fabs(g - tight), tol_tight) << "row " << r << " token " << tk << ": " << g << " vs " << tight;
      // Against `exact`: bf16(w) = w (1 + d_w), bf16(x) = x (1 + d_x) with |d_w| <= uw, |d_x| <= u, so each
      // product moves by at most (uw + u + uw u) |w_i x_i|; then the summation bound above, on products at most
      // (1 + uw)(1 + u) |w_i x_i|. F16: (2u + u^2) A + n u32 (1 + u)^2 A with A = sum|w_i x_i|, u = 2^-8.
      const double tol = (uw + u + uw * u) * absdot + n * u32 * (1 + uw) * (1 + u) * absdot + 1e-30;
      ASSERT_LE(std::fabs(g - exact), tol) << "row " << r << " token " << tk << ": " << g << " vs " << exact;
    }
  }
}

TEST(CpuBf16, MatmulWithinTheBoundOfTheExactProduct) {
  REQUIRE_BF16();
  // Rows: odd, fewer than a tile, not a multiple of the 16-row block; columns: not a multiple of 32, one
  // step, several steps, and more than one chunk of 2048 (accumulators parked between chunks).
  struct Shape {
    int64_t n_out, n_in;
  };
  for (DType t : {DType::F16, DType::BF16})
    for (Shape s : {Shape{37, 67}, Shape{3, 32}, Shape{45, 576}, Shape{19, 2100}})
      for (int n_tokens = 1; n_tokens <= 20; ++n_tokens) check_bf16_matmul(t, s.n_out, s.n_in, n_tokens);
}

// A token's output row is bit-identical alone (decode) and in a batch of any size, for plain and fused ops.
TEST(CpuBf16, TokenOutputDoesNotDependOnTheBatch) {
  REQUIRE_BF16();
  Rng rng(78);
  for (DType t : {DType::F16, DType::BF16})
    for (int64_t n_in : {67, 768, 2100}) {
      const int64_t n_out = 45;
      Weights w = make_weights(t, n_out, n_in, 310 + static_cast<uint64_t>(t));
      const int n_tokens = 19;
      std::vector<float> x = random_floats(rng, static_cast<size_t>(n_tokens * n_in), -2.0f, 2.0f);
      auto cpu = bf16_backend();
      std::vector<float> all(static_cast<size_t>(n_tokens * n_out));
      cpu->matmul(w.view, x.data(), n_tokens, all.data());
      // Every token alone, and the batch's tokens 3..10 as a batch of 8 (another tile split).
      std::vector<float> part(static_cast<size_t>(8 * n_out));
      cpu->matmul(w.view, x.data() + 3 * n_in, 8, part.data());
      for (int tk = 0; tk < n_tokens; ++tk) {
        std::vector<float> one(static_cast<size_t>(n_out));
        cpu->matmul(w.view, x.data() + tk * n_in, 1, one.data());
        for (int64_t r = 0; r < n_out; ++r) {
          const float a = all[static_cast<size_t>(tk * n_out + r)];
          ASSERT_EQ(one[static_cast<size_t>(r)], a) << dtype_name(t) << " n_in " << n_in << " token " << tk << " row " << r;
          if (tk >= 3 && tk < 11) {
            ASSERT_EQ(part[static_cast<size_t>((tk - 3) * n_out + r)], a) << dtype_name(t) << " token " << tk;
          }
        }
      }
    }
}

TEST(CpuBf16, FusedOpsAreTheUnfusedOpsBitForBit) {
  REQUIRE_BF16();
  const int64_t D = 256, H = 325;
  const int n_heads = 4, n_kv = 2, hd = 64;
  const std::vector<float> freqs = [] {
    ModelConfig c;
    c.head_dim = hd;
    return rope_frequencies(c);
  }();
  Rng rng(8);
  for (DType t : {DType::F16, DType::BF16})
    for (int n : {1, 7, 20}) {
      SCOPED_TRACE(testing::Message() << dtype_name(t) << " tokens " << n);
      Weights norm = make_weights(DType::F32, 1, D, 40);
      norm.view.shape = {D};
      Weights wq = make_weights(t, n_heads * hd, D, 41), wk = make_weights(t, n_kv * hd, D, 42);
      Weights wv = make_weights(DType::F32, n_kv * hd, D, 43);  // F32 beside bf16 ones: stays fp32
      Weights wg = make_weights(t, H, D, 44), wu = make_weights(t, H, D, 45), wo = make_weights(t, D, n_heads * hd, 46);
      std::vector<int> pos(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) pos[static_cast<size_t>(i)] = 3 + i;
      Backend::AttnInput a;
      a.norm = &norm.view;
      a.eps = 1e-5f;
      a.wq = &wq.view, a.wk = &wk.view, a.wv = &wv.view;
      a.n_heads = n_heads, a.n_kv_heads = n_kv, a.head_dim = hd;
      a.freqs = freqs.data();
      a.style = RopeStyle::Adjacent;
      const std::vector<float> x = random_floats(rng, static_cast<size_t>(n * D), -2, 2);
      auto cpu = bf16_backend();
      std::vector<float> xb(x.size()), q(static_cast<size_t>(n * n_heads * hd)), k(static_cast<size_t>(n * n_kv * hd));
      std::vector<float> v(k.size()), xb2 = xb, q2 = q, k2 = k, v2 = v;
      cpu->attn_input(a, x.data(), n, pos.data(), xb.data(), q.data(), k.data(), v.data());
      cpu->Backend::attn_input(a, x.data(), n, pos.data(), xb2.data(), q2.data(), k2.data(), v2.data());
      EXPECT_EQ(q, q2);
      EXPECT_EQ(k, k2);
      EXPECT_EQ(v, v2);
      std::vector<float> h(static_cast<size_t>(n * H)), h2(h.size()), hb(h.size()), h2b(h.size());
      cpu->ffn_input(x.data(), norm.view, 1e-5f, wg.view, wu.view, nullptr, nullptr, n, xb.data(), h.data(), h2.data());
      cpu->Backend::ffn_input(x.data(), norm.view, 1e-5f, wg.view, wu.view, nullptr, nullptr, n, xb2.data(), hb.data(),
                              h2b.data());
      EXPECT_EQ(h, hb);
      std::vector<float> res = x, res2 = x, tmp(x.size()), tmp2(x.size());
      cpu->matmul_residual(wo.view, nullptr, q.data(), n, res.data(), tmp.data());
      cpu->Backend::matmul_residual(wo.view, nullptr, q.data(), n, res2.data(), tmp2.data());
      EXPECT_EQ(res, res2);
    }
}

// A whole model (a synthesized F16 stories15M) in bf16 mode: the prompt's last logits are bit-identical
// whether it is prefilled in one call, in chunks, or one token at a time (decode steps).
TEST(CpuBf16, ModelLogitsDoNotDependOnHowThePromptIsSplit) {
  REQUIRE_BF16();
  const std::string path = tern_test::temp_dir() + "/bf16_mode_f16.gguf";
  SynthOptions o;
  o.shape = "stories15M";
  o.type = DType::F16;
  ASSERT_TRUE(synth_model(o, path).ok());
  auto f = load_model_file(path);
  ASSERT_TRUE(f.ok()) << f.message();
  const ModelConfig& c = f.value()->config;
  std::vector<int> toks(23);
  for (size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<int>((i * 37 + 5) % static_cast<size_t>(c.vocab_size));
  auto run = [&](int step) {
    auto be = bf16_backend();
    auto m = LlamaModel::create(c, f.value()->weights, *be, 64);
    EXPECT_TRUE(m.ok()) << m.message();
    std::vector<float> logits(static_cast<size_t>(c.vocab_size));
    for (int p = 0; p < static_cast<int>(toks.size()); p += step) {
      const int k = std::min(step, static_cast<int>(toks.size()) - p);
      EXPECT_TRUE(m.value()->forward(toks.data() + p, k, p, logits.data()).ok());
    }
    return logits;
  };
  const std::vector<float> whole = run(23);
  EXPECT_EQ(whole, run(1));
  EXPECT_EQ(whole, run(5));
}

// The default mode is the fp32 float GEMM, unchanged: the backend's output equals fgemm_avx512's bit for bit
// (and so does an explicit FloatMatmul::F32); F32 weights stay on it in bf16 mode too.
TEST(CpuBf16, DefaultModeIsTheFp32KernelBitForBit) {
  if (!cpu_supports_isa(CpuIsa::Avx512)) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  Rng rng(79);
  for (DType t : {DType::F32, DType::F16, DType::BF16})
    for (int n_tokens : {1, 7, 20}) {
      const int64_t n_out = 37, n_in = 576;
      Weights w = make_weights(t, n_out, n_in, 320 + static_cast<uint64_t>(t));
      std::vector<float> x = random_floats(rng, static_cast<size_t>(n_tokens * n_in), -2.0f, 2.0f);
      std::vector<float> direct(static_cast<size_t>(n_tokens * n_out)), dflt(direct.size()), f32(direct.size());
      // The kernel on the whole matrix in 16-row blocks, as the backend calls it.
      std::vector<float> scratch(static_cast<size_t>(cpu::fgemm_scratch_floats(16, n_in)) + 16);
      float* sc = scratch.data() + (16 - (reinterpret_cast<uintptr_t>(scratch.data()) / 4) % 16) % 16;
      const int64_t rb = static_cast<int64_t>(row_bytes(t, n_in));
      for (int64_t r = 0; r < n_out; r += 16)
        cpu::fgemm_avx512(t, w.bytes.data() + r * rb, rb, std::min<int64_t>(16, n_out - r), n_in, x.data(), n_tokens,
                          direct.data() + r, n_out, sc);
      make_cpu_backend(2)->matmul(w.view, x.data(), n_tokens, dflt.data());
      make_cpu_backend_isa(2, CpuIsa::Avx512, FloatMatmul::F32)->matmul(w.view, x.data(), n_tokens, f32.data());
      EXPECT_EQ(dflt, direct) << dtype_name(t) << " tokens " << n_tokens;
      EXPECT_EQ(f32, direct) << dtype_name(t) << " tokens " << n_tokens;
      if (t == DType::F32 && cpu_supports_bf16_matmul()) {
        std::vector<float> b(direct.size());
        bf16_backend()->matmul(w.view, x.data(), n_tokens, b.data());
        EXPECT_EQ(b, direct) << "F32 weights in bf16 mode, tokens " << n_tokens;
      }
    }
}

TEST(CpuBf16, OptionErrors) {
  EXPECT_TRUE(parse_float_matmul("f32").ok());
  EXPECT_TRUE(parse_float_matmul("bf16").ok());
  auto bad = parse_float_matmul("fp16");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("f32, bf16"), std::string::npos) << bad.message();
  BackendOptions o;
  o.threads = 1;
  o.float_matmul = "f16";
  auto b1 = make_backend(o);
  ASSERT_FALSE(b1.ok());
  EXPECT_NE(b1.message().find("--float-matmul"), std::string::npos) << b1.message();
  o.name = "reference";
  o.float_matmul = "bf16";
  auto b2 = make_backend(o);
  ASSERT_FALSE(b2.ok());
  EXPECT_NE(b2.message().find("--backend cpu"), std::string::npos) << b2.message();
  o.name = "cpu";
  auto b3 = make_backend(o);
  if (cpu_supports_bf16_matmul()) {
    ASSERT_TRUE(b3.ok()) << b3.message();
    EXPECT_STREQ(b3.value()->name(), "cpu-bf16");
  } else {
    ASSERT_FALSE(b3.ok());
    EXPECT_NE(b3.message().find("AVX512_BF16"), std::string::npos) << b3.message();
  }
  o.float_matmul = "f32";
  auto b4 = make_backend(o);
  ASSERT_TRUE(b4.ok()) << b4.message();
  EXPECT_STREQ(b4.value()->name(), "cpu");
}

}  // namespace
