// AVX2 + FMA + F16C kernels. Every function here carries the target attribute, so the file compiles without
// -mavx2 and the backend calls these only after checking the CPU (cpu_backend.cpp).
// Integer dots use the maddubs pattern: _mm256_maddubs_epi16 multiplies unsigned by signed bytes and adds
// adjacent pairs into int16. With weights in [0, 15] (Q4) the pairs are at most 2 * 15 * 127; for signed
// Q8_0 weights the sign trick (|w| as the unsigned operand, x with w's sign as the signed one) keeps the
// product the same and the pairs within 2 * 128 * 127 = 32512 < 32767, so nothing saturates.
#include <immintrin.h>

#include "backend/cpu/cpu_kernels.h"
#include "core/dtype.h"
#include "core/quant.h"

#define TERN_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace tern::cpu {

namespace {

// One IEEE half to float with the F16C instruction (no call into core/dtype.cpp).
TERN_AVX2 inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

TERN_AVX2 inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

TERN_AVX2 float dot_f32(const float* w, const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
  float acc = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < n; ++i) acc += w[i] * x[i];
  return acc;
}

TERN_AVX2 float dot_f16(const uint16_t* w, const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8)));
    a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), a1);
  }
  float acc = hsum8(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) acc += h2f(w[i]) * x[i];
  return acc;
}

// bf16 is the top half of an f32: widen to 32 bits and shift left 16 (exact).
TERN_AVX2 float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i));
    const __m256 w0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(u)), 16));
    const __m256 w1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(u, 1)), 16));
    a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), a1);
  }
  float acc = hsum8(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) acc += bf16_to_f32(w[i]) * x[i];
  return acc;
}

// 32 unsigned bytes times 32 signed bytes, summed in groups of four into 8 int32 lanes, as floats.
TERN_AVX2 inline __m256 dot_u8s8(__m256i u, __m256i s) {
  const __m256i p16 = _mm256_maddubs_epi16(u, s);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

// The 16 packed bytes of a Q4 block as 32 codes in element order: low nibbles (0..15), high (16..31).
TERN_AVX2 inline __m256i unpack_q4(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
}

TERN_AVX2 float dot_q8_0(const void* w, const BlockQ8X* x, int64_t nb) {
  const BlockQ8_0* wb = static_cast<const BlockQ8_0*>(w);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb[b].qs));
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    const __m256 p = dot_u8s8(_mm256_sign_epi8(qw, qw), _mm256_sign_epi8(qx, qw));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(wb[b].d) * x[b].d), p, acc);
  }
  return hsum8(acc);
}

TERN_AVX2 float dot_q4_0(const void* w, const BlockQ8X* x, int64_t nb) {
  const BlockQ4_0* wb = static_cast<const BlockQ4_0*>(w);
  __m256 acc = _mm256_setzero_ps();
  float off = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const float dw = h2f(wb[b].d);
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(dw * x[b].d), dot_u8s8(unpack_q4(wb[b].qs), qx), acc);
    off += dw * x[b].sum;
  }
  return hsum8(acc) - 8.0f * off;
}

TERN_AVX2 float dot_q4_1(const void* w, const BlockQ8X* x, int64_t nb) {
  const BlockQ4_1* wb = static_cast<const BlockQ4_1*>(w);
  __m256 acc = _mm256_setzero_ps();
  float off = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(wb[b].d) * x[b].d), dot_u8s8(unpack_q4(wb[b].qs), qx), acc);
    off += h2f(wb[b].m) * x[b].sum;
  }
  return hsum8(acc) + off;
}

TERN_AVX2 void f16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < n; ++i) dst[i] = h2f(src[i]);
}

TERN_AVX2 void f32_to_f16(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) dst[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

TERN_AVX2 void axpy(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

constexpr Kernels kAvx2 = {dot_f32,    dot_f16,    dot_bf16, dot_q8_0, dot_q4_0,        dot_q4_1,
                           f16_to_f32, f32_to_f16, axpy,     nullptr,  silu_mul_scalar};

}  // namespace

const Kernels& avx2_kernels() { return kAvx2; }

}  // namespace tern::cpu
