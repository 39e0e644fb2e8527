#include "runtime/generate.h"

#include <algorithm>
#include <chrono>

namespace tern {

std::string printable_piece(const std::string& piece) {
  if (piece.size() == 1) {
    const unsigned char c = static_cast<unsigned char>(piece[0]);
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
    if ((c < 0x20 || c == 0x7f) && !space) return std::string();
  }
  return piece;
}

Status generate(LlamaModel& model, const Tokenizer& tok, const std::vector<int>& prompt_ids,
                const GenerateOptions& opts, const std::function<void(const std::string&)>& on_text,
                GenerateStats* stats, std::vector<int>* out_ids) {
  using Clock = std::chrono::steady_clock;
  GenerateStats st;
  if (prompt_ids.empty()) return error("the prompt is empty (no tokens, not even BOS)");
  if (opts.max_new_tokens < 0) return error("-n must be >= 0");
  TERN_TRY(validate(opts.sampler));
  const int n_prompt = static_cast<int>(prompt_ids.size());
  if (n_prompt > model.n_ctx())
    return error("the prompt has " + std::to_string(n_prompt) + " tokens, more than the context length " +
                 std::to_string(model.n_ctx()));
  if (opts.n_past < 0 || opts.n_past >= n_prompt)
    return error("n_past " + std::to_string(opts.n_past) + " must be in [0, " + std::to_string(n_prompt) +
                 ") so that at least one prompt token is prefilled");
  st.prompt_tokens = n_prompt - opts.n_past;

  if (opts.echo_prompt) {
    // BOS prints nothing; a prompt without it (tokenizers that add none) is echoed from its first token.
    const int first = prompt_ids[0] == tok.bos_id() ? 1 : 0;
    for (int i = first; i < n_prompt; ++i)
      on_text(printable_piece(tok.decode_piece(i > 0 ? prompt_ids[i - 1] : -1, prompt_ids[i])));
  }

  const int vocab = model.config().vocab_size;
  std::vector<float> logits(static_cast<size_t>(vocab));
  std::vector<int> history(prompt_ids);
  history.reserve(prompt_ids.size() + static_cast<size_t>(opts.max_new_tokens));
  Sampler sampler(opts.sampler, vocab);

  auto t0 = Clock::now();
  TERN_TRY(model.forward(prompt_ids.data() + opts.n_past, n_prompt - opts.n_past, opts.n_past, logits.data()));
  auto t1 = Clock::now();
  st.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();

  int pos = n_prompt;
  int prev = prompt_ids.back();
  for (int i = 0; i < opts.max_new_tokens; ++i) {
    const int next = sampler.sample(logits.data(), history);
    const bool stop_id = std::find(opts.stop_ids.begin(), opts.stop_ids.end(), next) != opts.stop_ids.end();
    if (stop_id || (opts.stop_at_eos && (next == tok.eos_id() || next == tok.bos_id()))) {
      st.stopped_at_eos = true;
      break;
    }
    on_text(printable_piece(tok.decode_piece(prev, next)));
    history.push_back(next);
    ++st.generated_tokens;
    prev = next;
    if (i + 1 == opts.max_new_tokens) break;  // the last token needs no forward pass
    if (pos >= model.n_ctx()) {
      st.hit_context_limit = true;
      break;
    }
    TERN_TRY(model.forward(&next, 1, pos, logits.data()));
    ++pos;
    ++st.decode_steps;
  }
  st.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  if (stats) *stats = st;
  if (out_ids) out_ids->assign(history.begin() + n_prompt, history.end());
  return Status();
}

}  // namespace tern
