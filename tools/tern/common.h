// Helpers shared by subcommands: the default model, and sampling/model flags read into library structs.
#pragma once

#include <string>

#include "core/status.h"
#include "flags.h"
#include <memory>

#include "backend/backend.h"
#include "runtime/kv_cache.h"
#include "sampler/sampler.h"

namespace tern::cli {

// -m if given; otherwise $TERN_MODEL; otherwise the default model that scripts/setup.sh fetches
// (models/SmolLM2-135M-Instruct.Q4_1.gguf beside the build directory or under the current directory).
Result<std::string> model_path(const Args& a);

// The backend from --backend (or its alias --device), --threads, --matmul and --no-graphs.
Result<std::unique_ptr<Backend>> backend_from_flags(const Args& a);

// The KV cache options from --kv-type.
Result<KvOptions> kv_options(const Args& a);

// The sampling flags shared by run and chat (--temp, --top-k, ..., --seed), validated.
Result<SamplerParams> sampler_params(const Args& a);

}  // namespace tern::cli
