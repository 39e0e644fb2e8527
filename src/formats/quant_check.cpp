#include "formats/quant_check.h"

#include <cstdio>
#include <cstring>

#include "core/dtype.h"

namespace tern {

bool quant_scale_fields(DType t, int* n, uint32_t off[2], const char* names[2]) {
  auto set = [&](uint32_t a, const char* na, int count = 1, uint32_t b = 0, const char* nb = nullptr) {
    *n = count;
    off[0] = a, names[0] = na;
    off[1] = b, names[1] = nb;
    return true;
  };
  switch (t) {
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q8_0: return set(0, "d");
    case DType::Q4_1:
    case DType::Q5_1: return set(0, "d", 2, 2, "m");
    case DType::Q4_K:
    case DType::Q5_K: return set(0, "d", 2, 2, "dmin");
    case DType::Q2_K: return set(80, "d", 2, 82, "dmin");  // after scales[16] and qs[64]
    case DType::Q3_K: return set(108, "d");                // after hmask[32], qs[64], scales[12]
    case DType::Q6_K: return set(208, "d");                // after ql[128], qh[64], scales[16]
    default: return false;
  }
}

namespace {

// An f16 is NaN or infinite when its five exponent bits are all ones.
inline bool f16_not_finite(uint16_t h) { return (h & 0x7C00u) == 0x7C00u; }

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);  // little-endian host (as the whole loader assumes)
  return v;
}

// Whether any of `n_blocks` blocks of `stride` bytes has a non-finite f16 at byte `off`. Branch-free so the
// loop runs at memory speed: the exponent bits are and-ed with the mask and the "all ones" test is folded
// into one accumulator.
bool any_not_finite(const uint8_t* p, uint64_t n_blocks, uint32_t stride, uint32_t off) {
  p += off;
  uint32_t bad = 0;
  uint64_t b = 0;
  for (; b + 4 <= n_blocks; b += 4) {
    const uint32_t e0 = load_u16(p) & 0x7C00u, e1 = load_u16(p + stride) & 0x7C00u;
    const uint32_t e2 = load_u16(p + 2 * stride) & 0x7C00u, e3 = load_u16(p + 3 * stride) & 0x7C00u;
    bad |= (e0 == 0x7C00u) | (e1 == 0x7C00u) | (e2 == 0x7C00u) | (e3 == 0x7C00u);
    p += 4 * static_cast<size_t>(stride);
  }
  for (; b < n_blocks; ++b, p += stride) bad |= f16_not_finite(load_u16(p));
  return bad != 0;
}

}  // namespace

Status check_quant_scales(const TensorView& t, const std::string& path) {
  auto info = dtype_info(static_cast<uint32_t>(t.dtype));
  if (!info || info->block_bytes == 0 || !t.data) return Status();
  return check_quant_blocks(t, static_cast<const uint8_t*>(t.data), 0, t.nbytes / info->block_bytes, path);
}

Status check_quant_blocks(const TensorView& t, const uint8_t* base, uint64_t first_block, uint64_t n_blocks,
                          const std::string& path) {
  int nf = 0;
  uint32_t off[2];
  const char* names[2];
  if (!quant_scale_fields(t.dtype, &nf, off, names)) return Status();
  auto info = dtype_info(static_cast<uint32_t>(t.dtype));
  if (!info || info->block_bytes == 0) return Status();
  const uint32_t stride = info->block_bytes;
  for (int f = 0; f < nf; ++f) {
    if (!any_not_finite(base, n_blocks, stride, off[f])) continue;
    for (uint64_t i = 0; i < n_blocks; ++i) {  // the rare path: find the first bad block
      const uint64_t b = first_block + i;
      const uint16_t h = load_u16(base + i * stride + off[f]);
      if (!f16_not_finite(h)) continue;
      const uint64_t per_row = static_cast<uint64_t>(t.cols()) / info->block_elems;
      char hex[8];
      std::snprintf(hex, sizeof hex, "%04X", h);
      return error(path + ": tensor '" + t.name + "' (" + std::string(dtype_name(t.dtype)) + "): block " +
                   std::to_string(b) + " (row " + std::to_string(per_row ? b / per_row : 0) + ", block " +
                   std::to_string(per_row ? b % per_row : b) + " of the row) has a non-finite scale " +
                   names[f] + " = " + ((h & 0x03FFu) ? "nan" : "inf") + " (f16 0x" + hex +
                   "): the file is corrupted");
    }
  }
  return Status();
}

}  // namespace tern
