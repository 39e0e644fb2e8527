// server/openai_api: request checks name the parameter; streamed text holds back stop-string prefixes and
// split UTF-8 characters.
#include <gtest/gtest.h>

#include "server/openai_api.h"

namespace {

using namespace tern::server;

TEST(OpenAiApi, StopStringsAreCutAndTheirPrefixesHeldBack) {
  TextStreamer s({"END"});
  EXPECT_EQ(s.feed("hello E"), "hello ");
  EXPECT_EQ(s.feed("N"), "");
  EXPECT_EQ(s.feed("D and more"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.flush(), "");
  TextStreamer t({"END"});
  EXPECT_EQ(t.feed("abc E"), "abc ");
  EXPECT_EQ(t.feed("x"), "Ex");
  EXPECT_EQ(t.flush(), "");
}

TEST(OpenAiApi, SplitUtf8CharactersWaitForTheirLastByte) {
  TextStreamer s({});
  const std::string euro = "\xE2\x82\xAC";
  EXPECT_EQ(s.feed("a" + euro.substr(0, 2)), "a");
  EXPECT_EQ(s.feed(euro.substr(2)), euro);
  EXPECT_EQ(utf8_complete_prefix("ab\xF0\x9F"), 2u);
}

TEST(OpenAiApi, BadRequestsNameTheParameter) {
  CompletionParams p;
  auto e = parse_completion_request(R"({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"})",
                                    Endpoint::Chat, 1, &p);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 400);
  EXPECT_EQ(e->param, "temperature");
  e = parse_completion_request(R"({"prompt": "x", "max_tokens": 0})", Endpoint::Completion, 1, &p);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "max_tokens");
  e = parse_completion_request("{", Endpoint::Completion, 1, &p);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "invalid_json");
  e = parse_completion_request(R"({"prompt": "x", "stop": ["a","b","c","d","e"]})", Endpoint::Completion, 1, &p);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "stop");
  CompletionParams ok;
  EXPECT_FALSE(parse_completion_request(R"({"prompt": [1, 2, 3], "seed": 7, "logprobs": 2, "stream": true})",
                                        Endpoint::Completion, 1, &ok));
  EXPECT_TRUE(ok.prompt_is_ids);
  EXPECT_EQ(ok.sampler.seed, 7u);
  EXPECT_EQ(ok.top_logprobs, 2);
  EXPECT_TRUE(ok.stream);
}

}  // namespace
