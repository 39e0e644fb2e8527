// The batched engine (runtime/engine.h): batching never changes results (16+ concurrent greedy requests of
// mixed lengths, each token-identical to running it alone through generate()), prompt prefixes are shared
// through the paged KV cache, cancellation and refusals leave no blocks behind, a cancelled queued request
// ends without waiting for a slot.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "runtime/chat.h"
#include "runtime/engine.h"
#include "runtime/generate.h"
#include "runtime/loaded_model.h"
#include "test_util.h"

namespace {

using namespace tern;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

#define TERN_REQUIRE_SMOLLM(var)                                                              \
  std::string var = std::string(TERN_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"; \
  if (tern_test::read_file(var).empty()) {                                                     \
    if (tern_test::in_ci()) FAIL() << "missing " << var << " under CI=true";                   \
    GTEST_SKIP() << var << " not present (run scripts/setup.sh)";                              \
  }

// Collects one request's events.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::vector<int>> out;
  std::vector<FinishReason> finish;
  std::vector<int> cached;
  size_t done = 0;

  explicit Collector(size_t n) : out(n), finish(n), cached(n, 0) {}
  EngineCallback callback(size_t i) {
    return [this, i](const EngineEvent& ev) {
      std::lock_guard<std::mutex> lock(mu);
      if (ev.kind == EngineEvent::Token) {
        out[i].push_back(ev.token);
      } else {
        finish[i] = ev.finish;
        cached[i] = ev.cached_tokens;
        ++done;
        cv.notify_all();
      }
    };
  }
  void wait(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done >= n; });
  }
};

struct Loaded {
  LoadedModel lm;
  std::unique_ptr<Backend> be;
};

std::vector<int> greedy_alone(Loaded& L, const std::vector<int>& prompt, int max_tokens, const std::vector<int>& stop_ids) {
  auto model = LlamaModel::create(L.lm.file->config, L.lm.file->weights, *L.be, 512);
  EXPECT_TRUE(model.ok()) << model.message();
  GenerateOptions o;
  o.max_new_tokens = max_tokens;
  o.sampler.temperature = 0.0f;
  o.echo_prompt = false;
  o.stop_ids = stop_ids;
  std::vector<int> out;
  Status s = generate(*model.value(), *L.lm.tokenizer, prompt, o, [](const std::string&) {}, nullptr, &out);
  EXPECT_TRUE(s.ok()) << s.message();
  return out;
}

TEST(Engine, SixteenConcurrentGreedyRequestsMatchRunningAlone) {
  TERN_REQUIRE_SMOLLM(path);
  auto lm = open_model(path, "");
  ASSERT_TRUE(lm.ok()) << lm.message();
  auto be = make_backend("cpu", 0);
  ASSERT_TRUE(be.ok());
  Loaded L{std::move(lm.value()), std::move(be.value())};
  const Tokenizer& tok = *L.lm.tokenizer;
  auto tmpl = model_chat_template(L.lm);
  ASSERT_TRUE(tmpl.ok());
  const std::vector<int> stop_ids = chat_stop_ids(tok, *tmpl);

  // Mixed lengths: short and long prompts, raw text and chat (which all share the template's system prompt).
  const std::vector<std::string> texts = {
      "Hi", "The capital of France is", "Write a haiku about the sea.",
      "List three colours.", "Once upon a time, in a land far away, there lived a",
      "Explain in one sentence why the sky is blue, and then explain it again in simpler words for a child.",
      "1, 2, 3, 4,", "What is 2 + 2?", "Tell me a joke about computers.",
      "def fibonacci(n):", "The quick brown fox", "Name a famous painter.",
      "Summarise the plot of Hamlet in two sentences, mentioning Ophelia, Polonius, Claudius and Gertrude, and say "
      "how it ends for each of them.",
      "Translate 'good morning' into French.", "Why do cats purr?", "A", "Give me a recipe for pancakes.",
      "How many legs does a spider have?"};
  const int n_req = kSanitized ? 16 : static_cast<int>(texts.size());
  std::vector<EngineRequest> reqs;
  for (int i = 0; i < n_req; ++i) {
    EngineRequest r;
    if (i % 2 == 0) {
      auto text = render_chat(*tmpl, {{"user", texts[static_cast<size_t>(i)]}}, true);
      ASSERT_TRUE(text.ok());
      r.prompt = tok.encode(*text, false, false, true);
      r.stop_ids = stop_ids;
    } else {
      r.prompt = tok.encode(texts[static_cast<size_t>(i)], tok.add_bos_by_default());
      if (r.prompt.empty()) r.prompt.push_back(tok.bos_id());
    }
    r.max_tokens = (kSanitized ? 4 : 8) + (i * 7) % (kSanitized ? 6 : 29);
    r.sampler.temperature = 0.0f;
    reqs.push_back(r);
  }
  std::vector<std::vector<int>> alone;
  for (const auto& r : reqs) alone.push_back(greedy_alone(L, r.prompt, r.max_tokens, r.stop_ids));

  EngineOptions eo;
  eo.n_parallel = n_req;
  eo.n_ctx = 512;
  eo.prefill_chunk = 16;  // long prompts take several steps while others decode
  auto model = LlamaModel::create(L.lm.file->config, L.lm.file->weights, *L.be, 512, 64, engine_kv_options(eo, 512, {}));
  ASSERT_TRUE(model.ok()) << model.message();
  auto engine = Engine::create(*model.value(), tok.bos_id(), tok.eos_id(), eo);
  ASSERT_TRUE(engine.ok()) << engine.message();

  // Two waves: the first fills the prefix cache, the second shares the chat prompts' system-prompt blocks
  // (one wave under the sanitizers, which run the model about 50x slower).
  for (int wave = 0; wave < (kSanitized ? 1 : 2); ++wave) {
    Collector c(reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i) {
      SubmitError err;
      std::string msg;
      ASSERT_TRUE(engine.value()->submit(reqs[i], c.callback(i), &err, &msg)) << msg;
    }
    c.wait(reqs.size());
    int shared = 0;
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_EQ(c.out[i], alone[i]) << "wave " << wave << ", request " << i << " (prompt " << reqs[i].prompt.size()
                                    << " tokens, max_tokens " << reqs[i].max_tokens << ")";
      shared += c.cached[i];
    }
    if (wave == 1) {
      EXPECT_GT(shared, 0) << "the second wave should reuse cached prompt blocks";
    }
  }
  ASSERT_TRUE(engine.value()->wait_idle(std::chrono::seconds(10)));
  const EngineStats st = engine.value()->stats();
  EXPECT_EQ(st.kv_blocks_in_use, 0);
  if (!kSanitized) {
    EXPECT_GT(st.cached_prompt_tokens, 0u);
  }
}

struct StoriesEngine {
  LoadedModel lm;
  std::unique_ptr<Backend> be;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<Engine> engine;
};

std::unique_ptr<StoriesEngine> stories_engine(const std::string& gguf, EngineOptions eo) {
  auto s = std::make_unique<StoriesEngine>();
  auto lm = open_model(gguf, "");
  if (!lm) return nullptr;
  s->lm = std::move(lm.value());
  s->be = std::move(make_backend("cpu", 1).value());
  const int n_ctx = eo.n_ctx;
  auto m = LlamaModel::create(s->lm.file->config, s->lm.file->weights, *s->be, n_ctx, 64, engine_kv_options(eo, n_ctx, {}));
  if (!m) return nullptr;
  s->model = std::move(m.value());
  auto e = Engine::create(*s->model, s->lm.tokenizer->bos_id(), s->lm.tokenizer->eos_id(), eo);
  if (!e) return nullptr;
  s->engine = std::move(e.value());
  return s;
}

TEST(Engine, CancelledAndFinishedRequestsLeaveNoBlocks) {
  TERN_REQUIRE_SHARED(gguf, "models/stories260K/stories260K.gguf");
  EngineOptions eo;
  eo.n_parallel = 4;
  eo.n_ctx = 256;
  auto s = stories_engine(gguf, eo);
  ASSERT_TRUE(s);
  const int n = 10;
  Collector c(n);
  std::vector<std::shared_ptr<EngineHandle>> handles;
  for (int i = 0; i < n; ++i) {
    EngineRequest r;
    r.prompt = {1, 100 + i, 200, 300};
    r.max_tokens = 200;
    r.stop_at_eos = false;
    r.sampler.temperature = 0.8f;
    r.sampler.seed = static_cast<uint64_t>(i);
    SubmitError err;
    std::string msg;
    auto h = s->engine->submit(r, c.callback(static_cast<size_t>(i)), &err, &msg);
    ASSERT_TRUE(h) << msg;
    handles.push_back(h);
  }
  for (int i = 0; i < n; i += 2) handles[static_cast<size_t>(i)]->cancel();
  c.wait(n);
  for (int i = 0; i < n; ++i) {
    if (i % 2 == 0) {
      EXPECT_EQ(c.finish[static_cast<size_t>(i)], FinishReason::Cancelled);
    } else {
      EXPECT_EQ(c.out[static_cast<size_t>(i)].size(), 200u);
    }
  }
  ASSERT_TRUE(s->engine->wait_idle(std::chrono::seconds(10)));
  EXPECT_EQ(s->engine->stats().kv_blocks_in_use, 0);
  s->engine->stop();
  EXPECT_EQ(s->model->cache().n_used(), 0) << "stop() gives the prefix cache's blocks back too";
}

// run_batch's report: every prompt generates max_tokens, and the decode-only steps (all 4 sequences past
// their prompts, greedy, no stop) are counted with their mean batch, which cannot exceed n_parallel.
TEST(Engine, RunBatchReportsTheDecodeStepsRate) {
  TERN_REQUIRE_SHARED(gguf, "models/stories260K/stories260K.gguf");
  EngineOptions eo;
  eo.n_parallel = 4;
  eo.n_ctx = 128;
  auto s = stories_engine(gguf, eo);
  ASSERT_TRUE(s);
  EngineRequest base;
  base.max_tokens = 40;
  base.stop_at_eos = false;
  base.sampler.temperature = 0.0f;
  std::vector<BatchItem> items(6);
  for (size_t i = 0; i < items.size(); ++i) items[i].prompt = {1, 50 + static_cast<int>(i), 60, 70};
  auto rep = run_batch(*s->engine, base, items);
  ASSERT_TRUE(rep.ok()) << rep.message();
  EXPECT_EQ(rep->generated_tokens, 6 * 40);
  EXPECT_GT(rep->decode_tok_s, 0.0);
  EXPECT_GE(rep->decode_mean_batch, 1.0);
  EXPECT_LE(rep->decode_mean_batch, 4.0);
  // Two waves of requests (4, then 2): most decode steps carry 4 sequences, the second wave's 2.
  EXPECT_GT(rep->decode_mean_batch, 2.0);
  s->engine->stop();
}

TEST(Engine, CancellingAQueuedRequestEndsItWhileTheRunningOneGoesOn) {
  TERN_REQUIRE_SHARED(gguf, "models/stories260K/stories260K.gguf");
  EngineOptions eo;
  eo.n_parallel = 1;
  eo.n_ctx = 256;
  auto s = stories_engine(gguf, eo);
  ASSERT_TRUE(s);
  std::mutex mu;
  std::condition_variable cv;
  bool queued_cancelled = false, running_done = false, queued_done = false;
  int running_tokens = 0, running_tokens_at_queued_done = -1;
  FinishReason queued_finish = FinishReason::Stop;
  EngineRequest r;
  r.prompt = {1, 2, 3};
  r.max_tokens = 200;
  r.stop_at_eos = false;
  SubmitError err;
  std::string msg;
  // The running request holds the engine at its first token until the other is cancelled, so that one is
  // certainly still waiting for the only slot then.
  auto running = s->engine->submit(
      r,
      [&](const EngineEvent& ev) {
        std::unique_lock<std::mutex> lock(mu);
        if (ev.kind == EngineEvent::Done) {
          running_done = true;
          cv.notify_all();
        } else if (++running_tokens == 1) {
          cv.wait(lock, [&] { return queued_cancelled; });
        }
      },
      &err, &msg);
  ASSERT_TRUE(running) << msg;
  auto queued = s->engine->submit(
      r,
      [&](const EngineEvent& ev) {
        std::lock_guard<std::mutex> lock(mu);
        if (ev.kind != EngineEvent::Done) return;
        queued_done = true;
        queued_finish = ev.finish;
        running_tokens_at_queued_done = running_done ? -1 : running_tokens;
        cv.notify_all();
      },
      &err, &msg);
  ASSERT_TRUE(queued) << msg;
  {
    std::lock_guard<std::mutex> lock(mu);
    queued->cancel();
    queued_cancelled = true;
  }
  cv.notify_all();
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return running_done && queued_done; });
  }
  EXPECT_EQ(queued_finish, FinishReason::Cancelled);
  EXPECT_GE(running_tokens_at_queued_done, 0) << "the cancelled request should leave the queue before the slot frees";
  EXPECT_LT(running_tokens_at_queued_done, r.max_tokens);
  EXPECT_EQ(running_tokens, r.max_tokens);
  ASSERT_TRUE(s->engine->wait_idle(std::chrono::seconds(10)));
  EXPECT_EQ(s->engine->stats().kv_blocks_in_use, 0);
  EXPECT_EQ(s->engine->stats().queued, 0);
}

TEST(Engine, RefusesWhenTheQueueIsFullAndBadRequests) {
  TERN_REQUIRE_SHARED(gguf, "models/stories260K/stories260K.gguf");
  EngineOptions eo;
  eo.n_parallel = 1;
  eo.max_queue = 1;
  eo.n_ctx = 256;
  auto s = stories_engine(gguf, eo);
  ASSERT_TRUE(s);
  Collector c(3);
  EngineRequest r;
  r.prompt = {1, 2, 3};
  r.max_tokens = 200;
  r.stop_at_eos = false;
  SubmitError err;
  std::string msg;
  ASSERT_TRUE(s->engine->submit(r, c.callback(0), &err, &msg));
  ASSERT_TRUE(s->engine->submit(r, c.callback(1), &err, &msg));
  EXPECT_FALSE(s->engine->submit(r, c.callback(2), &err, &msg));
  EXPECT_EQ(err, SubmitError::QueueFull);
  EXPECT_NE(msg.find("too many requests"), std::string::npos) << msg;

  EngineRequest bad = r;
  bad.max_tokens = 254;
  EXPECT_FALSE(s->engine->submit(bad, c.callback(2), &err, &msg));
  EXPECT_EQ(err, SubmitError::Invalid);
  EXPECT_NE(msg.find("exceeds the context length 256"), std::string::npos) << msg;
  bad = r;
  bad.prompt = {1, 100000};
  EXPECT_FALSE(s->engine->submit(bad, c.callback(2), &err, &msg));
  EXPECT_NE(msg.find("outside the vocabulary"), std::string::npos) << msg;
  bad = r;
  bad.prompt.clear();
  EXPECT_FALSE(s->engine->submit(bad, c.callback(2), &err, &msg));
  EXPECT_NE(msg.find("empty"), std::string::npos) << msg;

  s->engine->begin_shutdown();
  EXPECT_FALSE(s->engine->submit(r, c.callback(2), &err, &msg));
  EXPECT_EQ(err, SubmitError::ShuttingDown);
  c.wait(2);
  EXPECT_TRUE(s->engine->wait_idle(std::chrono::seconds(10)));
  EXPECT_EQ(s->engine->stats().kv_blocks_in_use, 0);
}

TEST(Engine, SharedPrefixGivesTheSameTokensAsComputingIt) {
  TERN_REQUIRE_SHARED(gguf, "models/stories260K/stories260K.gguf");
  for (bool cache : {false, true}) {
    EngineOptions eo;
    eo.n_parallel = 3;
    eo.n_ctx = 256;
    eo.prefix_cache = cache;
    eo.prefill_chunk = 7;
    auto s = stories_engine(gguf, eo);
    ASSERT_TRUE(s);
    std::vector<int> prefix = {1};
    for (int i = 0; i < 40; ++i) prefix.push_back(50 + i * 3);
    std::vector<std::vector<int>> outs;
    for (int wave = 0; wave < 3; ++wave) {
      Collector c(1);
      EngineRequest r;
      r.prompt = prefix;
      r.prompt.push_back(7 + wave % 2);  // waves 0 and 2 are the same prompt
      r.max_tokens = 30;
      r.sampler.temperature = 0.0f;
      SubmitError err;
      std::string msg;
      ASSERT_TRUE(s->engine->submit(r, c.callback(0), &err, &msg)) << msg;
      c.wait(1);
      if (wave > 0) {
        EXPECT_EQ(c.cached[0], cache ? 32 : 0);
      }
      outs.push_back(c.out[0]);
    }
    EXPECT_EQ(outs[0], outs[2]);
  }
}

}  // namespace
