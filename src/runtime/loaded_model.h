// A model file and its tokenizer, found and loaded together: the starting point of every tool.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "formats/model_file.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace tern {

struct LoadedModel {
  std::shared_ptr<ModelFile> file;
  std::unique_ptr<Tokenizer> tokenizer;
};

// Loads `model_path`; the tokenizer comes from `tokenizer_path` when given, else from the model's own
// GGUF metadata. A llama2.c checkpoint has no tokenizer inside, so it needs one (`-z tokenizer.bin`).
Result<LoadedModel> open_model(const std::string& model_path, const std::string& tokenizer_path);

// The chat template the model ships (GGUF tokenizer.chat_template, or chat_template in a Hugging Face
// folder's tokenizer_config.json). An error naming --template when there is none or it is not recognised.
Result<ChatTemplate> model_chat_template(const LoadedModel& m);

}  // namespace tern
