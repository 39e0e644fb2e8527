// Quantized tensor blocks: the ggml block layouts, row dequantization and row quantization.
//
// A quantized row of n elements is n / block_elems blocks back to back; each block holds its own scale(s)
// (IEEE half, stored as raw uint16 bits and read with f16_to_f32) and packed integer codes. All multi-byte
// fields are little-endian. The byte layouts and the dequantization formulas below are ggml's, so GGUF files
// written by llama.cpp read back exactly; `tests/unit/test_quant.cpp` checks every type against the `gguf`
// Python package's independent dequantizer, bit for bit.
//
// Notation: element i of a block is x[i]; "nibble lo/hi" is (byte & 0xF) / (byte >> 4).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/dtype.h"

namespace tern {

constexpr int kQK = 32;    // elements per block of the simple types (QK4_0 = QK4_1 = QK5_0 = QK5_1 = QK8_0)
constexpr int kQK_K = 256; // elements per super-block of the K-quants

// Q4_0: x[i] = d * (q[i] - 8), q in [0, 15].
// qs[j] holds q[j] in its low nibble and q[j + 16] in its high nibble (j = 0..15).
struct BlockQ4_0 {
  uint16_t d;           // f16 scale
  uint8_t qs[kQK / 2];  // 4-bit codes
};
static_assert(sizeof(BlockQ4_0) == 18);

// Q4_1: x[i] = d * q[i] + m, q in [0, 15]; nibbles packed as in Q4_0.
struct BlockQ4_1 {
  uint16_t d;  // f16 scale
  uint16_t m;  // f16 offset (the block minimum)
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

// Q5_0: x[i] = d * (q[i] - 16), q in [0, 31].
// The low 4 bits of q are packed as in Q4_0; bit 4 of q[i] is bit i of qh (read as a little-endian uint32).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];        // 5th bits, element i -> bit i
  uint8_t qs[kQK / 2];  // low 4 bits, element j lo nibble, j + 16 hi nibble
};
static_assert(sizeof(BlockQ5_0) == 22);

// Q5_1: x[i] = d * q[i] + m, q in [0, 31]; bits packed as in Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

// Q8_0: x[i] = d * qs[i], qs signed 8-bit.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34);

// Q2_K: 16 sub-blocks of 16 elements. x = (d * (sc & 0xF)) * q - (dmin * (sc >> 4)), q in [0, 3].
// scales[s] is sub-block s's 4-bit scale (low nibble) and 4-bit min (high nibble).
// Codes: each half of 128 elements uses 32 bytes of qs; element 32*k + l of the half (k = 0..3, l = 0..31)
// is bits (2k, 2k+1) of byte l of those 32. Sub-block s covers elements 16s .. 16s+15.
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;     // f16 super-block scale of the scales
  uint16_t dmin;  // f16 super-block scale of the mins
};
static_assert(sizeof(BlockQ2_K) == 84);

// Q3_K: 16 sub-blocks of 16 elements. x = (d * (s - 32)) * (q - 4*(1 - hbit)), with low 2 bits q as in Q2_K
// (bits (2k, 2k+1) of qs byte l within each 128-element half) and the high bit hbit of element e (e = 0..255)
// being bit (e / 32) of hmask[e % 32]; a clear high bit subtracts 4, so codes span [-4, 3].
// The 16 six-bit scales s are packed in 12 bytes: the low 4 bits of s[j] are the low nibble of byte j
// (j < 8) or the high nibble of byte j - 8 (j >= 8); the high 2 bits of s[j] are bits 2*(j/4), 2*(j/4)+1
// of byte 8 + j % 4.
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110);

// Q4_K: 8 sub-blocks of 32 elements. x = (d * sc[s]) * q - (dmin * m[s]), q in [0, 15], sc and m 6-bit.
// Codes: each 64-element chunk c (c = 0..3) uses qs[32c .. 32c+31]; element 64c + l is the low nibble of
// qs[32c + l] and element 64c + 32 + l its high nibble (l = 0..31). So sub-block 2c is the low nibbles,
// 2c+1 the high nibbles.
// Scales (12 bytes, the "k4" packing): for s < 4, sc[s] = scales[s] & 63 and m[s] = scales[s + 4] & 63;
// for s >= 4, sc[s] = (scales[s + 4] & 0xF) | ((scales[s - 4] >> 6) << 4) and
//             m[s]  = (scales[s + 4] >> 4)  | ((scales[s]     >> 6) << 4).
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// Q5_K: as Q4_K with a 5th bit: q = nibble + 16 * hbit, q in [0, 31]; the high bit of element 32s + l
// (sub-block s) is bit s of qh[l].
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

// Q6_K: 16 sub-blocks of 16 elements. x = (d * scales[s]) * (q - 32), q in [0, 63], scales signed 8-bit.
// Each 128-element half h uses ql[64h .. 64h+63] and qh[32h .. 32h+31]; for l = 0..31, the elements
// l, l+32, l+64, l+96 of the half have low 4 bits: ql[l] lo, ql[l+32] lo, ql[l] hi, ql[l+32] hi, and high
// 2 bits: bits (0,1), (2,3), (4,5), (6,7) of qh[l]. Sub-block s covers elements 16s .. 16s+15.
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// Scale and min (6 bits each) of sub-block j (0..7) from the 12-byte "k4" packing of Q4_K and Q5_K.
void unpack_scale_min_k4(const uint8_t* scales, int j, int& sc, int& m);

// Whether dequantize_row handles `t` (plain floats and the quantized types above).
bool can_dequantize(DType t);
// Whether quantize_row can produce `t` (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K).
bool can_quantize(DType t);

// Converts n elements (a whole number of blocks) of type t at `src` (any alignment) to fp32.
// Asserts can_dequantize(t) and n % block_elems == 0 (programmer errors).
void dequantize_row(DType t, const void* src, float* dst, int64_t n);

// Encodes n fp32 values (a whole number of blocks) as type t into row_bytes(t, n) bytes at `dst`.
// Asserts can_quantize(t) and n % block_elems == 0. The input must be finite; scales are stored as f16, so
// per-block magnitudes beyond f16 range (about 6.5e4 * 127 for Q8_0) are not representable.
// Q8_0, Q4_0, Q4_1 follow ggml's reference quantizers exactly (same bytes); Q4_K uses tern's own search for
// each sub-block's scale and min (see quant.cpp).
void quantize_row(DType t, const float* src, void* dst, int64_t n);

// "F32, F16, BF16, Q4_0, ..." — the types the compute path reads, for error messages.
std::string supported_dtypes_text();
// "F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K" — the types `tern quantize` produces.
std::string quantize_targets_text();
// A type from its name ("Q4_K", case-insensitive), if this build knows it.
std::optional<DType> dtype_from_name(std::string_view name);

}  // namespace tern
