// Packing for the integer GEMM (layouts in qgemm.h): plain loops, run once per weight tensor and once per
// activation row of a call.
#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_kernels.h"
#include "backend/cpu/qgemm.h"
#include "core/quant.h"

namespace tern::cpu {

namespace {

// Bytes of one block in ggml layout and where its codes start.
size_t block_bytes_of(DType t) { return t == DType::Q8_0 ? 34 : t == DType::Q4_0 ? 18 : 20; }
size_t codes_offset(DType t) { return t == DType::Q4_1 ? 4 : 2; }

}  // namespace

void qgemm_pack_weights(DType t, const void* src, uint8_t* dst, int64_t n_rows, int64_t n_blocks) {
  const size_t bb = block_bytes_of(t), qoff = codes_offset(t);
  const size_t rb = bb * static_cast<size_t>(n_blocks);
  const int64_t full = n_blocks / kQGroup * kQGroup;
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint8_t* in = static_cast<const uint8_t*>(src) + r * rb;
    uint8_t* out = dst + r * rb;
    for (int64_t g0 = 0; g0 < full; g0 += kQGroup) {
      constexpr int m = kQGroup;
      const uint8_t* blk = in + g0 * bb;
      if (t == DType::Q8_0) {
        for (int s = 0; s < 8; ++s)
          for (int k = 0; k < m; ++k)
            for (int j = 0; j < 4; ++j) out[(s * m + k) * 4 + j] = blk[k * bb + qoff + 4 * s + j] ^ 0x80;
        out += 32 * m;
      } else {
        for (int p = 0; p < 4; ++p)
          for (int k = 0; k < m; ++k) std::memcpy(out + (p * m + k) * 4, blk + k * bb + qoff + 4 * p, 4);
        out += 16 * m;
      }
      for (int k = 0; k < m; ++k) std::memcpy(out + 2 * k, blk + k * bb, 2);  // d
      out += 2 * m;
      if (t == DType::Q4_1) {
        for (int k = 0; k < m; ++k) std::memcpy(out + 2 * k, blk + k * bb + 2, 2);  // m
        out += 2 * m;
      }
    }
    std::memcpy(out, in + full * bb, (n_blocks - full) * bb);  // the tail, as it was
  }
}

void qgemm_pack_x(DType t, const float* x, XGroup* groups, BlockQ8X* tail, int64_t n_blocks) {
  const float kc = t == DType::Q8_0 ? -128.0f : t == DType::Q4_0 ? -8.0f : 1.0f;
  const int64_t n_groups = n_blocks / kQGroup;
  BlockQ8X b[kQGroup];
  for (int64_t g = 0; g < n_groups; ++g) {
    quantize_row_q8x(x + g * kQGroup * 32, b, 32 * kQGroup);
    XGroup& o = groups[g];
    for (int k = 0; k < kQGroup; ++k) {
      for (int s = 0; s < 8; ++s) std::memcpy(o.q + s * 64 + k * 4, b[k].qs + 4 * s, 4);
      o.d[k] = b[k].d;
      o.c[k] = kc * b[k].sum;
    }
  }
  const int64_t done = n_groups * kQGroup;
  if (done < n_blocks) quantize_row_q8x(x + done * 32, tail, 32 * (n_blocks - done));
}

}  // namespace tern::cpu
