#include "runtime/loaded_model.h"

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

}  // namespace tern
