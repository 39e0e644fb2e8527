// Element types of tensors. The numeric ids are GGUF's (ggml_type), so a GGUF tensor type maps 1:1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tern {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct DTypeInfo {
  std::string_view name;
  uint32_t block_elems;  // elements per block (1 for plain types)
  uint32_t block_bytes;  // bytes per block
};

// Layout facts for a GGUF type id; nullopt for ids this build does not know at all.
std::optional<DTypeInfo> dtype_info(uint32_t ggml_type);
std::string_view dtype_name(DType t);

// Bytes taken by one row of `n` elements, or 0 if n is not a whole number of blocks.
size_t row_bytes(DType t, uint64_t n);

// Types the compute path can read: plain floats and every type core/quant.h can dequantize. Other known
// ids (Q8_1, Q8_K, integer types) are rejected by loaders with a message naming the tensor.
bool dtype_is_supported(DType t);

// IEEE half and bfloat16 conversions (round to nearest even on the way down).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
inline float bf16_to_f32(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
uint16_t f32_to_bf16(float f);

}  // namespace tern
