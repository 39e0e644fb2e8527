// The CPU backend: threads (core/thread_pool.h) + SIMD kernels chosen at run time by what the CPU supports.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace tern {

enum class CpuIsa { Scalar, Avx2, Avx512 };

// The best instruction set this CPU supports among those the backend has kernels for.
CpuIsa cpu_best_isa();
// Whether this CPU can run kernels for `isa`.
bool cpu_supports_isa(CpuIsa isa);
const char* cpu_isa_name(CpuIsa isa);

// A CPU backend forced onto one instruction set (tests use it to check every path). `isa` must be
// supported (asserted); n_threads <= 0 means the physical core count.
std::unique_ptr<Backend> make_cpu_backend_isa(int n_threads, CpuIsa isa);

}  // namespace tern
