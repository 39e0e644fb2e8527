// stories260K golden text: llama2.c's own test. Greedy decoding of 200 tokens from BOS must print exactly
// expected-greedy-200.txt (plus one newline from the CLI), from the llama2.c .bin and from the GGUF,
// through the library and through the `tern` binary.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/backend.h"
#include "runtime/generate.h"
#include "runtime/loaded_model.h"
#include "test_util.h"

namespace {

using namespace tern;

std::string generate_greedy(const std::string& model, const std::string& tokenizer, int n) {
  auto lm = open_model(model, tokenizer);
  EXPECT_TRUE(lm.ok()) << lm.message();
  if (!lm) return "";
  auto backend = make_reference_backend();
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
  EXPECT_EQ(st.generated_tokens, n);
  return text;
}

TEST(StoriesGolden, LibraryFromBin) {
  TERN_REQUIRE_SHARED(bin, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(tok, "models/stories260K/tok512.bin");
  TERN_REQUIRE_SHARED(expected, "models/stories260K/expected-greedy-200.txt");
  EXPECT_EQ(generate_greedy(bin, tok, 200), tern_test::read_file(expected));
}

TEST(StoriesGolden, LibraryFromGguf) {
  TERN_REQUIRE_SHARED(gguf, "models/stories260K/stories260K.gguf");
  TERN_REQUIRE_SHARED(expected, "models/stories260K/expected-greedy-200.txt");
  // The GGUF carries its own tokenizer in tokenizer.ggml.* metadata.
  EXPECT_EQ(generate_greedy(gguf, "", 200), tern_test::read_file(expected));
}

TEST(StoriesGolden, CliFromBin) {
  TERN_REQUIRE_SHARED(bin, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(tok, "models/stories260K/tok512.bin");
  TERN_REQUIRE_SHARED(expected, "models/stories260K/expected-greedy-200.txt");
  auto r = tern_test::run_tern({"run", "-m", bin, "-z", tok, "--temp", "0", "-n", "200"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, tern_test::read_file(expected) + "\n");
  EXPECT_NE(r.err.find("generated tokens: 200"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tok/s"), std::string::npos) << r.err;
}

TEST(StoriesGolden, CliFromGguf) {
  TERN_REQUIRE_SHARED(gguf, "models/stories260K/stories260K.gguf");
  TERN_REQUIRE_SHARED(expected, "models/stories260K/expected-greedy-200.txt");
  auto r = tern_test::run_tern({"run", "-m", gguf, "--temp", "0", "-n", "200"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, tern_test::read_file(expected) + "\n");
}

TEST(StoriesGolden, CliPromptIsEchoedThenContinued) {
  TERN_REQUIRE_SHARED(bin, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(tok, "models/stories260K/tok512.bin");
  TERN_REQUIRE_SHARED(expected, "models/stories260K/expected-greedy-200.txt");
  // Greedy decoding is a deterministic function of the prefix, so prompting with the golden text's first
  // words must continue with the golden text's next words.
  const std::string golden = tern_test::read_file(expected);
  auto r = tern_test::run_tern({"run", "-m", bin, "-z", tok, "--temp", "0", "-n", "20", "-p", "Once upon a time"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_GT(r.out.size(), 30u);
  EXPECT_EQ(r.out.substr(0, 16), "Once upon a time");
  const std::string body = r.out.substr(0, r.out.size() - 1);  // drop the final newline
  EXPECT_EQ(golden.substr(0, body.size()), body);
}

TEST(StoriesGolden, SameSeedSameText) {
  TERN_REQUIRE_SHARED(bin, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(tok, "models/stories260K/tok512.bin");
  std::vector<std::string> args = {"run", "-m", bin, "-z", tok, "--temp", "0.9", "--top-p", "0.9", "-n", "60"};
  auto with_seed = [&](const char* seed) {
    auto a = args;
    a.push_back("--seed");
    a.push_back(seed);
    return tern_test::run_tern(a);
  };
  auto a = with_seed("7"), b = with_seed("7"), c = with_seed("8");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
}

// The llama2.c checkpoint and the GGUF hold the same weights: identical logits at every position, and
// prefill (all tokens in one call) agrees with one-token-at-a-time decode.
TEST(StoriesGolden, BinAndGgufGiveIdenticalLogits) {
  TERN_REQUIRE_SHARED(bin, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(gguf, "models/stories260K/stories260K.gguf");
  TERN_REQUIRE_SHARED(tok, "models/stories260K/tok512.bin");
  TERN_REQUIRE_SHARED(expected, "models/stories260K/expected-greedy-200.txt");
  auto fb = load_model_file(bin);
  auto fg = load_model_file(gguf);
  ASSERT_TRUE(fb.ok()) << fb.message();
  ASSERT_TRUE(fg.ok()) << fg.message();
  auto t = load_tokenizer(tok);
  ASSERT_TRUE(t.ok()) << t.message();
  std::vector<int> ids = t.value()->encode(tern_test::read_file(expected), true);
  ASSERT_GE(ids.size(), 64u);
  ids.resize(64);
  auto backend = make_reference_backend();
  auto mb = LlamaModel::create(fb.value()->config, fb.value()->weights, *backend, 64);
  auto mg = LlamaModel::create(fg.value()->config, fg.value()->weights, *backend, 64);
  auto mp = LlamaModel::create(fg.value()->config, fg.value()->weights, *backend, 64, /*max_batch=*/16);
  ASSERT_TRUE(mb.ok() && mg.ok() && mp.ok());
  const int V = fb.value()->config.vocab_size;
  std::vector<float> lb(V), lg(V), lp(static_cast<size_t>(64) * V);
  // Prefill in chunks of 16 (max_batch) with logits for every position.
  ASSERT_TRUE(mp.value()->forward(ids.data(), 64, 0, lp.data(), true).ok());
  for (int pos = 0; pos < 64; ++pos) {
    ASSERT_TRUE(mb.value()->forward(&ids[pos], 1, pos, lb.data()).ok());
    ASSERT_TRUE(mg.value()->forward(&ids[pos], 1, pos, lg.data()).ok());
    for (int i = 0; i < V; ++i) {
      ASSERT_EQ(lb[i], lg[i]) << "position " << pos << " token " << i;
      // Prefill reorders nothing in the reference backend's loops, so it is bit-identical too.
      ASSERT_EQ(lb[i], lp[static_cast<size_t>(pos) * V + i]) << "prefill, position " << pos << " token " << i;
    }
  }
}

}  // namespace
