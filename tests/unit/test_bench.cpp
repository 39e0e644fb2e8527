// The library halves of `tern bench` and `tern synth`: the benchmark's accounting against perf/accounting.h,
// the synthetic shapes against the presets, every shape read back by the loader, Q6_K encoding.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "backend/backend.h"
#include "core/quant.h"
#include "core/rng.h"
#include "formats/model_file.h"
#include "formats/synth.h"
#include "perf/presets.h"
#include "runtime/bench.h"
#include "test_util.h"

using namespace tern;

namespace {

void expect_same_shape(const ModelConfig& got, const ModelConfig& want, const std::string& what) {
  EXPECT_EQ(got.dim, want.dim) << what;
  EXPECT_EQ(got.hidden_dim, want.hidden_dim) << what;
  EXPECT_EQ(got.n_layers, want.n_layers) << what;
  EXPECT_EQ(got.n_heads, want.n_heads) << what;
  EXPECT_EQ(got.n_kv_heads, want.n_kv_heads) << what;
  EXPECT_EQ(got.head_dim, want.head_dim) << what;
  EXPECT_EQ(got.vocab_size, want.vocab_size) << what;
  EXPECT_EQ(got.max_seq_len, want.max_seq_len) << what;
  EXPECT_FLOAT_EQ(got.rope_theta, want.rope_theta) << what;
  EXPECT_FLOAT_EQ(got.norm_eps, want.norm_eps) << what;
  EXPECT_EQ(got.tied_embeddings, want.tied_embeddings) << what;
}

}  // namespace

TEST(SynthLib, ShapesAreThePresets) {
  const char* keys[] = {"stories15M",   "stories110M", "smollm2-135m", "tinyllama-1.1b",
                        "llama-3.2-1b", "llama-2-7b",  "llama-3-8b",   "mistral-7b"};
  ASSERT_EQ(synth_shape_names().size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    auto c = synth_shape(synth_shape_names()[i]);
    ASSERT_TRUE(c.ok()) << c.message();
    auto p = perf::find_model_preset(keys[i]);
    ASSERT_TRUE(p.ok());
    expect_same_shape(c.value(), p->config, keys[i]);
    EXPECT_TRUE(synth_shape(keys[i]).ok()) << "preset keys are accepted too";
  }
  auto bad = synth_shape("llama-9000");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("TinyLlama-1.1B"), std::string::npos) << bad.message();
  EXPECT_FALSE(parse_synth_type("Q5_K").ok());
  EXPECT_EQ(parse_synth_type("q6_k").value(), DType::Q6_K);
}

TEST(SynthLib, FallbackTypes) {
  EXPECT_EQ(synth_matrix_type(DType::Q4_K, 2048), DType::Q4_K);
  EXPECT_EQ(synth_matrix_type(DType::Q4_K, 288), DType::Q8_0);  // stories15M: 288 = 9 x 32
  EXPECT_EQ(synth_matrix_type(DType::Q6_K, 576), DType::Q8_0);  // SmolLM2-135M
  EXPECT_EQ(synth_matrix_type(DType::Q4_0, 48), DType::F16);
}

// Q6_K as written here, read back by core/quant.h's (gguf-checked) dequantizer: each value within half a
// step of its sub-block, plus the rounding of the int8 sub-block scale.
TEST(SynthLib, Q6KRoundTrip) {
  const int64_t n = 2 * kQK_K;
  std::vector<float> x(n), y(n);
  Rng rng(7);
  for (int64_t i = 0; i < n; ++i) x[i] = (rng.uniform() - 0.5f) * (i < kQK_K ? 0.1f : 3.0f);
  x[5] = 0.4f;  // one outlier
  std::vector<uint8_t> q(row_bytes(DType::Q6_K, n));
  quantize_row_q6_k(x.data(), q.data(), n);
  dequantize_row(DType::Q6_K, q.data(), y.data(), n);
  for (int64_t s = 0; s < n / 16; ++s) {
    float amax = 0;
    for (int i = 0; i < 16; ++i) amax = std::max(amax, std::fabs(x[16 * s + i]));
    for (int i = 0; i < 16; ++i)
      EXPECT_NEAR(y[16 * s + i], x[16 * s + i], amax / 31.0f * 0.6f + 1e-3f * amax) << "element " << 16 * s + i;
  }
}

// Every shape with one layer, at Q4_0, reads back with the shape's exact configuration. The embedding dominates at one layer, so the shapes with more than 150M embedding values (Llama-2-7B,
// Llama-3-8B, Mistral-7B, Llama-3.2-1B: 13 s together) run only with TERN_SLOW_TESTS=1.
static void synth_shapes_read_back(bool big) {
  const std::string dir = tern_test::temp_dir();
  for (const std::string& name : synth_shape_names()) {
    auto want = synth_shape(name);
    ASSERT_TRUE(want.ok());
    const int64_t emb = int64_t{want->vocab_size} * want->dim * (want->tied_embeddings ? 1 : 2);
    if ((emb > 150'000'000) != big) continue;
    SynthOptions o;
    o.shape = name;
    o.type = DType::Q4_0;
    o.layers = 1;
    const std::string path = dir + "/synth_" + name + ".gguf";
    auto st = synth_model(o, path);
    ASSERT_TRUE(st.ok()) << name << ": " << st.message();
    auto m = load_model_file(path);
    ASSERT_TRUE(m.ok()) << name << ": " << m.message();
    ModelConfig expect = want.value();
    expect.n_layers = 1;
    expect_same_shape(m.value()->config, expect, name);
    EXPECT_EQ(m.value()->weights.find("blk.0.attn_q.weight")->dtype, DType::Q4_0) << name;
    std::filesystem::remove(path);
  }
}

TEST(SynthLib, EveryShapeReadsBack) { synth_shapes_read_back(false); }

TEST(SynthLib, BigShapesReadBack) {
  const char* slow = std::getenv("TERN_SLOW_TESTS");
  if (!slow || std::string(slow) != "1") GTEST_SKIP() << "set TERN_SLOW_TESTS=1 (about 15 s, 1.5 GB of disk)";
  synth_shapes_read_back(true);
}

TEST(SynthLib, DeterministicAcrossThreads) {
  const std::string dir = tern_test::temp_dir();
  SynthOptions o;
  o.shape = "stories15M";
  o.type = DType::Q6_K;  // falls back to Q8_0 for rows of 288, Q6_K for ffn_down's 768
  o.layers = 1;
  o.seed = 42;
  o.threads = 1;
  ASSERT_TRUE(synth_model(o, dir + "/det1.gguf").ok());
  o.threads = 3;
  auto st = synth_model(o, dir + "/det3.gguf");
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(st->fallbacks.empty());
  EXPECT_EQ(tern_test::read_file(dir + "/det1.gguf"), tern_test::read_file(dir + "/det3.gguf"));
  auto m = load_model_file(dir + "/det3.gguf");
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m.value()->weights.find("blk.0.ffn_down.weight")->dtype, DType::Q6_K);
  // The matrices look like N(0, 0.02).
  const TensorView* q = m.value()->weights.find("blk.0.ffn_down.weight");
  std::vector<float> row(static_cast<size_t>(q->cols()));
  double ss = 0;
  for (int64_t r = 0; r < q->rows(); ++r) {
    row_to_f32(q->dtype, q->row_ptr(r), row.data(), q->cols());
    for (float v : row) ss += double{v} * v;
  }
  EXPECT_NEAR(std::sqrt(ss / static_cast<double>(q->numel())), 0.02, 0.001);
  std::filesystem::remove(dir + "/det1.gguf");
  std::filesystem::remove(dir + "/det3.gguf");
}

TEST(BenchLib, Stories260KAccounting) {
  TERN_REQUIRE_SHARED(path, "models/stories260K/stories260K.gguf");
  auto backend = make_reference_backend();
  BenchOptions o;
  o.prompt = 16;
  o.output = 8;
  o.repetitions = 2;
  perf::Hardware hw;
  hw.mem_bandwidth = 10e9;
  hw.source = "test";
  o.hw = &hw;
  auto r = run_bench(path, *backend, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_GT(r->prefill_tok_s.mean, 0);
  EXPECT_GT(r->decode_tok_s.mean, 0);
  EXPECT_GE(r->prefill_tok_s.sd, 0);
  EXPECT_GE(r->decode_tok_s.sd, 0);
  EXPECT_GT(r->load_seconds, 0);
  EXPECT_GT(r->peak_rss_bytes, 0);
  // Bytes per token: perf::decode_bytes_per_token at each step's cache length, averaged.
  auto m = load_model_file(path);
  ASSERT_TRUE(m.ok());
  auto p = bench_precision(m.value()->config, m.value()->weights);
  ASSERT_TRUE(p.ok());
  double sum = 0;
  for (int i = 0; i < 8; ++i) sum += perf::decode_bytes_per_token(m.value()->config, p.value(), 16 + i);
  EXPECT_DOUBLE_EQ(r->decode_bytes_per_token, sum / 8);
  EXPECT_NEAR(r->decode_gb_s, r->decode_tok_s.mean * r->decode_bytes_per_token / 1e9, 1e-9);
  EXPECT_NEAR(r->roofline_pct, 100 * r->decode_gb_s / 10.0, 1e-9);
  EXPECT_GT(r->prefill_flops, 0);

  o.prompt = 2100;  // stories260K's context is 2048
  auto too_long = run_bench(path, *backend, o);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.message().find("exceeds the context length"), std::string::npos) << too_long.message();
}
