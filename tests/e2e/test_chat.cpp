// Chat: the multi-turn session keeps the KV cache between turns, and reusing it changes nothing; the CLI
// runs the default model (SmolLM2-135M-Instruct, fetched by scripts/setup.sh) with its ChatML template.
#include <gtest/gtest.h>

#include "backend/backend.h"
#include "runtime/chat.h"
#include "runtime/loaded_model.h"
#include "test_util.h"

namespace {

using namespace tern;

// The default model lives in models/ after scripts/setup.sh; like ../shared files it must exist under CI.
#define TERN_REQUIRE_SMOLLM(var)                                                              \
  std::string var = std::string(TERN_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"; \
  if (tern_test::read_file(var).empty()) {                                                     \
    if (tern_test::in_ci()) FAIL() << "missing " << var << " under CI=true";                   \
    GTEST_SKIP() << var << " not present (run scripts/setup.sh)";                              \
  }

TEST(Chat, SecondTurnReusesTheCacheAndMatchesAFreshRun) {
  TERN_REQUIRE_SMOLLM(path);
  auto lm = open_model(path, "");
  ASSERT_TRUE(lm.ok()) << lm.message();
  auto tmpl = model_chat_template(*lm);
  ASSERT_TRUE(tmpl.ok()) << tmpl.message();
  EXPECT_EQ(tmpl->format, ChatFormat::ChatML);
  auto be = make_reference_backend();
  auto model = LlamaModel::create(lm->file->config, lm->file->weights, *be, 256);
  ASSERT_TRUE(model.ok());
  GenerateOptions opts;
  opts.max_new_tokens = 5;
  opts.sampler.temperature = 0.0f;

  ChatSession chat(*model.value(), *lm->tokenizer, *tmpl, "");
  std::string r1, r2;
  GenerateStats s1, s2;
  ASSERT_TRUE(chat.reply("Name a colour.", opts, [&](const std::string& p) { r1 += p; }, &s1).ok());
  EXPECT_EQ(s1.prompt_tokens, static_cast<int>(chat.last_prompt().size()));  // first turn: all prefilled
  ASSERT_TRUE(chat.reply("Another one?", opts, [&](const std::string& p) { r2 += p; }, &s2).ok());
  // Second turn: only what follows the cached conversation is prefilled.
  EXPECT_LT(s2.prompt_tokens, static_cast<int>(chat.last_prompt().size()) / 2);
  ASSERT_EQ(chat.messages().size(), 4u);
  EXPECT_EQ(chat.messages()[1].content, r1);

  // The same second-turn prompt on an empty cache gives the same reply: cache reuse changes nothing.
  auto fresh = LlamaModel::create(lm->file->config, lm->file->weights, *be, 256);
  ChatSession again(*fresh.value(), *lm->tokenizer, *tmpl, "");
  std::vector<ChatMessage> hist = {{"user", "Name a colour."}, {"assistant", r1}, {"user", "Another one?"}};
  auto text = render_chat(*tmpl, hist, true);
  std::vector<int> ids = lm->tokenizer->encode(*text, false, false, true);
  EXPECT_EQ(ids, chat.last_prompt());
  std::string r3;
  GenerateOptions o3 = opts;
  o3.echo_prompt = false;
  o3.stop_ids = chat_stop_ids(*lm->tokenizer, *tmpl);
  ASSERT_TRUE(generate(*fresh.value(), *lm->tokenizer, ids, o3, [&](const std::string& p) { r3 += p; }, nullptr).ok());
  EXPECT_EQ(r2, r3);

  chat.reset();
  EXPECT_TRUE(chat.messages().empty());
}

TEST(Chat, DefaultModelCompletesAsLlamaCppDoes) {
  TERN_REQUIRE_SMOLLM(path);
  // llama.cpp (llama-cpp-python 0.3.x) greedy on this file and prompt continues with " Paris." as well.
  auto r = tern_test::run_tern({"run", "-p", "The capital of France is", "-n", "2", "--temp", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "The capital of France is Paris.\n");
}

// The decode rate counts forward passes: with -n 1 the one token comes from the prefill and there is none.
TEST(Chat, RunReportsDecodeStepsNotTokens) {
  TERN_REQUIRE_SMOLLM(path);
  auto one = tern_test::run_tern({"run", "-p", "The capital of France is", "-n", "1", "--temp", "0"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_NE(one.err.find("generated tokens: 1"), std::string::npos) << one.err;
  EXPECT_NE(one.err.find("decode: none (the only generated token comes from the prefill)"), std::string::npos) << one.err;
  auto three = tern_test::run_tern({"run", "-p", "The capital of France is", "-n", "3", "--temp", "0"});
  ASSERT_EQ(three.exit_code, 0) << three.err;
  EXPECT_NE(three.err.find(" ms per token)"), std::string::npos) << three.err;
}

TEST(Chat, CliChatRunsTurnsFromStdin) {
  TERN_REQUIRE_SMOLLM(path);
  auto r = tern_test::run_tern({"chat", "--temp", "0", "-n", "4", "-q"}, "Hello\n/reset\nHi\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Two replies (the /reset line produces none), each ended by a newline.
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST(Chat, BadTemplateAndFlagsGiveOneLineErrors) {
  TERN_REQUIRE_SMOLLM(path);
  auto r = tern_test::run_tern({"chat", "--template", "vicuna"}, "");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--template"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  auto s = tern_test::run_tern({"run", "-p", "x", "--system", "be brief"});
  EXPECT_NE(s.exit_code, 0);
  EXPECT_NE(s.err.find("--chat"), std::string::npos) << s.err;
  auto n = tern_test::run_tern({"chat", "-n", "0"}, "");
  EXPECT_NE(n.exit_code, 0);
  EXPECT_NE(n.err.find("--n-predict"), std::string::npos) << n.err;
}

TEST(Chat, LlamaTwoCheckpointHasNoTemplate) {
  TERN_REQUIRE_SHARED(bin, "models/stories260K/stories260K.bin");
  TERN_REQUIRE_SHARED(tok, "models/stories260K/tok512.bin");
  auto r = tern_test::run_tern({"run", "-m", bin, "-z", tok, "--chat", "-p", "hi"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--template"), std::string::npos) << r.err;
}

}  // namespace
