// Chat templates: detection from real models' Jinja templates and the exact text each format renders.
// (Token-level checks, which need the model's tokenizer, are in test_chat_tokens.cpp.)
#include <gtest/gtest.h>

#include "test_util.h"
#include "tokenizer/chat_template.h"

namespace {

using namespace tern;

// The value of "chat_template" in a tokenizer_config.json, read without a JSON library: the tests only
// need to find the family markers, which survive JSON escaping unchanged.
std::string raw_config(const std::string& path) { return tern_test::read_file(path); }

TEST(ChatTemplate, DetectsFamiliesFromRealTemplates) {
  TERN_REQUIRE_SHARED(l3, "models/llama3-tokenizer/tokenizer_config.json");
  TERN_REQUIRE_SHARED(qw, "models/qwen2-tokenizer/tokenizer_config.json");
  TERN_REQUIRE_SHARED(mi, "models/mistral-v0.3/tokenizer_config.json");
  EXPECT_EQ(chat_template_from_jinja(raw_config(l3))->format, ChatFormat::Llama3);
  EXPECT_EQ(chat_template_from_jinja(raw_config(qw))->format, ChatFormat::ChatML);
  EXPECT_EQ(chat_template_from_jinja(raw_config(mi))->format, ChatFormat::Mistral);
}

TEST(ChatTemplate, UnknownTemplateNamesTheFlag) {
  auto t = chat_template_from_jinja("{% for m in messages %}{{ m.content }}{% endfor %}");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.message().find("--template"), std::string::npos) << t.message();
  auto n = chat_template_by_name("vicuna");
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.message().find("--template"), std::string::npos);
  EXPECT_NE(n.message().find("chatml"), std::string::npos);
}

TEST(ChatTemplate, ChatMLWithDefaultSystemFromTemplate) {
  // SmolLM2-135M-Instruct's template (from its GGUF), as the Jinja source reads.
  const std::string smol =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
      "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
      "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
  auto t = chat_template_from_jinja(smol);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->default_system, "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  auto s = render_chat(*t, {{"user", "Hi"}}, true);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  // An explicit system message replaces the default.
  auto s2 = render_chat(*t, {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}}, false);
  EXPECT_EQ(*s2, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                 "<|im_start|>assistant\nHello!<|im_end|>\n");
}

TEST(ChatTemplate, Llama3) {
  auto t = chat_template_by_name("llama3");
  ASSERT_TRUE(t.ok());
  auto s = render_chat(*t, {{"system", "S"}, {"user", " Hi there \n"}}, true);
  EXPECT_EQ(*s,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(end_of_turn(*t), "<|eot_id|>");
}

TEST(ChatTemplate, Llama2) {
  auto t = chat_template_by_name("llama2");
  auto s = render_chat(*t, {{"system", "Sys"}, {"user", "A"}, {"assistant", "B"}, {"user", "C"}}, true);
  EXPECT_EQ(*s, "<s>[INST] <<SYS>>\nSys\n<</SYS>>\n\nA [/INST] B </s><s>[INST] C [/INST]");
}

TEST(ChatTemplate, Mistral) {
  auto t = chat_template_by_name("mistral");
  // The system prompt goes with the last user message (Mistral v0.3's template).
  auto s = render_chat(*t, {{"system", "Sys"}, {"user", "A"}, {"assistant", " B "}, {"user", "C"}}, true);
  EXPECT_EQ(*s, "<s>[INST] A[/INST] B</s>[INST] Sys\n\nC[/INST]");
}

TEST(ChatTemplate, RejectsBadRoles) {
  auto t = chat_template_by_name("chatml");
  EXPECT_FALSE(render_chat(*t, {{"user", "a"}, {"system", "late"}}, true).ok());
  auto r = render_chat(*t, {{"tool", "x"}}, true);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("tool"), std::string::npos);
}

}  // namespace
