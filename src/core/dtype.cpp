#include "core/dtype.h"

#include <cmath>
#include <cstring>

#include "core/quant.h"

namespace tern {

std::optional<DTypeInfo> dtype_info(uint32_t t) {
  // Block sizes from the ggml block layouts (QK4_0 = QK8_0 = 32, QK_K = 256).
  switch (t) {
    case 0: return DTypeInfo{"F32", 1, 4};
    case 1: return DTypeInfo{"F16", 1, 2};
    case 2: return DTypeInfo{"Q4_0", 32, 18};
    case 3: return DTypeInfo{"Q4_1", 32, 20};
    case 6: return DTypeInfo{"Q5_0", 32, 22};
    case 7: return DTypeInfo{"Q5_1", 32, 24};
    case 8: return DTypeInfo{"Q8_0", 32, 34};
    case 9: return DTypeInfo{"Q8_1", 32, 36};
    case 10: return DTypeInfo{"Q2_K", 256, 84};
    case 11: return DTypeInfo{"Q3_K", 256, 110};
    case 12: return DTypeInfo{"Q4_K", 256, 144};
    case 13: return DTypeInfo{"Q5_K", 256, 176};
    case 14: return DTypeInfo{"Q6_K", 256, 210};
    case 15: return DTypeInfo{"Q8_K", 256, 292};
    case 24: return DTypeInfo{"I8", 1, 1};
    case 25: return DTypeInfo{"I16", 1, 2};
    case 26: return DTypeInfo{"I32", 1, 4};
    case 27: return DTypeInfo{"I64", 1, 8};
    case 28: return DTypeInfo{"F64", 1, 8};
    case 30: return DTypeInfo{"BF16", 1, 2};
    default: return std::nullopt;
  }
}

std::string_view dtype_name(DType t) {
  auto info = dtype_info(static_cast<uint32_t>(t));
  return info ? info->name : std::string_view("?");
}

size_t row_bytes(DType t, uint64_t n) {
  auto info = dtype_info(static_cast<uint32_t>(t));
  if (!info || n % info->block_elems != 0) return 0;
  return static_cast<size_t>(n / info->block_elems) * info->block_bytes;
}

// Plain floats and every type core/quant.cpp dequantizes.
bool dtype_is_supported(DType t) { return can_dequantize(t); }


float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal half: value = mant * 2^-24
      float f = std::ldexp(static_cast<float>(mant), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);  // inf / nan
  if (abs >= 0x477ff000u) return sign | 0x7c00;                                    // overflow -> inf
  if (abs < 0x38800000u) {  // below the smallest normal half: round to a subnormal
    float a;
    std::memcpy(&a, &abs, 4);
    // nearbyint uses the current rounding mode (nearest-even by default).
    return sign | static_cast<uint16_t>(std::nearbyint(a * 16777216.0f));
  }
  // Normal: drop 13 mantissa bits with round-to-nearest-even.
  uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u);
  return sign | static_cast<uint16_t>((r - 0x38000000u) >> 13);
}

uint16_t f32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // quiet nan
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

}  // namespace tern
