// The CPU backend's inner kernels: dot products of one weight row with one activation row, one table of
// function pointers per instruction set. cpu_backend.cpp picks a table at run time (runtime dispatch; the
// library is built without -march), the SIMD tables live in files whose functions carry target attributes.
#pragma once

#include <cstdint>

#include "backend/cpu/cpu_backend.h"

namespace tern::cpu {

constexpr int kQ8XBlock = 32;

// An activation block for the integer dot products: 32 values quantized to int8 with one f32 scale,
// qs = round(x / d) with d = max|x| / 127, and sum = d * sum(qs) (the block's sum as seen by the codes,
// used by types with an offset such as Q4_1 and Q4_K).
struct BlockQ8X {
  float d;
  float sum;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8X) == 40);

// Quantizes n (a multiple of 32) floats into n / 32 blocks.
void quantize_row_q8x(const float* x, BlockQ8X* out, int64_t n);

struct Kernels {
  // Float weights against f32 activations; n elements.
  float (*dot_f32)(const float* w, const float* x, int64_t n);
  float (*dot_f16)(const uint16_t* w, const float* x, int64_t n);
  float (*dot_bf16)(const uint16_t* w, const float* x, int64_t n);
  // Quantized weights (n_blocks blocks of 32 elements) against quantized activations.
  float (*dot_q8_0)(const void* w, const BlockQ8X* x, int64_t n_blocks);
  float (*dot_q4_0)(const void* w, const BlockQ8X* x, int64_t n_blocks);
  float (*dot_q4_1)(const void* w, const BlockQ8X* x, int64_t n_blocks);
  // Element-wise helpers of attention and the KV cache: f16 <-> f32 rows (round to nearest even), and
  // y += a * x.
  void (*f16_to_f32)(const uint16_t* src, float* dst, int64_t n);
  void (*f32_to_f16)(const float* src, uint16_t* dst, int64_t n);
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  // Query rows q[0 .. rows) against one attention tile of at most 64 keys (k[j], v[j]: hd floats each, hd a
  // multiple of 16 up to 256), row r seeing the tile's first n[r] >= 1 keys, with the online softmax's
  // running max m[r], sum l[r] and output o + r * hd: s_j = (q . k_j) * scale, m' = max(m, s_j),
  // o <- o e^(m - m') + sum_j e^(s_j - m') v_j, likewise l. A row's arithmetic is the same whatever other
  // rows share the call. kt is scratch for 64 * hd floats, 64-byte aligned. Null where an ISA has no fused
  // form; attention.cpp does the same row by row with dot_f32 and axpy then and for other widths.
  void (*attend)(const float* const* q, const int* n, int rows, const float* const* k, const float* const* v,
                 int hd, float scale, float* kt, float* m, float* l, float* o);
  // gate[i] <- gate[i] / (1 + e^-gate[i]) * up[i] over n values (SiLU times up; the AVX-512 form with its
  // own exp, within a few ulp of the scalar one).
  void (*silu_mul)(float* gate, const float* up, int64_t n);
};

// The scalar SiLU-times-up, the reference backend's formula (the scalar and AVX2 tables use it).
void silu_mul_scalar(float* gate, const float* up, int64_t n);

// The AVX-512 table's attend (attend_avx512.cpp).
void attend_avx512(const float* const* q, const int* n, int rows, const float* const* k, const float* const* v,
                   int hd, float scale, float* kt, float* m, float* l, float* o);

const Kernels& scalar_kernels();
const Kernels& avx2_kernels();    // requires avx2, fma, f16c
const Kernels& avx512_kernels();  // requires avx512f/bw/vl/vnni (and avx2, fma, f16c)

}  // namespace tern::cpu
