// A multi-turn chat over one model: the conversation is rendered through the chat template each turn, and
// only the tokens that differ from what the KV cache already holds are prefilled, so a new turn costs its
// own tokens, not the whole history.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "model/llama.h"
#include "runtime/generate.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tern {

class ChatSession {
 public:
  // `system` replaces the template's default system prompt when non-empty.
  ChatSession(LlamaModel& model, const Tokenizer& tok, ChatTemplate tmpl, const std::string& system);

  // Adds a user turn, streams the assistant's reply through on_text and adds it to the conversation.
  // opts.n_past, echo_prompt and stop_ids are set by the session.
  Status reply(const std::string& user, GenerateOptions opts, const std::function<void(const std::string&)>& on_text,
               GenerateStats* stats);

  // Forgets the conversation (the system prompt stays).
  void reset();

  const std::vector<ChatMessage>& messages() const { return messages_; }
  // Tokens whose keys and values are in the cache now, in order from position 0.
  const std::vector<int>& cached_tokens() const { return cached_; }
  // The prompt the last turn rendered, as ids (for tests).
  const std::vector<int>& last_prompt() const { return last_prompt_; }

 private:
  LlamaModel& model_;
  const Tokenizer& tok_;
  ChatTemplate tmpl_;
  std::string system_;
  std::vector<int> stop_ids_;  // chat_stop_ids(), found once: it scans the vocabulary
  std::vector<ChatMessage> messages_;
  std::vector<int> cached_;
  std::vector<int> last_prompt_;
};

// The ids of the template's end-of-turn token and the tokenizer's end-of-generation tokens.
std::vector<int> chat_stop_ids(const Tokenizer& tok, const ChatTemplate& tmpl);

}  // namespace tern
