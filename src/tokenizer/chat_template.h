// Chat templates: a conversation (system, user, assistant turns) rendered into the prompt text a model
// was fine-tuned on. Special tokens appear in the text by name (e.g. "<|im_start|>") and are turned into
// their ids by the tokenizer's special-token parsing.
//
// Templates are recognised from the model's own Jinja template (GGUF tokenizer.chat_template, HF
// tokenizer_config.json) by their markers, or chosen by name with --template. tern renders the known
// families natively rather than running Jinja.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace tern {

enum class ChatFormat { ChatML, Llama2, Llama3, Mistral };

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct ChatTemplate {
  ChatFormat format = ChatFormat::ChatML;
  // Used when the conversation has no system message (ChatML templates such as SmolLM2's insert one).
  std::string default_system;
  std::string bos = "<s>";   // BOS text for formats that write it in the template
  std::string eos = "</s>";  // end-of-turn text after assistant turns (Llama 2, Mistral)
};

// The names --template accepts, comma separated, for messages.
const char* chat_template_names();
const char* chat_format_name(ChatFormat f);

// By name: chatml, llama2, llama3, mistral. Error names --template and lists the valid names.
Result<ChatTemplate> chat_template_by_name(const std::string& name);

// From a model's Jinja chat template text. Error (naming --template) when the family is not recognised.
Result<ChatTemplate> chat_template_from_jinja(const std::string& jinja);

// Renders `messages` (roles must be system/user/assistant; a system message only first) and, when
// `add_generation_prompt`, the header that starts the assistant's reply.
Result<std::string> render_chat(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt);

// Text that ends an assistant turn in this format (generation stops when the model emits it).
std::string end_of_turn(const ChatTemplate& t);

}  // namespace tern
