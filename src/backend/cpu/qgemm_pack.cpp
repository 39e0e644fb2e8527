// Packing for the integer GEMM (layouts in qgemm.h): plain loops, run once per weight tensor and once per
// activation row of a call.
#include <algorithm>
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

QgemmLayout qgemm_layout(DType t, int64_t n_blocks) {
  QgemmLayout l;
  l.groups = n_blocks / kQGroup;
  const int64_t rest = n_blocks - l.groups * kQGroup;
  if (t == DType::Q4_K) {
    l.half = rest > 0;  // n_blocks is a multiple of 8 (super-blocks of 256)
    l.row_bytes = l.groups * 296 + (l.half ? 148 : 0);
  } else {
    l.tail = rest;
    l.row_bytes = static_cast<int64_t>(block_bytes_of(t)) * n_blocks;
  }
  return l;
}

namespace {

// Q4_K: m = 16 or 8 sub-blocks starting at super-block `sb` of a row in ggml layout.
uint8_t* pack_q4_k_group(const uint8_t* row, int64_t sb, int m, uint8_t* out) {
  auto code = [&](int k, int e) -> int {  // element e of sub-block k of the group
    const BlockQ4_K* b = reinterpret_cast<const BlockQ4_K*>(row) + sb + k / 8;
    const int j = k % 8, c = j / 2;
    const uint8_t q = b->qs[32 * c + e];
    return j % 2 == 0 ? (q & 0xF) : (q >> 4);
  };
  for (int p = 0; p < 4; ++p)
    for (int k = 0; k < m; ++k)
      for (int jj = 0; jj < 4; ++jj)
        out[(p * m + k) * 4 + jj] = static_cast<uint8_t>(code(k, 4 * p + jj) | (code(k, 16 + 4 * p + jj) << 4));
  out += 16 * m;
  const int n_sb = m / 8;
  for (int i = 0; i < n_sb; ++i) {
    const BlockQ4_K* b = reinterpret_cast<const BlockQ4_K*>(row) + sb + i;
    std::memcpy(out + 2 * i, &b->d, 2);
    std::memcpy(out + 2 * n_sb + 2 * i, &b->dmin, 2);
  }
  out += 4 * n_sb;
  for (int k = 0; k < m; ++k) {
    int sc, mn;
    unpack_scale_min_k4((reinterpret_cast<const BlockQ4_K*>(row) + sb + k / 8)->scales, k % 8, sc, mn);
    out[k] = static_cast<uint8_t>(sc);
    out[m + k] = static_cast<uint8_t>(mn);
  }
  return out + 2 * m;
}

}  // namespace

void qgemm_pack_weights(DType t, const void* src, uint8_t* dst, int64_t n_rows, int64_t n_blocks) {
  const QgemmLayout lay = qgemm_layout(t, n_blocks);
  if (t == DType::Q4_K) {
    const size_t rb = row_bytes(t, 32 * n_blocks);
    for (int64_t r = 0; r < n_rows; ++r) {
      const uint8_t* in = static_cast<const uint8_t*>(src) + r * rb;
      uint8_t* out = dst + r * lay.row_bytes;
      for (int64_t g = 0; g < lay.groups; ++g) out = pack_q4_k_group(in, 2 * g, 16, out);
      if (lay.half) pack_q4_k_group(in, 2 * lay.groups, 8, out);
    }
    return;
  }
  const size_t bb = block_bytes_of(t), qoff = codes_offset(t);
  const size_t rb = bb * static_cast<size_t>(n_blocks);
  const int64_t full = lay.groups * kQGroup;
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
  const QgemmLayout lay = qgemm_layout(t, n_blocks);
  const float kc = t == DType::Q8_0 ? -128.0f : t == DType::Q4_0 ? -8.0f : 1.0f;
  BlockQ8X b[kQGroup];
  for (int64_t g = 0; g < lay.x_groups(); ++g) {
    const int m = static_cast<int>(std::min<int64_t>(kQGroup, n_blocks - g * kQGroup));
    quantize_row_q8x(x + g * kQGroup * 32, b, 32 * m);
    XGroup& o = groups[g];
    if (m < kQGroup) std::memset(&o, 0, sizeof(o));
    for (int k = 0; k < m; ++k) {
      for (int s = 0; s < 8; ++s) std::memcpy(o.q + s * 64 + k * 4, b[k].qs + 4 * s, 4);
      o.d[k] = b[k].d;
      o.c[k] = kc * b[k].sum;
    }
  }
  if (lay.tail > 0) quantize_row_q8x(x + lay.groups * kQGroup * 32, tail, 32 * lay.tail);
}

}  // namespace tern::cpu
