#include "ops/op_inputs.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>

#include "core/quant.h"

namespace tern::test_ops {

std::vector<CpuIsa> isas() {
  std::vector<CpuIsa> v;
  for (CpuIsa i : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512})
    if (cpu_supports_isa(i)) v.push_back(i);
  return v;
}

std::vector<float> random_floats(Rng& rng, size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (auto& x : v) x = lo + (hi - lo) * rng.uniform();
  return v;
}

Weights make_weights(DType t, int64_t n_out, int64_t n_in, uint64_t seed) {
  Rng rng(seed);
  Weights w;
  const size_t rb = row_bytes(t, static_cast<uint64_t>(n_in));
  EXPECT_GT(rb, 0u) << dtype_name(t) << " n_in " << n_in;
  w.bytes.resize(rb * static_cast<size_t>(n_out));
  for (int64_t r = 0; r < n_out; ++r) {
    uint8_t* row = w.bytes.data() + r * rb;
    if (can_quantize(t)) {
      std::vector<float> src = random_floats(rng, static_cast<size_t>(n_in));
      quantize_row(t, src.data(), row, n_in);
    } else {
      // Types tern cannot produce: random codes, then every block's f16 scale fields set to small values
      // (random bytes there could be NaN or huge).
      for (size_t i = 0; i < rb; ++i) row[i] = static_cast<uint8_t>(rng.next_u32());
      const auto info = dtype_info(static_cast<uint32_t>(t));
      const size_t bb = info->block_bytes;
      const uint16_t d = f32_to_f16(0.01f), d2 = f32_to_f16(0.002f);
      for (size_t b = 0; b < rb / bb; ++b) {
        uint8_t* blk = row + b * bb;
        auto put = [&](size_t off, uint16_t v) { std::memcpy(blk + off, &v, 2); };
        switch (t) {
          case DType::Q5_0: put(0, d); break;
          case DType::Q5_1: put(0, d), put(2, d2); break;
          case DType::Q2_K: put(offsetof(BlockQ2_K, d), d), put(offsetof(BlockQ2_K, dmin), d2); break;
          case DType::Q3_K: put(offsetof(BlockQ3_K, d), d); break;
          case DType::Q5_K: put(offsetof(BlockQ5_K, d), d), put(offsetof(BlockQ5_K, dmin), d2); break;
          case DType::Q6_K: put(offsetof(BlockQ6_K, d), d); break;
          default: ADD_FAILURE() << "no scale layout for " << dtype_name(t);
        }
      }
    }
  }
  w.view.name = "w";
  w.view.dtype = t;
  w.view.shape = {n_out, n_in};
  w.view.data = w.bytes.data();
  w.view.nbytes = w.bytes.size();
  w.f32.resize(static_cast<size_t>(n_out * n_in));
  for (int64_t r = 0; r < n_out; ++r) row_to_f32(t, w.view.row_ptr(r), w.f32.data() + r * n_in, n_in);
  return w;
}

}  // namespace tern::test_ops
