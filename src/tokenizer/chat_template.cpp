#include "tokenizer/chat_template.h"

namespace tern {

namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// The default system prompt a ChatML template inserts when the conversation has none, e.g. SmolLM2's
//   {% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are ...<|im_end|>\n' }}
std::string chatml_default_system(const std::string& jinja) {
  const size_t cond = jinja.find("!= 'system'");
  if (cond == std::string::npos) return "";
  const std::string open = "<|im_start|>system\n";
  const size_t start = jinja.find(open, cond);
  if (start == std::string::npos) return "";
  const size_t text = start + open.size();
  const size_t end = jinja.find("<|im_end|>", text);
  if (end == std::string::npos) return "";
  const std::string s = jinja.substr(text, end - text);
  // Only a literal string: anything with template syntax in it is not a plain default.
  if (s.find("{{") != std::string::npos || s.find("{%") != std::string::npos || s.find('\'') != std::string::npos)
    return "";
  return s;
}

}  // namespace

const char* chat_template_names() { return "chatml, llama2, llama3, mistral"; }

const char* chat_format_name(ChatFormat f) {
  switch (f) {
    case ChatFormat::ChatML: return "chatml";
    case ChatFormat::Llama2: return "llama2";
    case ChatFormat::Llama3: return "llama3";
    case ChatFormat::Mistral: return "mistral";
  }
  return "?";
}

Result<ChatTemplate> chat_template_by_name(const std::string& name) {
  ChatTemplate t;
  if (name == "chatml") t.format = ChatFormat::ChatML;
  else if (name == "llama2") t.format = ChatFormat::Llama2;
  else if (name == "llama3") t.format = ChatFormat::Llama3;
  else if (name == "mistral") t.format = ChatFormat::Mistral;
  else
    return error("--template: unknown chat template '" + name + "' (valid: " + chat_template_names() + ")");
  if (t.format == ChatFormat::Llama3) t.bos = "<|begin_of_text|>";
  return t;
}

Result<ChatTemplate> chat_template_from_jinja(const std::string& jinja) {
  ChatTemplate t;
  if (jinja.find("<|im_start|>") != std::string::npos) {
    t.format = ChatFormat::ChatML;
    t.default_system = chatml_default_system(jinja);
  } else if (jinja.find("<|start_header_id|>") != std::string::npos) {
    t.format = ChatFormat::Llama3;
    t.bos = "<|begin_of_text|>";
  } else if (jinja.find("[INST]") != std::string::npos && jinja.find("<<SYS>>") != std::string::npos) {
    t.format = ChatFormat::Llama2;
  } else if (jinja.find("[INST]") != std::string::npos) {
    t.format = ChatFormat::Mistral;
  } else {
    return error(std::string("the model's chat template is not one tern recognises; choose one with --template (") +
                 chat_template_names() + ")");
  }
  return t;
}

std::string end_of_turn(const ChatTemplate& t) {
  switch (t.format) {
    case ChatFormat::ChatML: return "<|im_end|>";
    case ChatFormat::Llama3: return "<|eot_id|>";
    default: return t.eos;
  }
}

Result<std::string> render_chat(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& r = messages[i].role;
    if (r != "system" && r != "user" && r != "assistant")
      return error("chat message " + std::to_string(i) + ": unknown role '" + r + "' (system, user, assistant)");
    if (r == "system" && i != 0) return error("chat message " + std::to_string(i) + ": a system message must come first");
  }
  const bool has_system = !messages.empty() && messages[0].role == "system";
  const std::string system = has_system ? messages[0].content : t.default_system;
  const size_t first = has_system ? 1 : 0;
  std::string out;

  switch (t.format) {
    case ChatFormat::ChatML:
      // <|im_start|>{role}\n{content}<|im_end|>\n per message; the reply opens with <|im_start|>assistant\n.
      if (!system.empty() || has_system) out += "<|im_start|>system\n" + system + "<|im_end|>\n";
      for (size_t i = first; i < messages.size(); ++i)
        out += "<|im_start|>" + messages[i].role + "\n" + messages[i].content + "<|im_end|>\n";
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;

    case ChatFormat::Llama3:
      // <|begin_of_text|> then <|start_header_id|>{role}<|end_header_id|>\n\n{trimmed content}<|eot_id|>.
      out += t.bos;
      for (const auto& m : messages)
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;

    case ChatFormat::Llama2:
      // <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] {user} [/INST] ...
      for (size_t i = first; i < messages.size(); ++i) {
        const auto& m = messages[i];
        if (m.role == "user") {
          std::string content = trim(m.content);
          if (i == first && !system.empty()) content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content;
          out += t.bos + "[INST] " + content + " [/INST]";
        } else {
          out += " " + trim(m.content) + " " + t.eos;
        }
      }
      break;

    case ChatFormat::Mistral: {
      // <s>[INST] {user}[/INST] {assistant}</s>[INST] {system}\n\n{last user}[/INST]
      size_t last_user = messages.size();
      for (size_t i = first; i < messages.size(); ++i)
        if (messages[i].role == "user") last_user = i;
      out += t.bos;
      for (size_t i = first; i < messages.size(); ++i) {
        const auto& m = messages[i];
        if (m.role == "user") {
          if (i == last_user && !system.empty())
            out += "[INST] " + system + "\n\n" + m.content + "[/INST]";
          else
            out += "[INST] " + m.content + "[/INST]";
        } else {
          out += " " + trim(m.content) + t.eos;
        }
      }
      break;
    }
  }
  return out;
}

}  // namespace tern
