// Inputs shared by the op tests: the instruction sets this machine can run, seeded random floats, and
// weight matrices of any type with the fp32 values the reference backend sees.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
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

// A paged KV cache of one layer for n_pos positions in blocks of 5 rows, blocks in reverse order (so a
// kernel that assumed contiguous blocks would read the wrong rows).
struct PagedKv {
  std::vector<uint8_t> k, v;
  std::vector<int32_t> table;
  KvView view;
  PagedKv(DType t, int64_t kv_dim, int n_pos) {
    const int block = 5, n_blocks = (n_pos + block - 1) / block + 2;
    for (int b = 0; b < n_blocks; ++b) table.push_back(n_blocks - 1 - b);  // last block first
    view.dtype = t;
    view.row_elems = kv_dim;
    view.row_bytes = static_cast<int64_t>(row_bytes(t, kv_dim));
    view.block_size = block;
    view.block_bytes = view.row_bytes * block;
    k.assign(static_cast<size_t>(view.block_bytes * n_blocks), 0);
    v.assign(k.size(), 0);
    view.k = k.data();
    view.v = v.data();
    view.blocks = table.data();
  }
};

}  // namespace tern::test_ops
