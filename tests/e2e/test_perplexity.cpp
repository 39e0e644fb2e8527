// tern perplexity: llama.cpp's scoring (chunks of ctx, second half scored); agreement with llama.cpp itself
// is checked by tests/reference/compare_llamacpp.py and recorded in docs/accuracy.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "backend/backend.h"
#include "runtime/loaded_model.h"
#include "runtime/perplexity.h"
#include "test_util.h"

namespace {

using namespace tern;

TEST(Perplexity, CountsAndOrdering) {
  TERN_REQUIRE_SHARED(bin, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(tok, "models/stories260K/tok512.bin");
  TERN_REQUIRE_SHARED(expected, "models/stories260K/expected-greedy-200.txt");
  auto lm = open_model(bin, tok);
  ASSERT_TRUE(lm.ok());
  auto be = make_reference_backend();
  auto model = LlamaModel::create(lm->file->config, lm->file->weights, *be, 64, 64);
  ASSERT_TRUE(model.ok());
  const std::vector<int> ids = lm->tokenizer->encode(tern_test::read_file(expected), true);
  auto r = perplexity(*model.value(), *lm->tokenizer, ids, 64);
  ASSERT_TRUE(r.ok()) << r.message();
  const int chunks = static_cast<int>(ids.size()) / 64;
  EXPECT_EQ(r->chunks, chunks);
  EXPECT_EQ(r->scored_tokens, chunks * (64 - 1 - 32));  // positions 32 .. 62 of each chunk
  EXPECT_NEAR(r->ppl, std::exp(r->nll_mean), 1e-9);
  // The model's own greedy text is far more predictable than the same tokens shuffled.
  std::vector<int> shuffled = ids;
  std::reverse(shuffled.begin() + 1, shuffled.end());
  auto s = perplexity(*model.value(), *lm->tokenizer, shuffled, 64);
  ASSERT_TRUE(s.ok());
  EXPECT_LT(r->ppl * 3, s->ppl);
  EXPECT_GT(r->ppl, 1.0);
}

TEST(Perplexity, BadInputGivesOneLineErrors) {
  TERN_REQUIRE_SHARED(bin, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(tok, "models/stories260K/tok512.bin");
  const std::string dir = tern_test::temp_dir();
  tern_test::write_file(dir + "/short.txt", "Once upon a time");
  auto r = tern_test::run_tern({"perplexity", "-m", bin, "-z", tok, "-f", dir + "/short.txt", "-c", "64"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("fewer than one chunk"), std::string::npos) << r.err;
  auto c = tern_test::run_tern({"perplexity", "-m", bin, "-z", tok, "-f", dir + "/short.txt", "-c", "2"});
  EXPECT_NE(c.err.find("--ctx"), std::string::npos) << c.err;
  auto big = tern_test::run_tern({"perplexity", "-m", bin, "-z", tok, "-f", dir + "/short.txt", "-c", "100000"});
  EXPECT_NE(big.err.find("exceeds"), std::string::npos) << big.err;
  auto nf = tern_test::run_tern({"perplexity", "-m", bin, "-z", tok});
  EXPECT_NE(nf.err.find("--file"), std::string::npos) << nf.err;
  for (const auto* x : {&r, &c, &big, &nf}) EXPECT_EQ(std::count(x->err.begin(), x->err.end(), '\n'), 1) << x->err;
}

}  // namespace
