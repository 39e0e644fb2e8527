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
  if (t == DType::Q6_K) {  // one super-block (8 blocks of 32) per group
    l.groups = n_blocks / 8;
    l.row_bytes = l.groups * 210;
    return l;
  }
  l.groups = n_blocks / kQGroup;
  l.partial = static_cast<int>(n_blocks - l.groups * kQGroup);  // Q4_K: 0 or 8 (super-blocks of 256)
  auto bytes = [&](int m) -> int64_t {
    switch (t) {
      case DType::Q8_0: return 34 * m;
      case DType::Q4_0: return 18 * m;
      case DType::Q4_1: return 20 * m;
      default: return 18 * m + m / 2;  // Q4_K
    }
  };
  l.row_bytes = l.groups * bytes(kQGroup) + bytes(l.partial);
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

// Q8_0, Q4_0, Q4_1: m blocks starting at `blk` (ggml layout, bb bytes each, codes at qoff).
uint8_t* pack_group(DType t, const uint8_t* blk, size_t bb, size_t qoff, int m, uint8_t* out) {
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
  return out;
}

// Q6_K: the 6-bit codes (0..63) of a super-block's 256 elements, as the ggml layout stores them: per half h
// of 128 elements, element 32 * part + l takes its low four bits from ql (bytes l or l + 32, low or high
// nibble) and its top two from bits 2 * part of qh[l].
void q6k_codes(const BlockQ6_K& b, uint8_t* u) {
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    uint8_t* o = u + 128 * h;
    for (int l = 0; l < 32; ++l) {
      o[l] = static_cast<uint8_t>((ql[l] & 0xF) | ((qh[l] & 3) << 4));
      o[32 + l] = static_cast<uint8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
      o[64 + l] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
      o[96 + l] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
    }
  }
}

uint8_t* pack_q6_k_group(const BlockQ6_K& b, uint8_t* out) {
  uint8_t code[256];
  q6k_codes(b, code);
  for (int k = 0; k < 16; ++k)
    for (int j = 0; j < 4; ++j) {
      const uint8_t* c = code + 16 * k + j;  // steps s = 0..3 of lane k: c[4 * s]
      const int u0 = c[0], u1 = c[4], u2 = c[8], u3 = c[12];
      out[k * 4 + j] = static_cast<uint8_t>((u0 & 0xF) | ((u1 & 0xF) << 4));
      out[64 + k * 4 + j] = static_cast<uint8_t>((u2 & 0xF) | ((u3 & 0xF) << 4));
      out[128 + k * 4 + j] = static_cast<uint8_t>((u0 >> 4) | ((u1 >> 4) << 2) | ((u2 >> 4) << 4) | ((u3 >> 4) << 6));
    }
  std::memcpy(out + 192, b.scales, 16);
  std::memcpy(out + 208, &b.d, 2);
  return out + 210;
}

}  // namespace

void qgemm_pack_weights(DType t, const void* src, uint8_t* dst, int64_t n_rows, int64_t n_blocks) {
  const QgemmLayout lay = qgemm_layout(t, n_blocks);
  const size_t rb = row_bytes(t, 32 * n_blocks);
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint8_t* in = static_cast<const uint8_t*>(src) + r * rb;
    uint8_t* out = dst + r * lay.row_bytes;
    for (int64_t g = 0; g < lay.x_groups(); ++g) {
      const int m = g < lay.groups ? kQGroup : lay.partial;
      if (t == DType::Q6_K) {
        out = pack_q6_k_group(reinterpret_cast<const BlockQ6_K*>(in)[g], out);
      } else if (t == DType::Q4_K) {
        out = pack_q4_k_group(in, 2 * g, m, out);
      } else {
        const size_t bb = block_bytes_of(t);
        out = pack_group(t, in + g * kQGroup * bb, bb, codes_offset(t), m, out);
      }
    }
  }
}

void qgemm_pack_x_q6k(const float* x, XGroup* groups, int64_t n_blocks) {
  BlockQ8X b[8];
  for (int64_t g = 0; g < n_blocks / 8; ++g) {
    quantize_row_q8x(x + g * 256, b, 256);
    XGroup& o = groups[g];
    std::memset(&o, 0, sizeof(o));
    for (int k = 0; k < 16; ++k) {
      const BlockQ8X& blk = b[k / 2];
      const int8_t* q = blk.qs + 16 * (k % 2);
      int sum = 0;
      for (int e = 0; e < 16; ++e) sum += q[e];
      for (int s = 0; s < 4; ++s) std::memcpy(o.q + s * 64 + k * 4, q + 4 * s, 4);
      o.d[k] = blk.d;
      o.c[k] = -32.0f * (blk.d * static_cast<float>(sum));
    }
  }
}

void qgemm_pack_x(DType t, const float* x, XGroup* groups, int64_t n_blocks) {
  if (t == DType::Q6_K) return qgemm_pack_x_q6k(x, groups, n_blocks);
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
}

}  // namespace tern::cpu
