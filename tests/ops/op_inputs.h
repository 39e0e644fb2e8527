// Inputs shared by the op tests: the instruction sets this machine can run, seeded random floats, and
// weight matrices of any type with the fp32 values the reference backend sees.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace tern::test_ops {

// Every CpuIsa this CPU supports, scalar first.
std::vector<CpuIsa> isas();

std::vector<float> random_floats(Rng& rng, size_t n, float lo = -1.0f, float hi = 1.0f);

// A weight matrix (n_out, n_in) of type t with its bytes; the fp32 values the reference sees come from
// dequantizing those bytes, so both backends read the same weights.
struct Weights {
  std::vector<uint8_t> bytes;
  TensorView view;
  std::vector<float> f32;  // dequantized, row-major
};

Weights make_weights(DType t, int64_t n_out, int64_t n_in, uint64_t seed);

}  // namespace tern::test_ops
