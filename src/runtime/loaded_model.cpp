#include "runtime/loaded_model.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace tern {

Result<LoadedModel> open_model(const std::string& model_path, const std::string& tokenizer_path) {
  LoadedModel lm;
  auto f = load_model_file(model_path);
  if (!f) return f.status();
  lm.file = f.value();
  if (!tokenizer_path.empty()) {
    auto t = load_tokenizer(tokenizer_path);
    if (!t) return t.status();
    lm.tokenizer = std::move(t.value());
  } else if (lm.file->gguf && lm.file->gguf->find("tokenizer.ggml.model")) {
    auto t = load_tokenizer_gguf(*lm.file->gguf);
    if (!t) return t.status();
    lm.tokenizer = std::move(t.value());
  } else {
    return error(model_path + ": has no tokenizer inside; pass one with -z (e.g. tokenizer.bin)");
  }
  if (lm.tokenizer->vocab_size() != lm.file->config.vocab_size)
    return error("tokenizer has " + std::to_string(lm.tokenizer->vocab_size()) + " tokens but model " + model_path +
                 " has a vocabulary of " + std::to_string(lm.file->config.vocab_size));
  return lm;
}

Result<ChatTemplate> model_chat_template(const LoadedModel& m) {
  std::string jinja;
  if (m.file->gguf) {
    if (const GgufValue* v = m.file->gguf->find("tokenizer.chat_template"); v && v->type == GgufType::STRING)
      jinja = v->str;
  } else if (std::filesystem::is_directory(m.file->path)) {
    const std::string cfg = (std::filesystem::path(m.file->path) / "tokenizer_config.json").string();
    std::ifstream f(cfg);
    if (f) {
      auto j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("chat_template") && j["chat_template"].is_string())
        jinja = j["chat_template"].get<std::string>();
    }
  }
  if (jinja.empty())
    return error(m.file->path + ": has no chat template; choose one with --template (" + chat_template_names() + ")");
  return chat_template_from_jinja(jinja);
}

}  // namespace tern
