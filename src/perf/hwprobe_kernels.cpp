#include "perf/hwprobe_kernels.h"

#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TERN_X86 1
#endif

namespace tern::perf::kernels {

// Each FLOP loop keeps 12 independent accumulators: enough chains to cover the latency of an FMA (4 cycles)
// or a dot-product instruction on two ports, so the loop runs at the issue rate, not the latency. The inner
// loop is unrolled by pragma so that the accumulators live in registers (a loop over an array in memory
// would measure loads and stores instead). The empty asm statement makes one multiplicand opaque to the
// compiler each iteration, so it cannot fold the loop.

#if TERN_X86

#define TERN_OPAQUE(v) __asm__ volatile("" : "+x"(v))

namespace {

// Baseline x86-64: SSE scalar multiply then add (what plain C compiles to without -mfma): 2 FLOPs per pair.
float run_scalar(int64_t iters) {
  __m128 a = _mm_set_ss(0.9999f);
  const __m128 b = _mm_set_ss(1e-4f);
  __m128 acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm_set_ss(1.0f + 0.01f * k);
  for (int64_t i = 0; i < iters; ++i) {
    TERN_OPAQUE(a);
#pragma GCC unroll 12
    for (int k = 0; k < 12; ++k) acc[k] = _mm_add_ss(_mm_mul_ss(acc[k], a), b);
  }
  float s = 0;
  for (int k = 0; k < 12; ++k) s += _mm_cvtss_f32(acc[k]);
  return s;
}

__attribute__((target("avx2,fma"))) float run_avx2_fma(int64_t iters) {
  __m256 a = _mm256_set1_ps(0.9999f);
  const __m256 b = _mm256_set1_ps(1e-4f);
  __m256 acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm256_set1_ps(1.0f + 0.01f * k);
  for (int64_t i = 0; i < iters; ++i) {
    __asm__ volatile("" : "+x"(a));
#pragma GCC unroll 12
    for (int k = 0; k < 12; ++k) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
  }
  __m256 s = acc[0];
  for (int k = 1; k < 12; ++k) s = _mm256_add_ps(s, acc[k]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0] + out[7];
}

// (GCC 12's _mm512_reduce_add_ps trips -Wuninitialized inside its own header; a store and a loop do not.)
__attribute__((target("avx512f"))) float sum_lanes(__m512 v) {
  float lanes[16];
  _mm512_storeu_ps(lanes, v);
  float s = 0;
  for (float x : lanes) s += x;
  return s;
}

__attribute__((target("avx512f"))) float run_avx512_fma(int64_t iters) {
  __m512 a = _mm512_set1_ps(0.9999f);
  const __m512 b = _mm512_set1_ps(1e-4f);
  __m512 acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm512_set1_ps(1.0f + 0.01f * k);
  for (int64_t i = 0; i < iters; ++i) {
    __asm__ volatile("" : "+v"(a));
#pragma GCC unroll 12
    for (int k = 0; k < 12; ++k) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
  }
  __m512 s = acc[0];
  for (int k = 1; k < 12; ++k) s = _mm512_add_ps(s, acc[k]);
  return sum_lanes(s);
}

// VDPBF16PS: each of 16 fp32 lanes adds the products of two bf16 pairs: 4 FLOPs per lane, 64 per instruction.
__attribute__((target("avx512f,avx512bf16"))) float run_avx512_bf16(int64_t iters) {
  __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
  const __m512bh y = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
  __m512 acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm512_set1_ps(0.01f * k);
  for (int64_t i = 0; i < iters; ++i) {
    __asm__ volatile("" : "+v"(x));
#pragma GCC unroll 12
    for (int k = 0; k < 12; ++k) acc[k] = _mm512_dpbf16_ps(acc[k], x, y);
  }
  __m512 s = acc[0];
  for (int k = 1; k < 12; ++k) s = _mm512_add_ps(s, acc[k]);
  return sum_lanes(s);
}

// VPDPBUSD: each of 16 int32 lanes adds four u8 x s8 products: 8 ops per lane, 128 per instruction.
__attribute__((target("avx512f,avx512vnni"))) float run_avx512_vnni(int64_t iters) {
  __m512i x = _mm512_set1_epi8(3);
  const __m512i y = _mm512_set1_epi8(-2);
  __m512i acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = _mm512_set1_epi32(k);
  for (int64_t i = 0; i < iters; ++i) {
    __asm__ volatile("" : "+v"(x));
#pragma GCC unroll 12
    for (int k = 0; k < 12; ++k) acc[k] = _mm512_dpbusd_epi32(acc[k], x, y);
  }
  __m512i s = acc[0];
  for (int k = 1; k < 12; ++k) s = _mm512_add_epi32(s, acc[k]);
  int32_t lanes[16];
  _mm512_storeu_si512(lanes, s);
  int64_t total = 0;
  for (int32_t v : lanes) total += v;
  return static_cast<float>(total);
}

bool has_sse2() {
  return true;
}
bool has_avx2_fma() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
bool has_avx512f() {
  return __builtin_cpu_supports("avx512f");
}
bool has_avx512_bf16() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
}
bool has_avx512_vnni() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
}

__attribute__((target("avx2"))) uint64_t read_avx2(const uint8_t* p, size_t bytes) {
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  // A software prefetch 32 KiB ahead, as tern's decode kernels issue: without it the hardware prefetchers
  // alone leave 10-15% of the bandwidth those kernels reach unmeasured.
  for (size_t i = 0; i < bytes; i += 128) {
    _mm_prefetch(reinterpret_cast<const char*>(p + i + 32768), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p + i + 32768 + 64), _MM_HINT_T0);
    s0 = _mm256_add_epi64(s0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    s1 = _mm256_add_epi64(s1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    s2 = _mm256_add_epi64(s2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    s3 = _mm256_add_epi64(s3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  s0 = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
  uint64_t out[4];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), s0);
  return out[0] + out[1] + out[2] + out[3];
}

}  // namespace

const std::vector<FlopKernel>& flop_kernels() {
  static const std::vector<FlopKernel> k = {
      {"scalar_f32", "f32", "SSE scalar mulss + addss (baseline x86-64 code)", 12 * 2.0, has_sse2,
       run_scalar},
      {"avx2_fma_f32", "f32", "AVX2 vfmadd231ps ymm, 8 lanes x 2 FLOPs", 12 * 8 * 2.0, has_avx2_fma,
       run_avx2_fma},
      {"avx512_fma_f32", "f32", "AVX-512 vfmadd231ps zmm, 16 lanes x 2 FLOPs", 12 * 16 * 2.0, has_avx512f,
       run_avx512_fma},
      {"avx512_bf16_dot", "bf16", "AVX-512 BF16 vdpbf16ps zmm, 16 lanes x 2 pairs x 2 FLOPs", 12 * 64.0,
       has_avx512_bf16, run_avx512_bf16},
      {"avx512_vnni_int8", "int8", "AVX-512 VNNI vpdpbusd zmm, 16 lanes x 4 u8*s8 x 2 ops", 12 * 128.0,
       has_avx512_vnni, run_avx512_vnni},
  };
  return k;
}

std::vector<std::string> cpu_isa() {
  std::vector<std::string> out;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse2")) out.push_back("sse2");
  if (__builtin_cpu_supports("avx")) out.push_back("avx");
  if (__builtin_cpu_supports("avx2")) out.push_back("avx2");
  if (__builtin_cpu_supports("fma")) out.push_back("fma");
  if (__builtin_cpu_supports("f16c")) out.push_back("f16c");
  if (__builtin_cpu_supports("avx512f")) out.push_back("avx512f");
  if (__builtin_cpu_supports("avx512bw")) out.push_back("avx512bw");
  if (__builtin_cpu_supports("avx512vl")) out.push_back("avx512vl");
  if (__builtin_cpu_supports("avx512bf16")) out.push_back("avx512bf16");
  if (__builtin_cpu_supports("avx512vnni")) out.push_back("avx512vnni");
  return out;
}

uint64_t read_stream(const uint8_t* p, size_t bytes) {
  if (__builtin_cpu_supports("avx2")) return read_avx2(p, bytes);
  uint64_t s = 0;
  const uint64_t* q = reinterpret_cast<const uint64_t*>(p);
  for (size_t i = 0; i < bytes / 8; ++i) s += q[i];
  return s;
}

#else  // not x86: a portable scalar loop only.

namespace {
float run_portable(int64_t iters) {
  volatile float a_in = 0.9999f;
  const float a = a_in, b = 1e-4f;
  float acc[12];
  for (int k = 0; k < 12; ++k) acc[k] = 1.0f + 0.01f * k;
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 12
    for (int k = 0; k < 12; ++k) acc[k] = acc[k] * a + b;
  float s = 0;
  for (float v : acc) s += v;
  return s;
}
bool always() {
  return true;
}
}  // namespace

const std::vector<FlopKernel>& flop_kernels() {
  static const std::vector<FlopKernel> k = {
      {"scalar_f32", "f32", "portable C multiply-add (compiler's choice of instructions)", 12 * 2.0, always,
       run_portable},
  };
  return k;
}

std::vector<std::string> cpu_isa() {
  return {};
}

uint64_t read_stream(const uint8_t* p, size_t bytes) {
  uint64_t s = 0;
  const uint64_t* q = reinterpret_cast<const uint64_t*>(p);
  for (size_t i = 0; i < bytes / 8; ++i) s += q[i];
  return s;
}

#endif

void copy_stream(double* dst, const double* src, size_t n) {
  std::memcpy(dst, src, n * sizeof(double));
}

void triad_stream(double* a, const double* b, const double* c, double s, size_t n) {
  for (size_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}

}  // namespace tern::perf::kernels
