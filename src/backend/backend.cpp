#include "backend/backend.h"

namespace tern {

Result<std::unique_ptr<Backend>> make_backend(const std::string& name, int n_threads) {
  if (name == "cpu") return make_cpu_backend(n_threads);
  if (name == "reference") return make_reference_backend();
  return error("unknown backend '" + name + "' (choices: cpu, reference)");
}

}  // namespace tern
