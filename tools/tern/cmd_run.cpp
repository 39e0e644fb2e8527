// tern run: prompt in, streamed completion out (the llama2.c `run` experience).
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "backend/backend.h"
#include "commands.h"
#include "runtime/generate.h"
#include "runtime/loaded_model.h"

namespace tern::cli {

int cmd_run(const Args& a) {
  if (!a.has("model")) return fail("run", "--model (-m) is required");
  GenerateOptions opts;
  opts.max_new_tokens = static_cast<int>(a.integer("n-predict"));
  if (opts.max_new_tokens < 0) return fail("run", "--n-predict must be >= 0, got " + a.str("n-predict"));
  SamplerParams& sp = opts.sampler;
  sp.temperature = static_cast<float>(a.number("temp"));
  sp.top_k = static_cast<int>(a.integer("top-k"));
  sp.top_p = static_cast<float>(a.number("top-p"));
  sp.min_p = static_cast<float>(a.number("min-p"));
  sp.repeat_penalty = static_cast<float>(a.number("repeat-penalty"));
  sp.frequency_penalty = static_cast<float>(a.number("frequency-penalty"));
  sp.presence_penalty = static_cast<float>(a.number("presence-penalty"));
  sp.penalty_last_n = static_cast<int>(a.integer("penalty-last-n"));
  sp.seed = a.has("seed") ? a.u64("seed")
                          : static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  if (Status s = validate(sp); !s) return fail("run", s.message());
  const int64_t ctx_flag = a.integer("ctx");
  if (ctx_flag < 0) return fail("run", "--ctx must be >= 0, got " + a.str("ctx"));

  auto lm = open_model(a.str("model"), a.str("tokenizer"));
  if (!lm) return fail("run", lm.message());
  const ModelConfig& cfg = lm->file->config;
  int n_ctx = ctx_flag == 0 ? std::min(cfg.max_seq_len, 4096) : static_cast<int>(ctx_flag);
  if (n_ctx > cfg.max_seq_len)
    return fail("run", "--ctx " + std::to_string(n_ctx) + " exceeds the model's context length " +
                           std::to_string(cfg.max_seq_len));

  const std::vector<int> prompt = lm->tokenizer->encode(a.str("prompt"), /*add_bos=*/true);
  if (static_cast<int>(prompt.size()) > n_ctx)
    return fail("run", "the prompt has " + std::to_string(prompt.size()) + " tokens, more than the context length " +
                           std::to_string(n_ctx) + " (see --ctx)");

  auto backend = make_reference_backend();
  auto model = LlamaModel::create(cfg, lm->file->weights, *backend, n_ctx);
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

  const double decode_tps = st.decode_seconds > 0 ? st.generated_tokens / st.decode_seconds : 0.0;
  const double prefill_tps = st.prefill_seconds > 0 ? st.prompt_tokens / st.prefill_seconds : 0.0;
  std::fprintf(stderr,
               "prompt tokens: %d, generated tokens: %d%s\n"
               "prefill: %.1f tok/s (%.2f ms), decode: %.1f tok/s (%.2f ms per token), seed %llu\n",
               st.prompt_tokens, st.generated_tokens,
               st.stopped_at_eos ? " (stopped at end of sequence)" : (st.hit_context_limit ? " (context full)" : ""),
               prefill_tps, st.prefill_seconds * 1e3, decode_tps,
               st.generated_tokens ? st.decode_seconds * 1e3 / st.generated_tokens : 0.0,
               static_cast<unsigned long long>(sp.seed));
  return 0;
}

}  // namespace tern::cli
