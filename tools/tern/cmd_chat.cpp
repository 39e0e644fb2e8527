// tern chat: an interactive multi-turn conversation on stdin/stdout.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "backend/backend.h"
#include "commands.h"
#include "common.h"
#include "runtime/chat.h"
#include "runtime/loaded_model.h"

namespace tern::cli {

int cmd_chat(const Args& a) {
  auto path = model_path(a);
  if (!path) return fail("chat", path.message());
  auto sp = sampler_params(a);
  if (!sp) return fail("chat", sp.message());
  const int64_t n_predict = a.integer("n-predict");
  if (n_predict < 1) return fail("chat", "--n-predict must be >= 1, got " + a.str("n-predict"));
  const int64_t ctx_flag = a.integer("ctx");
  if (ctx_flag < 0) return fail("chat", "--ctx must be >= 0, got " + a.str("ctx"));

  auto lm = open_model(*path, a.str("tokenizer"));
  if (!lm) return fail("chat", lm.message());
  auto tmpl = a.has("template") ? chat_template_by_name(a.str("template")) : model_chat_template(*lm);
  if (!tmpl) return fail("chat", tmpl.message());
  const ModelConfig& cfg = lm->file->config;
  const int n_ctx = ctx_flag == 0 ? std::min(cfg.max_seq_len, 4096) : static_cast<int>(ctx_flag);
  if (n_ctx > cfg.max_seq_len)
    return fail("chat", "--ctx " + std::to_string(n_ctx) + " exceeds the model's context length " +
                            std::to_string(cfg.max_seq_len));
  auto backend = backend_from_flags(a);
  if (!backend) return fail("chat", backend.message());
  auto kv = kv_options(a);
  if (!kv) return fail("chat", kv.message());
  auto model = LlamaModel::create(cfg, lm->file->weights, *backend.value(), n_ctx, 256, kv.value());
  if (!model) return fail("chat", model.message());

  ChatSession chat(*model.value(), *lm->tokenizer, *tmpl, a.str("system"));
  GenerateOptions opts;
  opts.max_new_tokens = static_cast<int>(n_predict);
  opts.sampler = *sp;
  const bool quiet = a.flag("quiet");
  if (!quiet)
    std::fprintf(stderr, "tern chat: %s (%s template). Type a message; /reset starts over, Ctrl-D quits.\n",
                 path->c_str(), chat_format_name(tmpl->format));
  std::string line;
  while (true) {
    if (!quiet) std::fputs("> ", stderr);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/reset") {
      chat.reset();
      if (!quiet) std::fputs("(conversation reset)\n", stderr);
      continue;
    }
    GenerateStats st;
    Status s = chat.reply(line, opts,
                          [](const std::string& piece) {
                            std::fwrite(piece.data(), 1, piece.size(), stdout);
                            std::fflush(stdout);
                          },
                          &st);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (!s) {
      std::fprintf(stderr, "tern chat: %s\n", s.message().c_str());
      continue;
    }
    if (!quiet)
      std::fprintf(stderr, "[%d prompt tokens prefilled, %d generated, %.1f tok/s]\n", st.prompt_tokens,
                   st.generated_tokens, st.decode_steps > 0 ? st.decode_steps / st.decode_seconds : 0.0);
  }
  if (!quiet) std::fputc('\n', stderr);
  return 0;
}

}  // namespace tern::cli
