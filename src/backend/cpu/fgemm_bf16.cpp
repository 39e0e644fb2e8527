// The float GEMM's bf16 mode with AVX512_BF16 (see fgemm_bf16.h).
#include "backend/cpu/avx512.h"

#include "backend/cpu/fgemm_bf16.h"

// TERN_AVX512 plus AVX512_BF16 (vdpbf16ps, vcvtne2ps2bf16), which only the bf16 mode requires: the rest of
// the AVX-512 paths run on CPUs without it.
#define TERN_AVX512_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,avx2,fma,f16c")))

namespace tern::cpu {

namespace {

constexpr int kRows = 4;         // R: weight rows per tile
constexpr int kTokens = 6;       // T: tokens per tile
// Elements of the reduction per pass (a multiple of 32): a token tile's 6 rows of up to 4 KiB each, read by
// every row tile of the block. Longer than fgemm's: fewer parkings of the accumulators. In a 2048 x 2048 x 256
// product on one core (weights in huge pages), chunks of 512, 1024 and 2048 ran at about 161, 173 and 181
// GFLOP/s, 4096 no better (2026-11-21, a shared machine: best of 10 runs each).
constexpr int64_t kChunk = 2048;

// The first `left` of 16 lanes, none when left <= 0 (the padding past a row's end).
TERN_AVX512_BF16 inline __mmask16 lanes(int64_t left) { return left <= 0 ? 0 : tail_mask(left); }

TERN_AVX512_BF16 inline __m512bh load_bh(const uint16_t* p) {
  return reinterpret_cast<__m512bh>(_mm512_loadu_si512(p));
}

// acc[R][T] (parked in `park`) += rows x tokens over elements [k0, k1) (multiples of 32); rows and tokens
// are ld elements apart.
template <int R, int T>
TERN_AVX512_BF16 void tile(const uint16_t* w, const uint16_t* x, int64_t ld, int64_t k0, int64_t k1,
                           __m512* park) {
  __m512 acc[R][T];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_load_ps(&park[r * T + t]);
  for (int64_t i = k0; i < k1; i += 32) {
    __m512bh wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = load_bh(w + r * ld + i);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const __m512bh xv = load_bh(x + t * ld + i);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv[r], xv);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) _mm512_store_ps(&park[r * T + t], acc[r][t]);
}

template <int R>
TERN_AVX512_BF16 void tile_t(int T, const uint16_t* w, const uint16_t* x, int64_t ld, int64_t k0, int64_t k1,
                             __m512* park) {
  switch (T) {
    case 1: tile<R, 1>(w, x, ld, k0, k1, park); break;
    case 2: tile<R, 2>(w, x, ld, k0, k1, park); break;
    case 3: tile<R, 3>(w, x, ld, k0, k1, park); break;
    case 4: tile<R, 4>(w, x, ld, k0, k1, park); break;
    case 5: tile<R, 5>(w, x, ld, k0, k1, park); break;
    default: tile<R, 6>(w, x, ld, k0, k1, park); break;
  }
}

// The 16 lane sums of v[0..16), in order, in one vector. Each level adds pairs of lanes of the same input
// vector, so every sum is the same tree, ((l0 + l2) + (l1 + l3)) within each 128-bit lane and then
// ((L0 + L1) + (L2 + L3)) across them, whatever the other vectors hold: a result does not depend on its
// neighbours. About 3 instructions per vector against about 9 for one _mm512_reduce_add_ps each.
TERN_AVX512_BF16 inline __m512 sum16(const __m512* v) {
  __m512 a[8], b[4], c[2];
  for (int i = 0; i < 8; ++i)  // lanes [v0+v2, w0+w2, v1+v3, w1+w3] per 128 bits (v = v[2i], w = v[2i+1])
    a[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  for (int i = 0; i < 4; ++i) {  // per 128 bits: the sums of that lane of v[4i .. 4i+3]
    const __m512d x = _mm512_castps_pd(a[2 * i]), y = _mm512_castps_pd(a[2 * i + 1]);
    b[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
  for (int i = 0; i < 2; ++i)  // [L0+L1, L2+L3] of b[2i], then of b[2i+1]
    c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88), _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xDD));
  return _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], 0x88), _mm512_shuffle_f32x4(c[0], c[1], 0xDD));
}

}  // namespace

bool bgemm_cpu_supported() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
         __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

TERN_AVX512_BF16 void bgemm_pack_weights(DType t, const uint8_t* src, int64_t src_row_bytes, int64_t n_rows,
                                         int64_t n_in, uint16_t* dst) {
  const int64_t ld = bgemm_row_elems(n_in);
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint16_t* s = reinterpret_cast<const uint16_t*>(src + r * src_row_bytes);
    uint16_t* d = dst + r * ld;
    for (int64_t i = 0; i < ld; i += 16) {
      const __mmask16 m = lanes(n_in - i);  // the padding is zero
      const __m256i h = _mm256_maskz_loadu_epi16(m, s + i);
      // F16 -> fp32 is exact, so the one rounding is fp32 -> bf16, to nearest even.
      const __m256i b = t == DType::BF16 ? h : reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_cvtph_ps(h)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i), b);
    }
  }
}

TERN_AVX512_BF16 void bgemm_pack_x(const float* x, int64_t n_in, uint16_t* dst) {
  const int64_t ld = bgemm_row_elems(n_in);
  for (int64_t i = 0; i < ld; i += 32) {
    const __m512 lo = _mm512_maskz_loadu_ps(lanes(n_in - i), x + i);
    const __m512 hi = _mm512_maskz_loadu_ps(lanes(n_in - i - 16), x + i + 16);
    // Elements i..i+15 from the second operand, i+16..i+31 from the first; each rounded to nearest even.
    _mm512_storeu_si512(dst + i, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
  }
}

int64_t bgemm_scratch_floats(int64_t max_rows) { return max_rows * kTokens * 16; }

TERN_AVX512_BF16 void bgemm_avx512bf16(const uint16_t* w, int64_t n_rows, int64_t n_in, const uint16_t* x,
                                       int n_tokens, float* out, int64_t out_stride, float* scratch,
                                       bool accumulate) {
  const int64_t ld = bgemm_row_elems(n_in);
  __m512* park = reinterpret_cast<__m512*>(scratch);  // (n_rows, kTokens) accumulators of the token tile
  for (int t0 = 0; t0 < n_tokens; t0 += kTokens) {
    const int T = n_tokens - t0 < kTokens ? n_tokens - t0 : kTokens;
    const uint16_t* xt = x + t0 * ld;
    for (int64_t i = 0; i < n_rows * kTokens; ++i) park[i] = _mm512_setzero_ps();
    // As in fgemm: one token (decode) reads each row once, front to back, rows one at a time; chunk
    // boundaries and tile shapes change no result (accumulators are parked and reloaded in order).
    const int64_t chunk = T == 1 ? ld : kChunk;
    for (int64_t k0 = 0; k0 < ld; k0 += chunk) {
      const int64_t k1 = k0 + chunk < ld ? k0 + chunk : ld;
      int64_t r = 0;
      if (T > 1)
        for (; r + kRows <= n_rows; r += kRows) tile_t<kRows>(T, w + r * ld, xt, ld, k0, k1, park + r * T);
      for (; r < n_rows; ++r) tile_t<1>(T, w + r * ld, xt, ld, k0, k1, park + r * T);
    }
    // Row r's vector for token t sits at park[r * T + t] for every tile shape used above; 16 rows of a token
    // are reduced at once (missing rows as zeros, which change no other lane) and stored together.
    for (int64_t g = 0; g < n_rows; g += 16) {
      const int64_t m = n_rows - g < 16 ? n_rows - g : 16;
      const __mmask16 mask = tail_mask(m);
      for (int t = 0; t < T; ++t) {
        __m512 v[16];
        for (int64_t i = 0; i < 16; ++i) v[i] = i < m ? park[(g + i) * T + t] : _mm512_setzero_ps();
        __m512 s = sum16(v);
        float* o = out + (t0 + t) * out_stride + g;
        if (accumulate) s = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, o), s);
        _mm512_mask_storeu_ps(o, mask, s);
      }
    }
  }
}

}  // namespace tern::cpu
