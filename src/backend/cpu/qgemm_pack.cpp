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

// Bytes of a packed group of m lanes (Q6_K: of its one super-block).
int64_t group_bytes(DType t, int m) {
  switch (t) {
    case DType::Q6_K: return 210;
    case DType::Q8_0: return 34 * m;
    case DType::Q4_0: return 18 * m;
    case DType::Q4_1: return 20 * m;
    default: return 18 * m + m / 2;  // Q4_K
  }
}

}  // namespace

QgemmLayout qgemm_layout(DType t, int64_t n_blocks) {
  QgemmLayout l;
  if (t == DType::Q6_K) {  // one super-block (8 blocks of 32) per group
    l.groups = n_blocks / 8;
    l.main_bytes = l.row_bytes = l.groups * group_bytes(t, 16);
    return l;
  }
  l.groups = n_blocks / kQGroup;
  l.partial = static_cast<int>(n_blocks - l.groups * kQGroup);  // Q4_K: 0 or 8 (super-blocks of 256)
  // Q4_0 and Q4_1 tails of m <= 4 blocks share tail groups, 4 to 16 rows to a group. Two or three rows to a
  // group (m of 5 to 8) save prefill less and measured slower in decode (stories110M's Q8_0 rows of 16 + 8
  // blocks, two to a tail group: 12% fewer tokens/s). Q8_0 rows keep their partial groups whatever m: shared
  // tail groups streamed slower in decode (SmolLM2's classifier, 49152 rows of 16 + 2 blocks: 1.15 against
  // 0.92 ms), while Q4 rows streamed faster with them.
  if (l.partial > 0 && l.partial <= kQGroup / kMinPack && (t == DType::Q4_0 || t == DType::Q4_1))
    l.pack = kQGroup / l.partial;
  l.main_bytes = l.groups * group_bytes(t, kQGroup);
  l.tail_bytes = group_bytes(t, l.partial);
  l.row_bytes = l.main_bytes + l.tail_bytes;
  return l;
}

namespace {

// Q4_K: m = 16 or 8 sub-blocks starting at super-block `sb` of a row in ggml layout, into lanes
// [l0, l0 + m) of the group of M lanes at `out` (M / 8 super-blocks' d and dmin).
void pack_q4_k_group(const uint8_t* row, int64_t sb, int m, uint8_t* out, int M, int l0) {
  auto code = [&](int k, int e) -> int {  // element e of sub-block k of the group
    const BlockQ4_K* b = reinterpret_cast<const BlockQ4_K*>(row) + sb + k / 8;
    const int j = k % 8, c = j / 2;
    const uint8_t q = b->qs[32 * c + e];
    return j % 2 == 0 ? (q & 0xF) : (q >> 4);
  };
  for (int p = 0; p < 4; ++p)
    for (int k = 0; k < m; ++k)
      for (int jj = 0; jj < 4; ++jj)
        out[(p * M + l0 + k) * 4 + jj] =
            static_cast<uint8_t>(code(k, 4 * p + jj) | (code(k, 16 + 4 * p + jj) << 4));
  out += 16 * M;
  const int n_sb = M / 8;
  for (int i = 0; i < m / 8; ++i) {
    const BlockQ4_K* b = reinterpret_cast<const BlockQ4_K*>(row) + sb + i;
    std::memcpy(out + 2 * (l0 / 8 + i), &b->d, 2);
    std::memcpy(out + 2 * n_sb + 2 * (l0 / 8 + i), &b->dmin, 2);
  }
  out += 4 * n_sb;
  for (int k = 0; k < m; ++k) {
    int sc, mn;
    unpack_scale_min_k4((reinterpret_cast<const BlockQ4_K*>(row) + sb + k / 8)->scales, k % 8, sc, mn);
    out[l0 + k] = static_cast<uint8_t>(sc);
    out[M + l0 + k] = static_cast<uint8_t>(mn);
  }
}

// Q8_0, Q4_0, Q4_1: m blocks starting at `blk` (ggml layout, bb bytes each, codes at qoff), into lanes
// [l0, l0 + m) of the group of M lanes at `out`.
void pack_group(DType t, const uint8_t* blk, size_t bb, size_t qoff, int m, uint8_t* out, int M, int l0) {
  if (t == DType::Q8_0) {
    for (int s = 0; s < 8; ++s)
      for (int k = 0; k < m; ++k)
        for (int j = 0; j < 4; ++j) out[(s * M + l0 + k) * 4 + j] = blk[k * bb + qoff + 4 * s + j] ^ 0x80;
    out += 32 * M;
  } else {
    for (int p = 0; p < 4; ++p)
      for (int k = 0; k < m; ++k) std::memcpy(out + (p * M + l0 + k) * 4, blk + k * bb + qoff + 4 * p, 4);
    out += 16 * M;
  }
  for (int k = 0; k < m; ++k) std::memcpy(out + 2 * (l0 + k), blk + k * bb, 2);  // d
  out += 2 * M;
  if (t == DType::Q4_1)
    for (int k = 0; k < m; ++k) std::memcpy(out + 2 * (l0 + k), blk + k * bb + 2, 2);  // m
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

void qgemm_pack_weights(DType t, const void* src, uint8_t* dst, int64_t n_rows, int64_t r0, int64_t r1,
                        int64_t n_blocks) {
  const QgemmLayout lay = qgemm_layout(t, n_blocks);
  const size_t rb = row_bytes(t, 32 * n_blocks);
  const size_t bb = block_bytes_of(t);
  // Lanes [l0, l0 + m) of the group of M lanes at out: blocks (Q4_K: super-blocks) from group g of row `in`.
  auto group = [&](const uint8_t* in, int64_t g, int m, uint8_t* out, int M, int l0) {
    if (t == DType::Q4_K) pack_q4_k_group(in, 2 * g, m, out, M, l0);
    else pack_group(t, in + g * kQGroup * bb, bb, codes_offset(t), m, out, M, l0);
  };
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* in = static_cast<const uint8_t*>(src) + r * rb;
    uint8_t* out = dst + lay.row_offset(r, n_rows);
    for (int64_t g = 0; g < lay.groups; ++g, out += group_bytes(t, kQGroup)) {
      if (t == DType::Q6_K) pack_q6_k_group(reinterpret_cast<const BlockQ6_K*>(in)[g], out);
      else group(in, g, kQGroup, out, kQGroup, 0);
    }
    if (lay.partial == 0) continue;
    if (!lay.shared_tail()) {  // the row's own partial group, after its full groups
      group(in, lay.groups, lay.partial, out, lay.partial, 0);
      continue;
    }
    // Lanes [j m, (j + 1) m) of its pack's tail group, which comes first in the pack.
    const int64_t pk = r / lay.pack;
    const int rows = static_cast<int>(std::min<int64_t>(lay.pack, n_rows - pk * lay.pack));
    const int j = static_cast<int>(r - pk * lay.pack);
    uint8_t* tail = dst + pk * lay.pack * lay.row_bytes;
    group(in, lay.groups, lay.partial, tail, rows * lay.partial, j * lay.partial);
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
    // The tail blocks once per row of a pack (lane j m + k: block k).
    const int copies = m < kQGroup ? lay.pack : 1;
    for (int j = 0; j < copies; ++j)
      for (int k = 0; k < m; ++k) {
        const int l = j * m + k;
        for (int s = 0; s < 8; ++s) std::memcpy(o.q + s * 64 + l * 4, b[k].qs + 4 * s, 4);
        o.d[l] = b[k].d;
        o.c[l] = kc * b[k].sum;
      }
  }
}

}  // namespace tern::cpu
