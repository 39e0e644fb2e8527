#include "runtime/chat.h"

#include <algorithm>

namespace tern {

std::vector<int> chat_stop_ids(const Tokenizer& tok, const ChatTemplate& tmpl) {
  std::vector<int> ids;
  const int eot = tok.token_id(end_of_turn(tmpl));
  if (eot >= 0) ids.push_back(eot);
  for (int id = 0; id < tok.vocab_size(); ++id)
    if (tok.is_eog(id) && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  return ids;
}

ChatSession::ChatSession(LlamaModel& model, const Tokenizer& tok, ChatTemplate tmpl, const std::string& system)
    : model_(model), tok_(tok), tmpl_(std::move(tmpl)), system_(system), stop_ids_(chat_stop_ids(tok, tmpl_)) {
  reset();
}

void ChatSession::reset() {
  messages_.clear();
  if (!system_.empty()) messages_.push_back({"system", system_});
  // The cache keeps its bytes; the next turn simply overwrites from the first position that differs.
  cached_.clear();
}

Status ChatSession::reply(const std::string& user, GenerateOptions opts,
                          const std::function<void(const std::string&)>& on_text, GenerateStats* stats) {
  messages_.push_back({"user", user});
  auto text = render_chat(tmpl_, messages_, /*add_generation_prompt=*/true);
  if (!text) {
    messages_.pop_back();
    return text.status();
  }
  // Templates write BOS themselves where the model wants it; special tokens in the template are parsed,
  // while the user's own text cannot smuggle them in only if the template family quotes it (none do).
  std::vector<int> prompt = tok_.encode(*text, /*add_bos=*/false, /*add_eos=*/false, /*parse_special=*/true);
  if (static_cast<int>(prompt.size()) >= model_.n_ctx()) {
    messages_.pop_back();
    return error("the conversation (" + std::to_string(prompt.size()) + " tokens) no longer fits the context of " +
                 std::to_string(model_.n_ctx()) + " tokens; /reset to start over");
  }
  // Reuse the longest prefix already in the cache, but always prefill at least one token.
  size_t keep = 0;
  while (keep < cached_.size() && keep < prompt.size() && cached_[keep] == prompt[keep]) ++keep;
  keep = std::min(keep, prompt.size() - 1);

  opts.n_past = static_cast<int>(keep);
  opts.echo_prompt = false;
  opts.stop_ids = stop_ids_;
  const int room = model_.n_ctx() - static_cast<int>(prompt.size());
  opts.max_new_tokens = std::min(opts.max_new_tokens, room);
  std::vector<int> generated;
  std::string answer;
  Status s = generate(
      model_, tok_, prompt, opts,
      [&](const std::string& piece) {
        answer += piece;
        on_text(piece);
      },
      stats, &generated);
  last_prompt_ = prompt;
  if (!s) {
    messages_.pop_back();
    cached_.clear();
    return s;
  }
  cached_ = prompt;
  // All generated tokens but the last went through the model; the last was sampled only.
  if (!generated.empty()) cached_.insert(cached_.end(), generated.begin(), generated.end() - 1);
  messages_.push_back({"assistant", answer});
  return Status();
}

}  // namespace tern
