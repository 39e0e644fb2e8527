// Model presets: the published shapes of well-known Llama-family models, so that `tern estimate` can
// answer for a model whose weights are not on this machine.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "model/config.h"

namespace tern::perf {

struct ModelPreset {
  std::string key;  // "llama-3-8b"
  ModelConfig config;
  std::string source;  // where the shapes come from
};

const std::vector<ModelPreset>& model_presets();
std::string model_preset_names();  // "llama-3-8b, llama-2-7b, ..."
Result<ModelPreset> find_model_preset(const std::string& key);

}  // namespace tern::perf
