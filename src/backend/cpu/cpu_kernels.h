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
  // One query row against n keys of an attention tile, with the online softmax's running max *m, sum *l
  // and output o (hd values): s_j = (q . k_j) * scale, m' = max(*m, s_j), o <- o e^(*m - m') +
  // sum_j e^(s_j - m') v_j, likewise *l, for n <= 64 keys and hd a multiple of 16 up to 256. Null where an
  // ISA has no fused form; attention.cpp does the same with dot_f32 and axpy then and for other widths.
  void (*attend)(const float* q, const float* const* k, const float* const* v, int n, int hd, float scale,
                 float* m, float* l, float* o);
  // gate[i] <- gate[i] / (1 + e^-gate[i]) * up[i] over n values (SiLU times up; the AVX-512 form with its
  // own exp, within a few ulp of the scalar one).
  void (*silu_mul)(float* gate, const float* up, int64_t n);
};

// The scalar SiLU-times-up, the reference backend's formula (the scalar and AVX2 tables use it).
void silu_mul_scalar(float* gate, const float* up, int64_t n);

const Kernels& scalar_kernels();
const Kernels& avx2_kernels();    // requires avx2, fma, f16c
const Kernels& avx512_kernels();  // requires avx512f/bw/vl/vnni (and avx2, fma, f16c)

}  // namespace tern::cpu
