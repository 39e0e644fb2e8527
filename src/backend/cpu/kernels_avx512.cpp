// AVX-512 kernels (F, BW, VL, VNNI; Zen 4, Ice Lake and later). Float dots run 16 lanes wide with masked
// tails; integer dots use VNNI's vpdpbusd (unsigned x signed bytes, four products summed straight into an
// int32 lane, so no int16 intermediate that could saturate). Signed Q8_0 weights use the sign trick: |w| as
// the unsigned operand and x carrying w's sign as the signed one, so |w| * sign(w) * x = w * x.
#include "backend/cpu/avx512.h"

#include <cmath>

#include "backend/cpu/cpu_kernels.h"
#include "core/quant.h"

namespace tern::cpu {

namespace {

TERN_AVX512 inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

TERN_AVX512 float dot_f32(const float* w, const float* x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, x + i), a0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

TERN_AVX512 float dot_f16(const uint16_t* w, const float* x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 wf = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + i));
    a0 = _mm512_fmadd_ps(wf, _mm512_maskz_loadu_ps(m, x + i), a0);
  }
  return _mm512_reduce_add_ps(a0);
}

// bf16 is the top half of an f32: widen to 32 bits and shift left 16 (exact, no rounding of x).
TERN_AVX512 float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512i u = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, w + i));
    a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(u, 16)), _mm512_maskz_loadu_ps(m, x + i), a0);
  }
  return _mm512_reduce_add_ps(a0);
}

TERN_AVX512 inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

TERN_AVX512 inline __m256 dot_u8s8(__m256i u, __m256i s) {
  return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s));
}

TERN_AVX512 inline __m256i unpack_q4(const uint8_t* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
}

// Two blocks per step in one zmm register: the int32 lanes 0..7 hold block b's four-byte group sums and
// lanes 8..15 block b + 1's, scaled by a vector holding each block's dw * dx in its half. A final odd block
// goes through the 256-bit form.
TERN_AVX512 inline __m512 scale2(float s0, float s1) {
  return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(s0), _mm512_set1_ps(s1));
}

TERN_AVX512 inline __m512i load_x2(const BlockQ8X* x) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[0].qs))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[1].qs)), 1);
}

// Codes of two Q4 blocks in element order: [lo(b), hi(b), lo(b+1), hi(b+1)] as four 16-byte lanes.
TERN_AVX512 inline __m512i unpack_q4_x2(const uint8_t* qs0, const uint8_t* qs1) {
  const __m256i q = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs1)),
                                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs0)));
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
  // [lo(b), lo(b+1), hi(b), hi(b+1)] -> lanes (0, 2, 1, 3).
  const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  return _mm512_shuffle_i64x2(w, w, _MM_SHUFFLE(3, 1, 2, 0));
}

TERN_AVX512 inline __m512 dot_u8s8_x2(__m512i u, __m512i s) {
  return _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s));
}

TERN_AVX512 float dot_q8_0(const void* w, const BlockQ8X* x, int64_t nb) {
  const BlockQ8_0* wb = static_cast<const BlockQ8_0*>(w);
  __m512 acc2 = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m512i qw = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb[b].qs))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb[b + 1].qs)), 1);
    const __m512i qx = load_x2(x + b);
    // Sign trick: |w| (unsigned) times x carrying w's sign.
    const __m512i aw = _mm512_abs_epi8(qw);
    const __m512i sx = _mm512_mask_sub_epi8(qx, _mm512_movepi8_mask(qw), _mm512_setzero_si512(), qx);
    acc2 = _mm512_fmadd_ps(scale2(h2f(wb[b].d) * x[b].d, h2f(wb[b + 1].d) * x[b + 1].d), dot_u8s8_x2(aw, sx), acc2);
  }
  __m256 acc = _mm256_setzero_ps();
  for (; b < nb; ++b) {
    const __m256i qw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb[b].qs));
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    const __m256 p = dot_u8s8(_mm256_sign_epi8(qw, qw), _mm256_sign_epi8(qx, qw));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(wb[b].d) * x[b].d), p, acc);
  }
  return _mm512_reduce_add_ps(acc2) + hsum8(acc);
}

// Q4_0 and Q4_1 share the code products; they differ in the per-block offset term (see kernels_scalar.cpp):
// Q4_0 adds -8 * dw * (dx * sum qx), Q4_1 adds m * (dx * sum qx).
template <bool kQ4_1, class Block>
TERN_AVX512 inline float dot_q4(const Block* wb, const BlockQ8X* x, int64_t nb) {
  __m512 acc2 = _mm512_setzero_ps();
  float off0 = 0.0f, off1 = 0.0f;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const float d0 = h2f(wb[b].d), d1 = h2f(wb[b + 1].d);
    const __m512 p = dot_u8s8_x2(unpack_q4_x2(wb[b].qs, wb[b + 1].qs), load_x2(x + b));
    acc2 = _mm512_fmadd_ps(scale2(d0 * x[b].d, d1 * x[b + 1].d), p, acc2);
    if constexpr (kQ4_1) {
      off0 += h2f(wb[b].m) * x[b].sum;
      off1 += h2f(wb[b + 1].m) * x[b + 1].sum;
    } else {
      off0 += d0 * x[b].sum;
      off1 += d1 * x[b + 1].sum;
    }
  }
  __m256 acc = _mm256_setzero_ps();
  for (; b < nb; ++b) {
    const float d = h2f(wb[b].d);
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d * x[b].d), dot_u8s8(unpack_q4(wb[b].qs), qx), acc);
    if constexpr (kQ4_1) off0 += h2f(wb[b].m) * x[b].sum;
    else off0 += d * x[b].sum;
  }
  const float dots = _mm512_reduce_add_ps(acc2) + hsum8(acc);
  return kQ4_1 ? dots + (off0 + off1) : dots - 8.0f * (off0 + off1);
}

TERN_AVX512 float dot_q4_0(const void* w, const BlockQ8X* x, int64_t nb) {
  return dot_q4<false>(static_cast<const BlockQ4_0*>(w), x, nb);
}

TERN_AVX512 float dot_q4_1(const void* w, const BlockQ8X* x, int64_t nb) {
  return dot_q4<true>(static_cast<const BlockQ4_1*>(w), x, nb);
}

TERN_AVX512 void f16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + i)));
  }
}

TERN_AVX512 void f32_to_f16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm256_mask_storeu_epi16(dst + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i), _MM_FROUND_TO_NEAREST_INT));
  }
}

TERN_AVX512 void axpy(float a, const float* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

// gate <- gate / (1 + e^-gate) * up, 16 lanes at a time with a masked tail (so every element goes through
// the same instructions, wherever it sits).
TERN_AVX512 void silu_mul(float* gate, const float* up, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mk = tail_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(mk, gate + i);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 r = _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)), _mm512_maskz_loadu_ps(mk, up + i));
    _mm512_mask_storeu_ps(gate + i, mk, r);
  }
}

constexpr Kernels kAvx512 = {dot_f32,    dot_f16,    dot_bf16, dot_q8_0, dot_q4_0, dot_q4_1,
                             f16_to_f32, f32_to_f16, axpy,     attend_avx512, silu_mul};

}  // namespace

const Kernels& avx512_kernels() { return kAvx512; }

}  // namespace tern::cpu
