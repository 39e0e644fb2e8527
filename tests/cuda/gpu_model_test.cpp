// Whole models on the GPU (ctest label `gpu`): the stories260K golden text, and SmolLM2's logits against
// the CPU backend. Skipped when no CUDA device is usable.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "runtime/generate.h"
#include "runtime/loaded_model.h"
#include "test_util.h"

namespace {

using namespace tern;

#define REQUIRE_DEVICE()                                   \
  do {                                                     \
    const Status dev_ = cuda_device_status();              \
    if (!dev_.ok()) GTEST_SKIP() << dev_.message();        \
  } while (0)

std::string generate_greedy_cuda(const std::string& model, const std::string& tokenizer, int n, CudaMatmul mm,
                                 DType kv_type, int max_batch) {
  auto lm = open_model(model, tokenizer);
  EXPECT_TRUE(lm.ok()) << lm.message();
  if (!lm) return "";
  CudaOptions o;
  o.matmul = mm;
  auto backend = make_cuda_backend(o);
  EXPECT_TRUE(backend.ok()) << backend.message();
  if (!backend) return "";
  KvOptions kv;
  kv.dtype = kv_type;
  auto m = LlamaModel::create(lm->file->config, lm->file->weights, *backend.value(), 512, max_batch, kv);
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

TEST(CudaModel, StoriesGoldenEveryKernel) {
  REQUIRE_DEVICE();
  TERN_REQUIRE_SHARED(bin, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(tok, "models/stories260K/tok512.bin");
  TERN_REQUIRE_SHARED(expected, "models/stories260K/expected-greedy-200.txt");
  const std::string want = tern_test::read_file(expected);
  for (CudaMatmul mm : {CudaMatmul::Naive, CudaMatmul::Warp, CudaMatmul::Fast, CudaMatmul::Cublas})
    EXPECT_EQ(generate_greedy_cuda(bin, tok, 200, mm, DType::F32, 64), want) << cuda_matmul_name(mm);
}

TEST(CudaModel, StoriesGoldenF16Cache) {
  REQUIRE_DEVICE();
  TERN_REQUIRE_SHARED(gguf, "models/stories260K/stories260K.gguf");
  TERN_REQUIRE_SHARED(expected, "models/stories260K/expected-greedy-200.txt");
  EXPECT_EQ(generate_greedy_cuda(gguf, "", 200, CudaMatmul::Fast, DType::F16, 64), tern_test::read_file(expected));
}

// Prompt logits of SmolLM2-135M (Q4_1) on the GPU and on the CPU. The CPU backend rounds activations to int8
// for quantized weights and the GPU's prefill GEMM rounds them to f16, so the two differ by a few hundredths
// on logits of magnitude ~10-20: compared with 0.15 absolute, and the argmax of each position must agree
// wherever the CPU's top two logits are more than 0.3 apart.
TEST(CudaModel, SmolLm2LogitsMatchCpu) {
  REQUIRE_DEVICE();
  std::string path = std::string(TERN_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present (scripts/setup.sh fetches it)";
  auto lm = open_model(path, "");
  ASSERT_TRUE(lm.ok()) << lm.message();
  const std::vector<int> ids = lm->tokenizer->encode("The capital of France is Paris, and the capital of Italy is", true);
  const int n = static_cast<int>(ids.size());
  const int V = lm->file->config.vocab_size;
  auto cpu = make_cpu_backend(0);
  auto gpu = make_cuda_backend();
  ASSERT_TRUE(gpu.ok()) << gpu.message();
  auto mc = LlamaModel::create(lm->file->config, lm->file->weights, *cpu, n + 8);
  auto mg = LlamaModel::create(lm->file->config, lm->file->weights, *gpu.value(), n + 8);
  ASSERT_TRUE(mc.ok() && mg.ok()) << mc.message() << mg.message();
  std::vector<float> lc(static_cast<size_t>(n) * V), lg(lc.size());
  ASSERT_TRUE(mc.value()->forward(ids.data(), n, 0, lc.data(), true).ok());
  ASSERT_TRUE(mg.value()->forward(ids.data(), n, 0, lg.data(), true).ok());
  for (int t = 0; t < n; ++t) {
    const float* c = lc.data() + static_cast<size_t>(t) * V;
    const float* g = lg.data() + static_cast<size_t>(t) * V;
    for (int i = 0; i < V; ++i) ASSERT_NEAR(g[i], c[i], 0.15f) << "position " << t << " token " << i;
  }
  // Then decode a few tokens one at a time (the matvec and split-K paths) and compare again.
  std::vector<float> c1(V), g1(V);
  int next = static_cast<int>(std::max_element(lc.end() - V, lc.end()) - (lc.end() - V));
  for (int step = 0; step < 4; ++step) {
    ASSERT_TRUE(mc.value()->forward(&next, 1, n + step, c1.data()).ok());
    ASSERT_TRUE(mg.value()->forward(&next, 1, n + step, g1.data()).ok());
    for (int i = 0; i < V; ++i) ASSERT_NEAR(g1[i], c1[i], 0.15f) << "decode step " << step << " token " << i;
    next = static_cast<int>(std::max_element(c1.begin(), c1.end()) - c1.begin());
  }
}

}  // namespace
