// What every AVX-512 file of the CPU backend shares: the target attribute its functions carry (the library
// is built without -march; cpu_backend.cpp picks these paths only on CPUs that have the features), the
// mask of the first `left` of 16 lanes and a 16-lane exp.
#pragma once

#include <immintrin.h>

#include <cstdint>

// GCC 12's avx512fintrin.h builds "undefined" vectors by self-initialisation (__m512 __Y = __Y;), which
// -Wuninitialized reports at every inlined use (GCC bug 105593, fixed in GCC 13). The warning is about the
// header's idiom, not this code's.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define TERN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

namespace tern::cpu {

TERN_AVX512 inline __mmask16 tail_mask(int64_t left) {
  return static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1u);
}

// e^x in each lane, within about 2 ulp of the correctly rounded value for x in [-87, 88] (tested against
// std::exp in tests/ops). x = n ln2 + r with n = round(x / ln2) and |r| <= ln2 / 2, ln2 split in a high part
// exact in fp32 times any n of this range and a low correction; e^r by its Taylor series to r^7 (the next
// term is below 6e-9 relative, under half an ulp); 2^n applied by vscalefps. Inputs are clamped to
// [-104, 88.7], so e^x underflows to 0 below and reaches about 3.3e38 at the top instead of overflowing.
TERN_AVX512 inline __m512 exp512(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.7f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

}  // namespace tern::cpu
