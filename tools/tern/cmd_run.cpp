// tern run: prompt in, streamed completion out (the llama2.c `run` experience).
#include <algorithm>
#include <cstdio>

#include "backend/backend.h"
#include "commands.h"
#include "common.h"
#include "runtime/chat.h"
#include "runtime/generate.h"
#include "runtime/loaded_model.h"

namespace tern::cli {


int cmd_run(const Args& a) {
  if (a.has("batch-file")) return cmd_run_batch(a);
  auto path = model_path(a);
  if (!path) return fail("run", path.message());
  GenerateOptions opts;
  opts.max_new_tokens = static_cast<int>(a.integer("n-predict"));
  if (opts.max_new_tokens < 0) return fail("run", "--n-predict must be >= 0, got " + a.str("n-predict"));
  auto sp = sampler_params(a);
  if (!sp) return fail("run", sp.message());
  opts.sampler = *sp;
  const int64_t ctx_flag = a.integer("ctx");
  if (ctx_flag < 0) return fail("run", "--ctx must be >= 0, got " + a.str("ctx"));
  const bool chat = a.flag("chat");
  if (!chat && (a.has("system") || a.has("template")))
    return fail("run", "--system and --template only apply with --chat");

  auto lm = open_model(*path, a.str("tokenizer"));
  if (!lm) return fail("run", lm.message());
  const ModelConfig& cfg = lm->file->config;
  int n_ctx = ctx_flag == 0 ? std::min(cfg.max_seq_len, 4096) : static_cast<int>(ctx_flag);
  if (n_ctx > cfg.max_seq_len)
    return fail("run", "--ctx " + std::to_string(n_ctx) + " exceeds the model's context length " +
                           std::to_string(cfg.max_seq_len));

  std::vector<int> prompt;
  std::vector<int> stop_ids;
  if (chat) {
    auto tmpl = a.has("template") ? chat_template_by_name(a.str("template")) : model_chat_template(*lm);
    if (!tmpl) return fail("run", tmpl.message());
    std::vector<ChatMessage> msgs;
    if (a.has("system")) msgs.push_back({"system", a.str("system")});
    msgs.push_back({"user", a.str("prompt")});
    auto text = render_chat(*tmpl, msgs, true);
    if (!text) return fail("run", text.message());
    prompt = lm->tokenizer->encode(*text, false, false, /*parse_special=*/true);
    stop_ids = chat_stop_ids(*lm->tokenizer, *tmpl);
    opts.echo_prompt = false;
  } else {
    prompt = lm->tokenizer->encode(a.str("prompt"), lm->tokenizer->add_bos_by_default());
    // A model that adds no BOS still needs one token to start from.
    if (prompt.empty() && lm->tokenizer->bos_id() >= 0) prompt.push_back(lm->tokenizer->bos_id());
  }
  if (prompt.empty()) return fail("run", "the prompt is empty and the tokenizer has no BOS token; give -p");
  if (static_cast<int>(prompt.size()) > n_ctx)
    return fail("run", "the prompt has " + std::to_string(prompt.size()) + " tokens, more than the context length " +
                           std::to_string(n_ctx) + " (see --ctx)");
  opts.stop_ids = stop_ids;

  auto backend = backend_from_flags(a);
  if (!backend) return fail("run", backend.message());
  auto kv = kv_options(a);
  if (!kv) return fail("run", kv.message());
  auto model = LlamaModel::create(cfg, lm->file->weights, *backend.value(), n_ctx, 256, kv.value());
  if (!model) return fail("run", model.message());

  GenerateStats st;
  Status s = generate(*model.value(), *lm->tokenizer, prompt, opts,
                      [](const std::string& piece) {
                        std::fwrite(piece.data(), 1, piece.size(), stdout);
                        std::fflush(stdout);
                      },
                      &st);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!s) return fail("run", s.message());

  const double prefill_tps = st.prefill_seconds > 0 ? st.prompt_tokens / st.prefill_seconds : 0.0;
  std::string decode = "none (the only generated token comes from the prefill)";
  if (st.decode_steps > 0) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%.1f tok/s (%.2f ms per token)", st.decode_steps / st.decode_seconds,
                  st.decode_seconds * 1e3 / st.decode_steps);
    decode = buf;
  }
  std::fprintf(stderr,
               "prompt tokens: %d, generated tokens: %d%s\n"
               "prefill: %.1f tok/s (%.2f ms), decode: %s, seed %llu\n",
               st.prompt_tokens, st.generated_tokens,
               st.stopped_at_eos ? " (stopped at end of sequence)" : (st.hit_context_limit ? " (context full)" : ""),
               prefill_tps, st.prefill_seconds * 1e3, decode.c_str(), static_cast<unsigned long long>(opts.sampler.seed));
  return 0;
}

}  // namespace tern::cli
