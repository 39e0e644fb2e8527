#include "backend/backend.h"

#include <cstdlib>
#include <cstring>

#ifdef TERN_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace tern {

Result<void*> Backend::alloc(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (!p) return error("out of host memory: could not allocate " + std::to_string(bytes) + " bytes");
  std::memset(p, 0, rounded);
  return p;
}

void Backend::dealloc(void* p) { std::free(p); }

Result<std::unique_ptr<Backend>> make_backend(const std::string& name, int n_threads) {
  if (name == "cpu") return make_cpu_backend(n_threads);
  if (name == "reference") return make_reference_backend();
#ifdef TERN_HAVE_CUDA
  if (name == "cuda") return make_cuda_backend(CudaOptions{});
  return error("unknown backend '" + name + "' (choices: cpu, reference, cuda)");
#else
  if (name == "cuda") return error("backend 'cuda': this build of tern has no CUDA support (rebuild with -DTERN_CUDA=ON)");
  return error("unknown backend '" + name + "' (choices: cpu, reference)");
#endif
}

Result<std::unique_ptr<Backend>> make_backend(const BackendOptions& o) {
#ifdef TERN_HAVE_CUDA
  if (o.name == "cuda") {
    auto mm = parse_cuda_matmul(o.matmul);
    if (!mm) return mm.status();
    CudaOptions c;
    c.matmul = mm.value();
    c.graphs = o.graphs;
    return make_cuda_backend(c);
  }
#endif
  if (o.name != "cuda" && (o.matmul != "fast" || !o.graphs))
    return error("--matmul and --no-graphs choose CUDA kernels; they need --backend cuda");
  return make_backend(o.name, o.threads);
}

}  // namespace tern
