// tern serve (the OpenAI-compatible server) and tern run --batch-file (offline batches): both load the
// model once and hand it to the batched engine (runtime/engine.h); the server itself is src/server/.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "backend/backend.h"
#include "commands.h"
#include "common.h"
#include "runtime/chat.h"
#include "runtime/engine.h"
#include "runtime/loaded_model.h"
#include "server/server.h"

namespace tern::cli {


namespace {

struct EngineSetup {
  LoadedModel lm;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<Engine> engine;
  std::optional<ChatTemplate> chat;
  std::vector<int> chat_stop_ids;
};

Result<std::unique_ptr<EngineSetup>> open_engine(const Args& a, EngineOptions eo, bool need_chat) {
  auto path = model_path(a);
  if (!path) return path.status();
  const int64_t ctx_flag = a.integer("ctx");
  if (ctx_flag < 0) return error("--ctx must be >= 0, got " + a.str("ctx"));
  auto s = std::make_unique<EngineSetup>();
  auto lm = open_model(*path, a.str("tokenizer"));
  if (!lm) return lm.status();
  s->lm = std::move(lm.value());
  const ModelConfig& cfg = s->lm.file->config;
  const int n_ctx = ctx_flag == 0 ? std::min(cfg.max_seq_len, 2048) : static_cast<int>(ctx_flag);
  if (n_ctx > cfg.max_seq_len)
    return error("--ctx " + std::to_string(n_ctx) + " exceeds the model's context length " + std::to_string(cfg.max_seq_len));
  if (a.has("template") || need_chat) {
    auto t = a.has("template") ? chat_template_by_name(a.str("template")) : model_chat_template(s->lm);
    if (t) {
      s->chat = t.value();
      s->chat_stop_ids = chat_stop_ids(*s->lm.tokenizer, *s->chat);
    } else if (a.has("template")) {
      return t.status();
    }
  }
  auto backend = backend_from_flags(a);
  if (!backend) return backend.status();
  s->backend = std::move(backend.value());
  auto kv = kv_options(a);
  if (!kv) return kv.status();
  eo.n_ctx = n_ctx;
  const int max_batch = std::max(64, eo.n_parallel + eo.prefill_chunk);
  auto model = LlamaModel::create(cfg, s->lm.file->weights, *s->backend, n_ctx, max_batch,
                                  engine_kv_options(eo, n_ctx, kv.value()));
  if (!model) return model.status();
  s->model = std::move(model.value());
  auto engine = Engine::create(*s->model, s->lm.tokenizer->bos_id(), s->lm.tokenizer->eos_id(), eo);
  if (!engine) return engine.status();
  s->engine = std::move(engine.value());
  return s;
}

Result<EngineOptions> engine_options(const Args& a) {
  EngineOptions eo;
  eo.n_parallel = static_cast<int>(a.integer("parallel"));
  if (eo.n_parallel < 1 || eo.n_parallel > 256) return error("--parallel must be in [1, 256], got " + a.str("parallel"));
  return eo;
}

}  // namespace

int cmd_serve(const Args& a) {
  // Before any thread exists, so that every thread inherits the mask and SIGTERM reaches the server's waiter.
  server::block_server_signals();
  auto eo = engine_options(a);
  if (!eo) return fail("serve", eo.message());
  eo->max_queue = static_cast<int>(a.integer("queue"));
  if (eo->max_queue < 0) return fail("serve", "--queue must be >= 0, got " + a.str("queue"));
  eo->prefill_chunk = static_cast<int>(a.integer("prefill-chunk"));
  if (eo->prefill_chunk < 1) return fail("serve", "--prefill-chunk must be >= 1, got " + a.str("prefill-chunk"));
  eo->prefix_cache = !a.flag("no-prefix-cache");
  server::ServerOptions so;
  so.host = a.str("host");
  const int64_t port = a.integer("port");
  if (port < 0 || port > 65535) return fail("serve", "--port must be in [0, 65535], got " + a.str("port"));
  so.port = static_cast<int>(port);
  so.api_key = a.str("api-key");
  const int64_t body = a.integer("max-body");
  if (body < 1024) return fail("serve", "--max-body must be >= 1024 bytes, got " + a.str("max-body"));
  so.max_body_bytes = static_cast<size_t>(body);

  auto s = open_engine(a, *eo, /*need_chat=*/true);
  if (!s) return fail("serve", s.message());
  EngineSetup& e = *s.value();
  so.model_id = std::filesystem::path(e.lm.file->path).filename().replace_extension().string();
  if (so.model_id.empty()) so.model_id = "tern";
  Status st = server::serve(so, *e.engine, *e.lm.tokenizer, e.chat ? &*e.chat : nullptr, e.chat_stop_ids);
  if (!st) return fail("serve", st.message());
  return 0;
}

int cmd_run_batch(const Args& a) {
  auto eo = engine_options(a);
  if (!eo) return fail("run", eo.message());
  eo->max_queue = 1 << 20;
  EngineRequest base;
  const int64_t n = a.integer("n-predict");
  if (n < 1) return fail("run", "--n-predict must be >= 1 with --batch-file, got " + a.str("n-predict"));
  base.max_tokens = static_cast<int>(n);
  auto sp = sampler_params(a);
  if (!sp) return fail("run", sp.message());
  base.sampler = *sp;
  if (a.has("prompt")) return fail("run", "--prompt and --batch-file exclude each other");

  std::ifstream in(a.str("batch-file"));
  if (!in) return fail("run", "--batch-file: cannot open " + a.str("batch-file"));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  if (lines.empty()) return fail("run", "--batch-file " + a.str("batch-file") + " holds no prompts (one per line)");

  const bool chat = a.flag("chat");
  auto s = open_engine(a, *eo, chat);
  if (!s) return fail("run", s.message());
  EngineSetup& e = *s.value();
  if (chat && !e.chat) return fail("run", "--chat: the model has no chat template; give --template");
  const Tokenizer& tok = *e.lm.tokenizer;
  base.stop_ids = e.chat_stop_ids;
  std::vector<BatchItem> items(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    if (chat) {
      std::vector<ChatMessage> msgs;
      if (a.has("system")) msgs.push_back({"system", a.str("system")});
      msgs.push_back({"user", lines[i]});
      auto text = render_chat(*e.chat, msgs, true);
      if (!text) return fail("run", text.message());
      items[i].prompt = tok.encode(*text, false, false, true);
    } else {
      items[i].prompt = tok.encode(lines[i], tok.add_bos_by_default());
    }
    const int64_t need = static_cast<int64_t>(items[i].prompt.size()) + base.max_tokens;
    if (need > e.engine->n_ctx())
      return fail("run", "prompt " + std::to_string(i + 1) + " has " + std::to_string(items[i].prompt.size()) +
                             " tokens; with --n-predict " + std::to_string(base.max_tokens) + " it exceeds the context length " +
                             std::to_string(e.engine->n_ctx()) + " (see --ctx)");
  }
  auto rep = run_batch(*e.engine, base, items);
  if (!rep) return fail("run", rep.message());
  for (size_t i = 0; i < items.size(); ++i) {
    std::string text = chat ? std::string() : lines[i];
    int prev = items[i].prompt.empty() ? -1 : items[i].prompt.back();
    for (int t : items[i].output) {
      text += printable_piece(tok.decode_piece(prev, t));
      prev = t;
    }
    std::printf("%s\n\n", text.c_str());
  }
  std::fflush(stdout);
  const BatchReport& r = *rep;
  std::fprintf(stderr,
               "batch: %zu prompts, %d parallel; prompt tokens: %d, generated tokens: %d in %.2f s\n"
               "aggregate: %.1f generated tok/s; TTFT mean %.1f ms, p50 %.1f ms, p99 %.1f ms; time per token %.2f ms\n"
               "decode: %.1f tok/s in the steps that only decoded (mean batch %.1f sequences)\n",
               items.size(), eo->n_parallel, r.prompt_tokens, r.generated_tokens, r.wall_s,
               r.wall_s > 0 ? r.generated_tokens / r.wall_s : 0.0, r.ttft_mean_s * 1e3, r.ttft_p50_s * 1e3, r.ttft_p99_s * 1e3,
               r.tpot_mean_s * 1e3, r.decode_tok_s, r.decode_mean_batch);
  return 0;
}

}  // namespace tern::cli
