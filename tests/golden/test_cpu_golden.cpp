// Whole-model checks of the CPU backend: stories260K greedy text equals llama2.c's golden output, and the
// logits of stories260K (F32) and of a Q8_0 quantization of it stay within stated tolerances of the
// reference backend's, at every position.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "runtime/generate.h"
#include "runtime/loaded_model.h"
#include "test_util.h"

namespace {

using namespace tern;

std::string generate_greedy_cpu(const std::string& model, int n, int threads) {
  auto lm = open_model(model, "");
  EXPECT_TRUE(lm.ok()) << lm.message();
  if (!lm) return "";
  auto backend = make_cpu_backend(threads);
  auto m = LlamaModel::create(lm->file->config, lm->file->weights, *backend, 512);
  EXPECT_TRUE(m.ok()) << m.message();
  if (!m) return "";
  GenerateOptions opts;
  opts.max_new_tokens = n;
  opts.sampler.temperature = 0.0f;
  std::string text;
  GenerateStats st;
  Status s = generate(*m.value(), *lm->tokenizer, lm->tokenizer->encode("", true), opts,
                      [&](const std::string& piece) { text += piece; }, &st);
  EXPECT_TRUE(s.ok()) << s.message();
  return text;
}

TEST(CpuGolden, StoriesGreedy200) {
  TERN_REQUIRE_SHARED(gguf, "models/stories260K/stories260K.gguf");
  TERN_REQUIRE_SHARED(expected, "models/stories260K/expected-greedy-200.txt");
  for (int threads : {1, 2}) EXPECT_EQ(generate_greedy_cpu(gguf, 200, threads), tern_test::read_file(expected));
}

TEST(CpuGolden, CliBackendFlag) {
  TERN_REQUIRE_SHARED(gguf, "models/stories260K/stories260K.gguf");
  TERN_REQUIRE_SHARED(expected, "models/stories260K/expected-greedy-200.txt");
  for (const char* be : {"cpu", "reference"}) {
    auto r = tern_test::run_tern({"run", "-m", gguf, "--temp", "0", "-n", "200", "--backend", be, "-t", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, tern_test::read_file(expected) + "\n") << be;
  }
  auto bad = tern_test::run_tern({"run", "-m", gguf, "-n", "1", "--backend", "tpu"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("unknown backend 'tpu'"), std::string::npos) << bad.err;
}

struct LogitStats {
  double max_abs_diff = 0, max_abs_ref = 0, rms_diff = 0, rms_ref = 0;
  int argmax_agree = 0, positions = 0;
};

// Logits of the first n_pos tokens of the golden text under both backends, one position per forward call,
// plus a prefill pass on the CPU backend checked against its own decode: exactly when `prefill_exact`, else
// within prefill_tol (absolute).
LogitStats compare_logits(const std::string& model_path, int n_pos, bool prefill_exact, double prefill_tol = 0) {
  LogitStats st;
  auto lm = open_model(model_path, "");
  EXPECT_TRUE(lm.ok()) << lm.message();
  if (!lm) return st;
  std::string text = tern_test::read_file(tern_test::shared_path("models/stories260K/expected-greedy-200.txt"));
  std::vector<int> ids = lm->tokenizer->encode(text, true);
  EXPECT_GE(static_cast<int>(ids.size()), n_pos);
  ids.resize(static_cast<size_t>(n_pos));
  auto ref_be = make_reference_backend();
  auto cpu_be = make_cpu_backend(2);
  const ModelConfig& c = lm->file->config;
  auto mr = LlamaModel::create(c, lm->file->weights, *ref_be, n_pos);
  auto mc = LlamaModel::create(c, lm->file->weights, *cpu_be, n_pos);
  auto mp = LlamaModel::create(c, lm->file->weights, *cpu_be, n_pos, /*max_batch=*/16);
  EXPECT_TRUE(mr.ok() && mc.ok() && mp.ok());
  if (!mr.ok() || !mc.ok() || !mp.ok()) return st;
  const int V = c.vocab_size;
  std::vector<float> lr(V), lc(V), lp(static_cast<size_t>(n_pos) * V);
  EXPECT_TRUE(mp.value()->forward(ids.data(), n_pos, 0, lp.data(), true).ok());
  double ss_diff = 0, ss_ref = 0;
  for (int pos = 0; pos < n_pos; ++pos) {
    EXPECT_TRUE(mr.value()->forward(&ids[pos], 1, pos, lr.data()).ok());
    EXPECT_TRUE(mc.value()->forward(&ids[pos], 1, pos, lc.data()).ok());
    int am_r = 0, am_c = 0;
    for (int i = 0; i < V; ++i) {
      const float pf = lp[static_cast<size_t>(pos) * V + i];
      if (prefill_exact) EXPECT_EQ(lc[i], pf) << "prefill, position " << pos << " token " << i;
      else EXPECT_NEAR(lc[i], pf, prefill_tol) << "prefill, position " << pos << " token " << i;
      const double d = std::fabs(static_cast<double>(lc[i]) - lr[i]);
      st.max_abs_diff = std::max(st.max_abs_diff, d);
      st.max_abs_ref = std::max(st.max_abs_ref, std::fabs(static_cast<double>(lr[i])));
      ss_diff += d * d;
      ss_ref += static_cast<double>(lr[i]) * lr[i];
      if (lr[i] > lr[am_r]) am_r = i;
      if (lc[i] > lc[am_c]) am_c = i;
    }
    st.argmax_agree += am_r == am_c;
    ++st.positions;
  }
  st.rms_diff = std::sqrt(ss_diff / (static_cast<double>(n_pos) * V));
  st.rms_ref = std::sqrt(ss_ref / (static_cast<double>(n_pos) * V));
  std::printf("  cpu vs reference logits: max abs %.3g (max |ref| %.3g), rms %.3g (rms ref %.3g), argmax %d/%d\n",
              st.max_abs_diff, st.max_abs_ref, st.rms_diff, st.rms_ref, st.argmax_agree, st.positions);
  return st;
}

TEST(CpuGolden, StoriesF32LogitsMatchReference) {
  TERN_REQUIRE_SHARED(gguf, "models/stories260K/stories260K.gguf");
  // Float weights: each (row, token) dot and each attention item is computed the same way whether tokens
  // come one at a time or sixteen per call, so prefill equals decode exactly.
  LogitStats st = compare_logits(gguf, 64, /*prefill_exact=*/true);
  // F32 weights: the backends differ only in fp32-vs-double summation order (dims 64..172 here), relative
  // error ~1e-6 per op; through 5 layers it stays orders of magnitude below 1e-4 of the logit scale.
  EXPECT_LE(st.max_abs_diff, 1e-4 * st.max_abs_ref) << "max |ref| " << st.max_abs_ref;
  EXPECT_EQ(st.argmax_agree, st.positions);
}

TEST(CpuGolden, StoriesQ8_0LogitsNearReference) {
  TERN_REQUIRE_SHARED(gguf, "models/stories260K/stories260K.gguf");
  const std::string q8 = tern_test::temp_dir() + "/cpu_golden_stories_q8_0.gguf";
  auto r = tern_test::run_tern({"quantize", gguf, q8, "Q8_0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Prefill takes the four-token kernels on AVX-512: the same int8 products, summed in another fp32 order
  // (error ~ n * u relative per dot, n <= 172, ~1e-5 relative): 3e-3 is 1e-4 of the largest logit (~22)
  // with room to spare, and far below the int8 effects bounded next.
  LogitStats st = compare_logits(q8, 64, /*prefill_exact=*/false, 3e-3);
  // The CPU backend also rounds activations to int8 (per block of 32, step max|x| / 127): a relative error
  // of about 1 / (127 * sqrt(3)) ~ 0.5% rms per matmul input. Seven matmuls per layer, five layers, and the
  // errors are independent, so the logits move by a few percent of their rms at most; 5% is the bound.
  EXPECT_LE(st.rms_diff, 0.05 * st.rms_ref) << "rms diff " << st.rms_diff << " rms ref " << st.rms_ref;
  EXPECT_GE(st.argmax_agree, st.positions * 9 / 10) << "greedy choice changed at too many positions";
}

}  // namespace

namespace {

// Logits of the first n positions of the stories260K golden text, prefilled through a KV cache of type t
// on the cpu backend.
std::vector<float> stories_logits_with_kv(DType t, int n) {
  auto lm = open_model(tern_test::shared_path("models/stories260K/stories260K.gguf"), "");
  EXPECT_TRUE(lm.ok()) << lm.message();
  if (!lm) return {};
  std::vector<int> ids = lm->tokenizer->encode(
      tern_test::read_file(tern_test::shared_path("models/stories260K/expected-greedy-200.txt")), true);
  ids.resize(static_cast<size_t>(n));
  auto be = make_cpu_backend(2);
  KvOptions kv;
  kv.dtype = t;
  kv.block_size = 7;  // blocks that positions cross, as the server's paged cache has
  auto m = LlamaModel::create(lm->file->config, lm->file->weights, *be, n, 16, kv);
  EXPECT_TRUE(m.ok()) << m.message();
  if (!m) return {};
  std::vector<float> out(static_cast<size_t>(n) * lm->file->config.vocab_size);
  EXPECT_TRUE(m.value()->forward(ids.data(), n, 0, out.data(), true).ok());
  return out;
}

}  // namespace

// An f16 KV cache rounds each key and value to 11 significant bits (relative error at most 2^-12): the
// logits move far less than they differ between tokens. Bound: 1% of the largest logit; measured 0.018 of
// 22 (0.08%) on 2026-11-21. The difference must not be 0 either: then the cache type was ignored.
TEST(CpuGolden, StoriesF16KvCacheTracksF32) {
  TERN_REQUIRE_SHARED(model, "models/stories260K/stories260K.gguf");
  const int n = 64;
  const std::vector<float> a = stories_logits_with_kv(DType::F32, n), b = stories_logits_with_kv(DType::F16, n);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(a[i])));
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(a[i]) - b[i]));
  }
  std::printf("f16 KV cache vs f32: max |logit diff| %.3g of max |logit| %.3g\n", max_diff, max_ref);
  EXPECT_GT(max_diff, 0.0) << "the f16 cache should round something";
  EXPECT_LE(max_diff, 0.01 * max_ref);
}
