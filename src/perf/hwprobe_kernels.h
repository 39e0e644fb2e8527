// The measuring kernels of hwprobe: a throughput loop per ISA path, compiled for its ISA with
// __attribute__((target)) and chosen at run time by CPUID, plus the streaming kernels of the bandwidth test.
// Internal to perf/hwprobe.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tern::perf::kernels {

struct FlopKernel {
  const char* path;             // "avx512_fma_f32"
  const char* dtype;            // "f32", "bf16", "int8"
  const char* what;             // one line: the instruction and what it counts
  double flops_per_iter;        // FLOPs (ops, for int8) one call of run() does per iteration
  bool (*available)();          // CPUID (and OS state) check
  float (*run)(int64_t iters);  // returns a value derived from the accumulators so nothing is elided
};

// The paths this build has, in order from scalar to widest; callers check available().
const std::vector<FlopKernel>& flop_kernels();

// ISA extensions the CPU reports that matter to tern's kernels ("avx2", "fma", "avx512f", ...).
std::vector<std::string> cpu_isa();

// Streaming kernels over [p, p + bytes): bytes a multiple of 256 and p 64-byte aligned.
uint64_t read_stream(const uint8_t* p, size_t bytes);  // loads every byte, widest ISA available
void copy_stream(double* dst, const double* src, size_t n);
void triad_stream(double* a, const double* b, const double* c, double s, size_t n);

}  // namespace tern::perf::kernels
