// What every AVX-512 file of the CPU backend shares: the target attribute its functions carry (the library
// is built without -march; cpu_backend.cpp picks these paths only on CPUs that have the features) and the
// mask of the first `left` of 16 lanes.
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

}  // namespace tern::cpu
