// The CPU backend: threads (core/thread_pool.h) + SIMD kernels chosen at run time by what the CPU supports.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"

namespace tern {

enum class CpuIsa { Scalar, Avx2, Avx512 };

// The best instruction set this CPU supports among those the backend has kernels for.
CpuIsa cpu_best_isa();
// Whether this CPU can run kernels for `isa`.
bool cpu_supports_isa(CpuIsa isa);
const char* cpu_isa_name(CpuIsa isa);

// How the cpu backend multiplies F16 and BF16 weights (BackendOptions::float_matmul). F32: widened to fp32,
// every product exact (fgemm.h). Bf16: activations and F16 weights rounded to bf16 and multiplied with
// AVX512_BF16 (fgemm_bf16.h), about twice the fp32 rate, each product off by at most 2u + u^2 relative
// (u = 2^-8). Each mode computes a token's output the same way whatever else is in its batch, decode
// included. F32 weights are computed in fp32 in both.
enum class FloatMatmul { F32, Bf16 };
// "f32" or "bf16"; an error naming the choices for anything else.
Result<FloatMatmul> parse_float_matmul(const std::string& s);
// Whether this CPU can run the Bf16 mode (AVX-512 with VNNI and AVX512_BF16).
bool cpu_supports_bf16_matmul();

// A CPU backend forced onto one instruction set (tests use it to check every path). `isa` must be
// supported, and with FloatMatmul::Bf16 be Avx512 on a CPU with cpu_supports_bf16_matmul() (asserted);
// n_threads <= 0 means the physical core count.
std::unique_ptr<Backend> make_cpu_backend_isa(int n_threads, CpuIsa isa, FloatMatmul fm = FloatMatmul::F32);

// The CPU backend on the best instruction set, in mode fm: an error saying so where the CPU cannot run it
// (Bf16 without AVX512_BF16; there is no silent fallback, so a run's numbers are always the mode asked for).
Result<std::unique_ptr<Backend>> make_cpu_backend(int n_threads, FloatMatmul fm);

}  // namespace tern
