// The CPU backend's attention against itself: batching never changes a token's result. The server relies on
// it (a token decoded alone must equal the same token inside a prefill block), and the fused AVX-512 kernel
// shares every loaded key and value between several query rows, whose causal limits differ on the diagonal.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "core/rng.h"
#include "ops/op_inputs.h"

namespace {

using namespace tern;
using namespace tern::test_ops;

// Each token of a 37-token block gets bit for bit what one token at its position gets over the same cache
// (every position stored first): on every instruction set, cache type and a head_dim of 64 and 128, with 3,
// 1 and 6 query heads per kv head (the fused kernel's blocks of four rows straddle tokens in the block; one
// token's rows are a single block, which packs the keys as it reads them, or more), in a first tile only
// and past two tile boundaries.
TEST(CpuAttention, PrefillRowsAreTheDecodeRowsBitForBit) {
  Rng rng(17);
  struct Heads {
    int n_heads, n_kv;
  };
  for (CpuIsa isa : isas())
    for (DType t : {DType::F32, DType::F16, DType::Q8_0})
      for (int hd : {64, 128})
        for (Heads h : {Heads{6, 2}, Heads{4, 4}, Heads{6, 1}})
          for (int pos0 : {20, 100}) {
            SCOPED_TRACE(testing::Message() << cpu_isa_name(isa) << " " << dtype_name(t) << " head_dim " << hd
                                            << " heads " << h.n_heads << "/" << h.n_kv << " pos0 " << pos0);
            const int n_tokens = 37, n_pos = pos0 + n_tokens;
            const size_t qd = static_cast<size_t>(h.n_heads * hd), kd = static_cast<size_t>(h.n_kv * hd);
            // Queries up to 3 so that scores spread and the running maximum moves from tile to tile.
            const std::vector<float> q = random_floats(rng, n_tokens * qd, -3, 3);
            const std::vector<float> k = random_floats(rng, n_pos * kd), v = random_floats(rng, n_pos * kd);
            PagedKv kv(t, static_cast<int64_t>(kd), n_pos);
            auto cpu = make_cpu_backend_isa(2, isa);
            cpu->kv_store(kv.view, 0, n_pos, k.data(), v.data());
            std::vector<float> block(q.size()), one(qd);
            cpu->attention(q.data(), kv.view, n_tokens, pos0, h.n_heads, h.n_kv, hd, block.data());
            for (int tk = 0; tk < n_tokens; ++tk) {
              cpu->attention(q.data() + tk * qd, kv.view, 1, pos0 + tk, h.n_heads, h.n_kv, hd, one.data());
              const float* in_block = block.data() + tk * qd;
              for (size_t i = 0; i < qd; ++i)
                ASSERT_EQ(0, std::memcmp(&one[i], &in_block[i], sizeof(float)))
                    << "token " << tk << " element " << i << ": alone " << one[i] << ", in the block "
                    << in_block[i];
            }
          }
}

}  // namespace
