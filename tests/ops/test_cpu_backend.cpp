// The CPU backend against the reference backend: every op, every weight type, on every instruction-set path
// this machine can run (each forced through make_cpu_backend_isa), on seeded random inputs of awkward sizes
// (rows not a multiple of the thread count or the row block, token counts 1, 7 and 33). Tolerances are
// derived next to each assertion.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/qgemm.h"
#include "core/quant.h"
#include "core/rng.h"
#include "formats/model_file.h"
#include "formats/synth.h"
#include "test_util.h"
#include "ops/op_inputs.h"

namespace {

using namespace tern;
using namespace tern::test_ops;

// Types whose activations the cpu backend rounds to int8 (Q4_K and Q6_K only through the AVX-512 packed GEMM).
bool int8_activations(DType t, CpuIsa isa) {
  return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_1 ||
         ((t == DType::Q4_K || t == DType::Q6_K) && isa == CpuIsa::Avx512);
}

// How far the cpu backend's dot of weight row wr with activation row xt (n_in elements) may be from the
// reference's.
double matmul_tol(DType t, CpuIsa isa, const float* wr, const float* xt, int64_t n_in) {
  // Rounding of an fp32 sum of n products, in any order: at most n * u * sum|w_i x_i| (Higham, "Accuracy
  // and Stability of Numerical Algorithms", 3.1), u = FLT_EPSILON / 2. The reference sums in double.
  double absdot = 0.0;
  for (int64_t i = 0; i < n_in; ++i) absdot += std::fabs(static_cast<double>(wr[i]) * xt[i]);
  double tol = static_cast<double>(n_in) * (FLT_EPSILON / 2) * absdot + 1e-6;
  if (int8_activations(t, isa)) {
    // x is rounded to d * round(x / d) per block of 32 with d = max|x_block| / 127, so each x_i moves by
    // at most d / 2 and the dot by at most sum_blocks (d_b / 2) * sum_{i in b} |w_i| (products of codes are
    // exact in int32; the block sums pick up the same fp32 rounding as above, counted twice for slack).
    tol *= 2;
    for (int64_t b = 0; b < n_in / 32; ++b) {
      double amax = 0.0, wsum = 0.0;
      for (int i = 0; i < 32; ++i) {
        amax = std::max(amax, std::fabs(static_cast<double>(xt[b * 32 + i])));
        wsum += std::fabs(static_cast<double>(wr[b * 32 + i]));
      }
      tol += amax / 127.0 / 2.0 * wsum * 1.001;
    }
  }
  return tol;
}

// With `residual`, through matmul_residual (out = x0 + x W^T: the integer GEMM's accumulate mode) from a
// random x0, which the reference adds in double.
void check_matmul(DType t, int64_t n_out, int64_t n_in, int n_tokens, int n_threads, CpuIsa isa,
                  bool residual = false) {
  SCOPED_TRACE(testing::Message() << dtype_name(t) << " " << n_out << "x" << n_in << " tokens " << n_tokens
                                  << " threads " << n_threads << " " << cpu_isa_name(isa)
                                  << (residual ? " residual" : ""));
  Weights w = make_weights(t, n_out, n_in, 1000 + static_cast<uint64_t>(t) * 7 + static_cast<uint64_t>(n_in));
  Rng rng(42 + static_cast<uint64_t>(n_tokens));
  std::vector<float> x = random_floats(rng, static_cast<size_t>(n_tokens * n_in), -2.0f, 2.0f);
  std::vector<float> ref(static_cast<size_t>(n_tokens * n_out)), got(ref.size(), NAN);
  make_reference_backend()->matmul(w.view, x.data(), n_tokens, ref.data());
  auto cpu = make_cpu_backend_isa(n_threads, isa);
  std::vector<float> x0;
  if (residual) {
    x0 = random_floats(rng, ref.size(), -4.0f, 4.0f);
    got = x0;
    std::vector<float> tmp(ref.size());
    cpu->matmul_residual(w.view, nullptr, x.data(), n_tokens, got.data(), tmp.data());
  } else {
    cpu->matmul(w.view, x.data(), n_tokens, got.data());
  }
  for (int tk = 0; tk < n_tokens; ++tk) {
    const float* xt = x.data() + tk * n_in;
    for (int64_t r = 0; r < n_out; ++r) {
      const size_t i = static_cast<size_t>(tk * n_out + r);
      // The residual's sum adds one rounding of the result.
      double e = ref[i], tol = matmul_tol(t, isa, w.f32.data() + r * n_in, xt, n_in);
      if (residual) {
        e += x0[i];
        tol += std::fabs(e) * (FLT_EPSILON / 2);
      }
      const float g = got[i];
      ASSERT_LE(std::fabs(static_cast<double>(g) - e), tol) << "row " << r << " token " << tk << ": " << g << " vs " << e;
    }
  }
}

TEST(CpuBackend, MatmulEveryTypeEveryIsa) {
  struct Case {
    DType t;
    std::vector<int64_t> n_in;
  };
  const std::vector<Case> cases = {
      {DType::F32, {67, 576}},       {DType::F16, {67, 576}},        {DType::BF16, {67, 576}},
      {DType::Q8_0, {96, 576, 1568}}, {DType::Q4_0, {96, 576, 1568}}, {DType::Q4_1, {96, 576, 1568}},
      {DType::Q5_0, {96}},           {DType::Q5_1, {96}},            {DType::Q4_K, {256, 768, 2048}},
      {DType::Q6_K, {256, 768, 2048}}, {DType::Q2_K, {256}},         {DType::Q3_K, {256}},
      {DType::Q5_K, {256}},
  };
  for (CpuIsa isa : isas())
    for (const Case& c : cases)
      for (int64_t n_in : c.n_in)
        for (int n_tokens : {1, 7, 33}) check_matmul(c.t, 37, n_in, n_tokens, 2, isa);
}

// Batching must never change results: a token's output row is bit-identical whether the token is alone in
// the call or one of many, for every weight type and path (the server relies on it).
// Each of 13 tokens alone gives, bit for bit, what it gets among all 13 in one call (45 rows of n_in).
void expect_batch_invariant(Rng& rng, CpuIsa isa, DType t, int64_t n_in, uint64_t seed) {
  const int64_t n_out = 45;
  Weights w = make_weights(t, n_out, n_in, seed);
  const int n_tokens = 13;
  std::vector<float> x = random_floats(rng, static_cast<size_t>(n_tokens * n_in), -2.0f, 2.0f);
  auto cpu = make_cpu_backend_isa(2, isa);
  std::vector<float> all(static_cast<size_t>(n_tokens * n_out));
  cpu->matmul(w.view, x.data(), n_tokens, all.data());
  for (int tk = 0; tk < n_tokens; ++tk) {
    std::vector<float> one(static_cast<size_t>(n_out));
    cpu->matmul(w.view, x.data() + tk * n_in, 1, one.data());
    for (int64_t r = 0; r < n_out; ++r)
      ASSERT_EQ(one[static_cast<size_t>(r)], all[static_cast<size_t>(tk * n_out + r)])
          << cpu_isa_name(isa) << " " << dtype_name(t) << " width " << n_in << " token " << tk << " row " << r;
  }
}

TEST(CpuBackend, MatmulRowDoesNotDependOnTheBatch) {
  Rng rng(77);
  for (CpuIsa isa : isas())
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4_K,
                    DType::Q6_K})
      expect_batch_invariant(rng, isa, t, 768, 300 + static_cast<uint64_t>(t));
}

// Rows whose block count is not a multiple of 16 end in tail blocks, which the AVX-512 integer GEMM packs
// several rows to a shared tail group (qgemm.h): every tail size 1..15 (Q4 packs of 16 rows down to 4; the
// larger tails, and Q8_0's, in their own partial groups),
// matrices whose rows fill no whole number of packs, 1..13 tokens (token tiles of 6 and their remainders), a
// matrix with no full group, and the residual form.
TEST(CpuBackend, MatmulTailBlocksAgainstReference) {
  const CpuIsa isa = cpu_best_isa();
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1}) {
    for (int64_t nb : {1, 2, 3, 4, 5, 7, 8, 9, 17, 18, 19, 20, 21, 24, 25, 30, 31})
      for (int n_tokens : {1, 2, 6, 7, 13}) check_matmul(t, nb == 18 ? 45 : 37, 32 * nb, n_tokens, 2, isa);
    for (int64_t nb : {2, 18, 24})
      for (int n_out : {1, 5, 8, 9, 17})
        for (int threads : {1, 3}) check_matmul(t, n_out, 32 * nb, 3, threads, isa);
    for (int64_t nb : {18, 24, 31})
      for (int n_tokens : {1, 5, 13}) check_matmul(t, 37, 32 * nb, n_tokens, 2, isa, true);
  }
  // Q4_K: an odd number of super-blocks ends in a half group.
  for (int64_t n_in : {256, 768, 1280})
    for (int n_tokens : {1, 7, 13}) {
      check_matmul(DType::Q4_K, 37, n_in, n_tokens, 2, isa);
      check_matmul(DType::Q4_K, 37, n_in, n_tokens, 2, isa, true);
    }
}

// Rows with tails do not depend on the batch either: a token alone and the same token among 13, bit for bit,
// for tail sizes that share tail groups 16, 8, 5 and 4 at a time or none, and row counts that end in a short
// pack.
TEST(CpuBackend, MatmulTailRowsDoNotDependOnTheBatch) {
  Rng rng(78);
  for (CpuIsa isa : isas())
    for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4_K})
      for (int64_t nb : {17, 18, 19, 20, 21, 24, 25, 31}) {
        if (t == DType::Q4_K && nb != 24) continue;
        expect_batch_invariant(rng, isa, t, 32 * nb, 500 + static_cast<uint64_t>(t) + static_cast<uint64_t>(nb));
      }
}

// The packed layout straight: packing a matrix's rows in any pieces gives the same bytes, and the kernel over
// any range of rows (ranges that start or end inside a pack of rows sharing a tail group) gives each row
// the same result, bit for bit, as over all rows at once.
TEST(CpuBackend, QgemmRowRangesAndPackingPieces) {
  if (!cpu_supports_isa(CpuIsa::Avx512)) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  Rng rng(93);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4_K})
    for (int64_t nb : {3, 18, 19, 20, 24, 30}) {
      if (t == DType::Q4_K && nb % 8 != 0) continue;
      SCOPED_TRACE(testing::Message() << dtype_name(t) << " blocks " << nb);
      const int64_t n_rows = 29, n_in = 32 * nb;
      const int n_tokens = 8;
      Weights w = make_weights(t, n_rows, n_in, 700 + static_cast<uint64_t>(nb));
      const cpu::QgemmLayout lay = cpu::qgemm_layout(t, nb);
      const size_t bytes = static_cast<size_t>(lay.row_bytes * n_rows);
      if (t != DType::Q4_K) {
        EXPECT_EQ(bytes, w.bytes.size());  // the packed copy has the original's bytes
      }
      std::vector<uint8_t> whole(bytes, 0xAB), pieces(bytes, 0xCD);
      cpu::qgemm_pack_weights(t, w.bytes.data(), whole.data(), n_rows, 0, n_rows, nb);
      for (int64_t r0 = 0; r0 < n_rows; r0 += 3)
        cpu::qgemm_pack_weights(t, w.bytes.data(), pieces.data(), n_rows, r0, std::min(n_rows, r0 + 3), nb);
      EXPECT_EQ(0, std::memcmp(whole.data(), pieces.data(), bytes));
      std::vector<float> x = random_floats(rng, static_cast<size_t>(n_tokens * n_in), -2.0f, 2.0f);
      std::vector<cpu::XGroup> xg(static_cast<size_t>(n_tokens * lay.x_groups()));
      for (int tk = 0; tk < n_tokens; ++tk)
        cpu::qgemm_pack_x_avx512(t, x.data() + tk * n_in, xg.data() + tk * lay.x_groups(), nb);
      std::vector<float> all(static_cast<size_t>(n_tokens * n_rows)), part(all.size(), NAN);
      cpu::qgemm_avx512(t, whole.data(), lay, n_rows, 0, n_rows, xg.data(), lay.x_groups(), n_tokens,
                        all.data(), n_rows);
      for (int64_t r0 = 0; r0 < n_rows; r0 += 3)
        cpu::qgemm_avx512(t, whole.data(), lay, n_rows, r0, std::min(n_rows, r0 + 3), xg.data(),
                          lay.x_groups(), n_tokens, part.data(), n_rows);
      for (size_t i = 0; i < all.size(); ++i)
        ASSERT_EQ(all[i], part[i]) << "token " << i / n_rows << " row " << i % n_rows;
      for (int tk = 0; tk < n_tokens; ++tk)
        for (int64_t r = 0; r < n_rows; ++r) {
          const float* wr = w.f32.data() + r * n_in;
          const float* xt = x.data() + tk * n_in;
          double e = 0.0;
          for (int64_t i = 0; i < n_in; ++i) e += static_cast<double>(wr[i]) * xt[i];
          const float g = all[static_cast<size_t>(tk * n_rows + r)];
          ASSERT_LE(std::fabs(g - e), matmul_tol(t, CpuIsa::Avx512, wr, xt, n_in))
              << "token " << tk << " row " << r;
        }
    }
}

// The AVX-512 activation packing rounds exactly as the portable one (and so as quantize_row_q8x).
TEST(CpuBackend, PackedActivationsMatchThePortablePacking) {
  if (!cpu_supports_isa(CpuIsa::Avx512)) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  Rng rng(91);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4_K, DType::Q6_K})
    for (int64_t nb : {1, 3, 8, 16, 18, 19, 24, 25, 31, 40, 48}) {
      if ((t == DType::Q4_K || t == DType::Q6_K) && nb % 8 != 0) continue;
      std::vector<float> x = random_floats(rng, static_cast<size_t>(nb * 32), -3, 3);
      // Exact ties of x / d (x = 127 * k / 2 / 127 * max) and an all-zero block.
      x[0] = 3.0f, x[1] = 1.5f * 3.0f / 127.0f, x[2] = -2.5f * 3.0f / 127.0f;
      if (nb > 2) std::fill(x.begin() + 64, x.begin() + 96, 0.0f);
      const cpu::QgemmLayout lay = cpu::qgemm_layout(t, nb);
      std::vector<cpu::XGroup> ga(static_cast<size_t>(lay.x_groups() + 1)), gb(ga.size());
      std::memset(ga.data(), 0, ga.size() * sizeof(cpu::XGroup));
      std::memset(gb.data(), 0, gb.size() * sizeof(cpu::XGroup));
      cpu::qgemm_pack_x(t, x.data(), ga.data(), nb);
      cpu::qgemm_pack_x_avx512(t, x.data(), gb.data(), nb);
      EXPECT_EQ(std::memcmp(ga.data(), gb.data(), ga.size() * sizeof(cpu::XGroup)), 0) << dtype_name(t) << " " << nb;
    }
}

TEST(CpuBackend, MatmulThreadCounts) {
  // 1 thread, more threads than cores, and more threads than rows.
  for (int threads : {1, 3, 5})
    for (DType t : {DType::F32, DType::Q4_1}) check_matmul(t, 4, 64, 7, threads, cpu_best_isa());
  check_matmul(DType::Q8_0, 301, 128, 1, 3, cpu_best_isa());
}

TensorView f32_view(const std::vector<float>& v, std::vector<int64_t> shape) {
  TensorView t;
  t.name = "v";
  t.dtype = DType::F32;
  t.shape = std::move(shape);
  t.data = v.data();
  t.nbytes = v.size() * 4;
  return t;
}

TEST(CpuBackend, Embedding) {
  for (DType t : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_K}) {
    const int64_t dim = t == DType::Q4_K ? 256 : 64;
    Weights table = make_weights(t, 50, dim, 7);
    const std::vector<int> toks = {3, 0, 49, 3, 17};
    std::vector<float> ref(5 * dim), got(5 * dim);
    make_reference_backend()->embedding(table.view, toks.data(), 5, ref.data());
    make_cpu_backend(2)->embedding(table.view, toks.data(), 5, got.data());
    EXPECT_EQ(ref, got) << dtype_name(t);  // the same dequantization: exact
  }
}

TEST(CpuBackend, RmsNorm) {
  Rng rng(3);
  for (CpuIsa isa : isas())
    for (int64_t n : {67, 576})
      for (int n_tokens : {1, 7}) {
        std::vector<float> x = random_floats(rng, static_cast<size_t>(n * n_tokens), -3, 3);
        std::vector<float> w = random_floats(rng, static_cast<size_t>(n));
        std::vector<float> ref(x.size()), got(x.size());
        make_reference_backend()->rmsnorm(x.data(), f32_view(w, {n}), 1e-5f, n_tokens, ref.data());
        make_cpu_backend_isa(2, isa)->rmsnorm(x.data(), f32_view(w, {n}), 1e-5f, n_tokens, got.data());
        // The sum of squares is fp32 here (at most n * u relative error, halved by the square root) and
        // double in the reference; then two fp32 products: bound (n / 2 + 3) * u relative.
        for (size_t i = 0; i < ref.size(); ++i)
          ASSERT_NEAR(got[i], ref[i], (static_cast<double>(n) / 2 + 3) * FLT_EPSILON / 2 * std::fabs(ref[i]) + 1e-7)
              << cpu_isa_name(isa) << " i " << i;
      }
}

TEST(CpuBackend, RopeBothStylesIsExact) {
  Rng rng(4);
  const int n_heads = 3, head_dim = 16;
  std::vector<float> freqs(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i) freqs[i] = std::pow(10000.0f, -2.0f * i / head_dim);
  for (RopeStyle style : {RopeStyle::Adjacent, RopeStyle::HalfSplit})
    for (int n_tokens : {1, 7}) {
      std::vector<float> a = random_floats(rng, static_cast<size_t>(n_tokens * n_heads * head_dim)), b = a;
      make_reference_backend()->rope(a.data(), n_tokens, n_heads, head_dim, 5, freqs.data(), style);
      make_cpu_backend(2)->rope(b.data(), n_tokens, n_heads, head_dim, 5, freqs.data(), style);
      EXPECT_EQ(a, b);  // the same cos/sin (double angle) and the same fp32 rotation: bit-identical
    }
}

// A paged cache of one layer: blocks of 5 positions in reverse order, so that a position's block and row
// both matter.
TEST(CpuBackend, KvStoreMatchesReferenceBitForBit) {
  Rng rng(15);
  for (CpuIsa isa : isas())
    for (DType t : {DType::F32, DType::F16, DType::Q8_0}) {
      const int64_t kv_dim = 128;
      const int n_pos = 23;
      std::vector<float> k = random_floats(rng, static_cast<size_t>(n_pos * kv_dim), -3, 3);
      std::vector<float> v = random_floats(rng, k.size(), -3, 3);
      PagedKv a(t, kv_dim, n_pos), b(t, kv_dim, n_pos);
      // Stored in two calls (a prompt, then one more token) as the model does.
      make_reference_backend()->kv_store(a.view, 0, n_pos - 1, k.data(), v.data());
      make_reference_backend()->kv_store(a.view, n_pos - 1, 1, k.data() + (n_pos - 1) * kv_dim,
                                         v.data() + (n_pos - 1) * kv_dim);
      auto cpu = make_cpu_backend_isa(2, isa);
      cpu->kv_store(b.view, 0, n_pos - 1, k.data(), v.data());
      cpu->kv_store(b.view, n_pos - 1, 1, k.data() + (n_pos - 1) * kv_dim, v.data() + (n_pos - 1) * kv_dim);
      EXPECT_EQ(a.k, b.k) << cpu_isa_name(isa) << " " << dtype_name(t);
      EXPECT_EQ(a.v, b.v) << cpu_isa_name(isa) << " " << dtype_name(t);
    }
}

TEST(CpuBackend, AttentionGqaPagedEveryCacheType) {
  Rng rng(5);
  for (CpuIsa isa : isas())
    for (DType t : {DType::F32, DType::F16, DType::Q8_0})
      for (int n_tokens : {1, 7, 33, 70})
        for (int pos0 : {0, 11, 130}) {
          // head_dim 40 takes attention.cpp's own loop, 64 and 128 the fused AVX-512 kernel (where there is one).
          const int n_heads = 6, n_kv = 2, hd = t == DType::Q8_0 ? 64 : (n_tokens == 33 ? 128 : 40);
          const int n_pos = pos0 + n_tokens;
          std::vector<float> q = random_floats(rng, static_cast<size_t>(n_tokens * n_heads * hd));
          std::vector<float> k = random_floats(rng, static_cast<size_t>(n_pos * n_kv * hd));
          std::vector<float> v = random_floats(rng, static_cast<size_t>(n_pos * n_kv * hd));
          // Both backends read the same cache bytes (stored by the reference), so the comparison is of
          // attention alone.
          PagedKv kv(t, n_kv * hd, n_pos);
          make_reference_backend()->kv_store(kv.view, 0, n_pos, k.data(), v.data());
          std::vector<float> ref(q.size()), got(q.size());
          make_reference_backend()->attention(q.data(), kv.view, n_tokens, pos0, n_heads, n_kv, hd, ref.data());
          make_cpu_backend_isa(2, isa)->attention(q.data(), kv.view, n_tokens, pos0, n_heads, n_kv, hd, got.data());
          // fp32 scores (|s| <= hd / sqrt(hd) <= 8 here, error <= hd * u * 8 absolute, which exp turns into
          // the same relative error on each weight), fp32 sums over at most n_pos terms and the online
          // softmax's rescaling (a few more roundings per tile): each output, a convex combination of v
          // values in [-1, 1], moves by at most about (8 * hd + 2 * n_pos + 8 * tiles) * u.
          const double tol = (8.0 * hd + 2.0 * n_pos + 8.0 * (n_pos / 64 + 1) + 8) * FLT_EPSILON;
          for (size_t i = 0; i < ref.size(); ++i)
            ASSERT_NEAR(got[i], ref[i], tol) << cpu_isa_name(isa) << " " << dtype_name(t) << " tokens " << n_tokens
                                             << " pos0 " << pos0;
        }
}

TEST(CpuBackend, ElementwiseOps) {
  Rng rng(6);
  const int64_t n = 1001;
  auto ref = make_reference_backend();
  auto cpu = make_cpu_backend(2);
  std::vector<float> g = random_floats(rng, n, -8, 8), u = random_floats(rng, n);
  g[0] = -120, g[1] = 95, g[2] = 0, g[3] = -88, g[4] = 40;  // past exp's clamps, at 0 and in between
  for (CpuIsa isa : isas()) {
    std::vector<float> want = g, got = g;
    ref->swiglu(want.data(), u.data(), n);
    make_cpu_backend_isa(2, isa)->swiglu(got.data(), u.data(), n);
    // The scalar and AVX2 paths use the reference's formula; AVX-512 its own exp (within 2 ulp) and the
    // same divide and multiply: a few ulp of the result, plus an absolute 1e-30 where e^-g passes the clamp
    // and g / (1 + e^-g) is a denormal-sized value either way.
    for (int64_t i = 0; i < n; ++i)
      ASSERT_NEAR(got[i], want[i], 6 * FLT_EPSILON * std::fabs(want[i]) + 1e-30f)
          << cpu_isa_name(isa) << " g " << g[i] << " up " << u[i];
  }
  std::vector<float> x = random_floats(rng, n), x2 = x, y = random_floats(rng, n);
  ref->add(x.data(), y.data(), n);
  cpu->add(x2.data(), y.data(), n);
  EXPECT_EQ(x, x2);
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    Weights b = make_weights(t, 1, 77, 9);
    b.view.shape = {77};
    std::vector<float> a = random_floats(rng, 77 * 3), a2 = a;
    ref->add_bias(a.data(), b.view, 3);
    cpu->add_bias(a2.data(), b.view, 3);
    EXPECT_EQ(a, a2) << dtype_name(t);
  }
}

size_t resident_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// Repacking at load must not leave the process holding every weight twice: the mapped originals of the
// repacked tensors are handed back, and reading them afterwards still gives the file's bytes.
// At prepare the cpu backend repacks the integer GEMM's weights (Q8_0 here) and copies the float GEMM's (F16)
// into huge pages; either way the mapped originals are handed back, and they still read as the file's bytes.
TEST(CpuBackend, RepackingHandsTheMappedOriginalsBack) {
  if (!cpu_supports_isa(CpuIsa::Avx512)) GTEST_SKIP() << "repacking happens on AVX-512 VNNI only";
  for (DType type : {DType::Q8_0, DType::F16}) {
    SCOPED_TRACE(std::string(dtype_name(type)));
    const std::string path = tern_test::temp_dir() + "/repack_release_" + std::string(dtype_name(type)) + ".gguf";
    SynthOptions o;
    o.shape = "stories15M";
    o.type = type;
    ASSERT_TRUE(synth_model(o, path).ok());
    auto m = load_model_file(path);
    ASSERT_TRUE(m.ok()) << m.message();
    const WeightStore& w = m.value()->weights;
    const TensorView* wq = w.find("blk.0.attn_q.weight");
    ASSERT_NE(wq, nullptr);
    const std::vector<uint8_t> before(static_cast<const uint8_t*>(wq->data),
                                      static_cast<const uint8_t*>(wq->data) + wq->nbytes);
    uint64_t touch = 0;  // every page of the file resident, as after loading
    for (const auto& [name, t] : w.all())
      for (size_t i = 0; i < t.nbytes; i += 1024) touch += static_cast<const uint8_t*>(t.data)[i];
    EXPECT_GT(touch, 0u);
    const size_t rss0 = resident_bytes();
    auto cpu = make_cpu_backend(2);
    ASSERT_TRUE(cpu->prepare(w).ok());
    const size_t packed = cpu->prepare_stats().bytes, rss1 = resident_bytes();
    ASSERT_GT(packed, size_t{4} << 20);
    // Without the release the process grows by the packed copies (as large as the originals).
    EXPECT_LT(rss1, rss0 + packed / 2) << "grew by " << (rss1 - rss0) << " bytes for " << packed << " packed";
    EXPECT_EQ(0, std::memcmp(before.data(), wq->data, before.size()));
  }
}

TEST(CpuBackend, MakeBackendByName) {
  auto c = make_backend("cpu", 2);
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_STREQ(c.value()->name(), "cpu");
  auto r = make_backend("reference", 0);
  ASSERT_TRUE(r.ok());
  EXPECT_STREQ(r.value()->name(), "reference");
  auto bad = make_backend("gpu9000", 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("gpu9000"), std::string::npos);
  EXPECT_NE(bad.message().find("cpu, reference"), std::string::npos);
}

}  // namespace
