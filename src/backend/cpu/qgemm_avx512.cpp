// The integer GEMM's AVX-512 VNNI micro-kernel (layouts and math in qgemm.h). A tile is R weight rows x T
// tokens: per group, each row's codes are loaded (and for Q4 split into nibbles) once and used against T
// tokens, each token's codes once against R rows; R * T int32 accumulators gather the group's eight steps,
// then each becomes floats and meets the block scales in two FMAs. Rows whose tails share a tail group are
// taken a pack at a time: the tail group against the tile's tokens once, then the pack's rows, each adding
// its lanes of the tail products before its horizontal sum.
#include <algorithm>

#include "backend/cpu/avx512.h"

#include "backend/cpu/qgemm.h"

namespace tern::cpu {

namespace {

// R x T = 2 x 6 keeps the 12 int32 and 12 float accumulators, two rows' codes and one token's codes in the
// 32 zmm registers (4 x 4 and 4 x 6 measured no faster and spill).
constexpr int kRows = 2;    // R: weight rows per tile
constexpr int kTokens = 6;  // T: tokens per tile
constexpr int kRowsDecode = 1;  // R when there is one token: rows one after another, read sequentially
// Decode streams the weights from memory once: each load also prefetches the bytes 32 KiB ahead (measured
// against 16 and 64 KiB and against none, which streamed up to 2x slower).
constexpr int64_t kPrefetchBytes = 32 << 10;

// Bytes of a packed group of m blocks.
constexpr int64_t group_bytes(DType t, int m) {
  return t == DType::Q6_K ? 210
       : t == DType::Q4_K ? 18 * m + m / 2
                          : (t == DType::Q8_0 ? 34 : t == DType::Q4_0 ? 18 : 20) * m;
}

// Horizontal sums, each in one fixed order (lanes i and i + 8 added, then i and i + 4, i and i + 2, i and
// i + 1: _mm512_reduce_add_ps's tree) whether a vector is summed alone or four at a time, so that a (row,
// token) result never depends on the tile it was computed in.
TERN_AVX512 inline float hsum(__m512 a) {
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a), hi);
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  const __m128 p = _mm_add_ps(q, _mm_permute_ps(q, 0x4E));
  return _mm_cvtss_f32(_mm_add_ps(p, _mm_permute_ps(p, 0xB1)));
}

// The sums of a, b, c, d in lanes 0..3, in hsum's order: the same tree over four vectors side by side
// (14 instructions where four hsums take 32).
TERN_AVX512 inline __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  // Lanes i + 8 onto i: [a (8 lanes), b (8 lanes)] and [c, d].
  const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
  // Lanes i + 4 onto i: a, b, c, d in 128-bit lanes 0..3.
  const __m512 q = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
  const __m512 p = _mm512_add_ps(q, _mm512_permute_ps(q, 0x4E));
  const __m512 s = _mm512_add_ps(p, _mm512_permute_ps(p, 0xB1));
  const __m512i lane0s = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_castps512_ps128(_mm512_permutexvar_ps(lane0s, s));
}

// One group of R rows against T tokens: acc[r][t] += the group's 16 lanes of products (m lanes valid, the
// rest read as zero). wp[r] is row r's group, xg[t * x_stride] token t's.
template <DType kT, int R, int T>
TERN_AVX512 inline void group_dot(const uint8_t* const* wp, int m, const XGroup* xg, int64_t x_stride,
                                  bool prefetch, __m512 (&acc)[R][T]) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  constexpr bool kK = kT == DType::Q4_K;
  constexpr bool k6 = kT == DType::Q6_K;
  const __mmask16 mask = static_cast<__mmask16>(m == kQGroup ? 0xFFFF : (1u << m) - 1u);
  // ia gathers the group's integer dots. A single token (decode) would leave only R dependency chains of
  // vpdpbusd, so it also uses ib (odd steps, or the high nibbles); integer sums are exact, so splitting
  // them changes no result.
  __m512i ia[R][T], ib[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    ib[r] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) ia[r][t] = _mm512_setzero_si512();
  }
  if constexpr (k6) {
    const __m512i m2 = _mm512_set1_epi8(0x03);
    __m512i u[R][4];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512i a = _mm512_loadu_si512(wp[r]), b = _mm512_loadu_si512(wp[r] + 64);
      const __m512i h = _mm512_loadu_si512(wp[r] + 128);
      if (prefetch)
        for (int64_t o = 0; o < 256; o += 64)
          _mm_prefetch(reinterpret_cast<const char*>(wp[r] + kPrefetchBytes + o), _MM_HINT_T0);
      u[r][0] = _mm512_or_si512(_mm512_and_si512(a, m4), _mm512_slli_epi16(_mm512_and_si512(h, m2), 4));
      u[r][1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(a, 4), m4),
                                _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 2), m2), 4));
      u[r][2] = _mm512_or_si512(_mm512_and_si512(b, m4),
                                _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 4), m2), 4));
      u[r][3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(b, 4), m4),
                                _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 6), m2), 4));
    }
#pragma GCC unroll 8
    for (int s = 0; s < 4; ++s)
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const __m512i xs = _mm512_loadu_si512(xg[t * x_stride].q + s * 64);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          if (T == 1 && (s & 1)) ib[r] = _mm512_dpbusd_epi32(ib[r], u[r][s], xs);
          else ia[r][t] = _mm512_dpbusd_epi32(ia[r][t], u[r][s], xs);
        }
      }
  } else if constexpr (kT == DType::Q8_0) {
#pragma GCC unroll 8
    for (int s = 0; s < 8; ++s) {
      __m512i u[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        u[r] = _mm512_maskz_loadu_epi32(mask, wp[r] + s * m * 4);
        if (prefetch) _mm_prefetch(reinterpret_cast<const char*>(wp[r] + s * m * 4 + kPrefetchBytes), _MM_HINT_T0);
      }
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const __m512i xs = _mm512_loadu_si512(xg[t * x_stride].q + s * 64);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          if (T == 1 && (s & 1)) ib[r] = _mm512_dpbusd_epi32(ib[r], u[r], xs);
          else ia[r][t] = _mm512_dpbusd_epi32(ia[r][t], u[r], xs);
        }
      }
    }
  } else {
    // The group's prefetches go out before its loads, which may stall (issued after them, one-token
    // streaming of Q4 rows measured up to 1.3x slower; Q8_0's, tried first too, measured no faster).
    if (prefetch)
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
        for (int p = 0; p < 4; ++p)
          _mm_prefetch(reinterpret_cast<const char*>(wp[r] + p * m * 4 + kPrefetchBytes), _MM_HINT_T0);
#pragma GCC unroll 8
    for (int p = 0; p < 4; ++p) {
      __m512i lo[R], hi[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        __m512i v = _mm512_maskz_loadu_epi32(mask, wp[r] + p * m * 4);
        // Several tokens: one load into a register. Left to itself the compiler folds the load into both the
        // and and the shift, loading the codes twice, which measured 4% slower there (and, streaming one
        // token, faster than the single load).
        if constexpr (T > 1) __asm__("" : "+v"(v));
        lo[r] = _mm512_and_si512(v, m4);
        hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
      }
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) {
        const __m512i xl = _mm512_loadu_si512(xg[t * x_stride].q + p * 64);
        const __m512i xh = _mm512_loadu_si512(xg[t * x_stride].q + (p + 4) * 64);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          if (T == 1) {
            ia[r][t] = _mm512_dpbusd_epi32(ia[r][t], lo[r], xl);
            ib[r] = _mm512_dpbusd_epi32(ib[r], hi[r], xh);
          } else {
            ia[r][t] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(ia[r][t], lo[r], xl), hi[r], xh);
          }
        }
      }
    }
  }
  const int64_t codes = (kT == DType::Q8_0 ? 32 : 16) * m;
  __m512 dw[R], mw[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    if constexpr (k6) {  // d * sc per lane, exact in fp32 (an f16 times an int8)
      uint16_t h;
      __builtin_memcpy(&h, wp[r] + 208, 2);
      const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp[r] + 192))));
      dw[r] = _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(h)), sc);
      continue;
    }
    if constexpr (kK) {
      // d, dmin per super-block (lanes 0..7 and 8..15), then 6-bit scales and mins per lane: the products
      // d * sc and dmin * m are exact in fp32, as in the dequantization.
      const uint8_t* sp = wp[r] + codes;
      const int n_sb = m / 8;
      uint16_t h[4];
      __builtin_memcpy(h, sp, 4 * n_sb);
      const float d0 = _cvtsh_ss(h[0]), d1 = n_sb == 2 ? _cvtsh_ss(h[1]) : d0;
      const float n0 = _cvtsh_ss(h[n_sb]), n1 = n_sb == 2 ? _cvtsh_ss(h[n_sb + 1]) : n0;
      const __m512 dv = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(d0), _mm512_set1_ps(d1));
      const __m512 nv = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(-n0), _mm512_set1_ps(-n1));
      const uint8_t* scp = sp + 4 * n_sb;
      const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, scp)));
      const __m512 mn = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, scp + m)));
      dw[r] = _mm512_mul_ps(dv, sc);
      mw[r] = _mm512_mul_ps(nv, mn);
      continue;
    }
    dw[r] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, wp[r] + codes));
    if constexpr (kT == DType::Q4_1)
      mw[r] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, wp[r] + codes + 2 * m));
  }
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) {
    const XGroup& x = xg[t * x_stride];
    const __m512 xd = _mm512_loadu_ps(x.d), xc = _mm512_loadu_ps(x.c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 f = _mm512_cvtepi32_ps(T == 1 ? _mm512_add_epi32(ia[r][t], ib[r]) : ia[r][t]);
      if constexpr (kT == DType::Q4_1 || kK) {
        acc[r][t] = _mm512_fmadd_ps(dw[r], _mm512_mul_ps(xd, f), acc[r][t]);
        acc[r][t] = _mm512_fmadd_ps(mw[r], xc, acc[r][t]);
      } else {
        acc[r][t] = _mm512_fmadd_ps(dw[r], _mm512_fmadd_ps(xd, f, xc), acc[r][t]);
      }
    }
  }
}

// A pack's tail group (m lanes: the tails of its rows side by side) against T tokens: tv[t] = the lanes'
// products with token t's tail group (x). The rows of the pack then take their lanes of tv (tile).
template <DType kT, int T>
TERN_AVX512 inline __attribute__((always_inline)) void tail_dot(const uint8_t* w, int m, const XGroup* x,
                                                                int64_t x_stride, bool prefetch, __m512* tv) {
  __m512 acc[1][T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[0][t] = _mm512_setzero_ps();
  group_dot<kT, 1, T>(&w, m, x, x_stride, prefetch, acc);
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) tv[t] = acc[0][t];
}

template <DType kT>
TERN_AVX512 void tail_dots(int T, const uint8_t* w, int m, const XGroup* x, int64_t x_stride, bool prefetch,
                           __m512* tv) {
  switch (T) {
    case 1: tail_dot<kT, 1>(w, m, x, x_stride, prefetch, tv); break;
    case 2: tail_dot<kT, 2>(w, m, x, x_stride, prefetch, tv); break;
    case 3: tail_dot<kT, 3>(w, m, x, x_stride, prefetch, tv); break;
    case 4: tail_dot<kT, 4>(w, m, x, x_stride, prefetch, tv); break;
    case 5: tail_dot<kT, 5>(w, m, x, x_stride, prefetch, tv); break;
    case 6: tail_dot<kT, 6>(w, m, x, x_stride, prefetch, tv); break;
    default: break;
  }
}

// How a tile's rows end: `partial` > 0: in their own partial group of that many lanes after the `groups` full
// ones; else, with tv, in lanes [lane0 + r m, lane0 + (r + 1) m) of tv[t] (their pack's tail products, m
// the tail's blocks per row).
struct TileTail {
  int partial = 0;
  const __m512* tv = nullptr;
  int lane0 = 0, m = 0;
};

// Inlined into its callers: as a call per row, one-token streaming of rows of a few groups measured 10-15%
// slower.
template <DType kT, int R, int T>
TERN_AVX512 inline __attribute__((always_inline)) void tile(const uint8_t* w, int64_t row_bytes,
                                                            int64_t groups, const TileTail& tail,
                                                            const XGroup* x, int64_t x_stride, float* out,
                                                            int64_t out_stride, bool accumulate,
                                                            bool prefetch) {
  __m512 acc[R][T];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  const uint8_t* wp[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) wp[r] = w + r * row_bytes;
  for (int64_t g = 0; g < groups; ++g) {
    group_dot<kT, R, T>(wp, kQGroup, x + g, x_stride, prefetch, acc);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wp[r] += group_bytes(kT, kQGroup);
  }
  if (tail.partial > 0) group_dot<kT, R, T>(wp, tail.partial, x + groups, x_stride, prefetch, acc);
  if (tail.tv) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __mmask16 lanes = static_cast<__mmask16>(((1u << tail.m) - 1u) << (tail.lane0 + r * tail.m));
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_mask_add_ps(acc[r][t], lanes, acc[r][t], tail.tv[t]);
    }
  }
  // The R * T sums, four at a time where there are four (token-major: vector i is row i % R, token i / R).
  constexpr int kN = R * T;
  float v[kN];
  int i = 0;
  if constexpr (kN >= 4) {
#pragma GCC unroll 8
    for (; i + 4 <= kN; i += 4)
      _mm_storeu_ps(v + i, hsum4(acc[i % R][i / R], acc[(i + 1) % R][(i + 1) / R],
                                 acc[(i + 2) % R][(i + 2) / R], acc[(i + 3) % R][(i + 3) / R]));
  }
#pragma GCC unroll 8
  for (; i < kN; ++i) v[i] = hsum(acc[i % R][i / R]);
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t)
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      float& o = out[t * out_stride + r];
      o = accumulate ? o + v[t * R + r] : v[t * R + r];
    }
}

template <DType kT, int R>
TERN_AVX512 void tile_rows(int T, const uint8_t* w, int64_t row_bytes, int64_t groups, const TileTail& tail,
                           const XGroup* x, int64_t x_stride, float* out, int64_t out_stride, bool accumulate,
                           bool prefetch) {
  switch (T) {
    case 1: tile<kT, R, 1>(w, row_bytes, groups, tail, x, x_stride, out, out_stride, accumulate, prefetch); break;
    case 2: tile<kT, R, 2>(w, row_bytes, groups, tail, x, x_stride, out, out_stride, accumulate, prefetch); break;
    case 3: tile<kT, R, 3>(w, row_bytes, groups, tail, x, x_stride, out, out_stride, accumulate, prefetch); break;
    case 4: tile<kT, R, 4>(w, row_bytes, groups, tail, x, x_stride, out, out_stride, accumulate, prefetch); break;
    case 5: tile<kT, R, 5>(w, row_bytes, groups, tail, x, x_stride, out, out_stride, accumulate, prefetch); break;
    case 6: tile<kT, R, 6>(w, row_bytes, groups, tail, x, x_stride, out, out_stride, accumulate, prefetch); break;
    default: break;
  }
}

// Rows [0, n_rows) of w (row_bytes apart) against a tile of T tokens; tail.lane0 is row 0's.
template <DType kT>
TERN_AVX512 void rows(int T, const uint8_t* w, int64_t row_bytes, int64_t n_rows, int64_t groups,
                      TileTail tail, const XGroup* x, int64_t x_stride, float* out, int64_t out_stride,
                      bool accumulate, bool first) {
  int64_t r0 = 0;
  auto next = [&](int R) {
    r0 += R;
    tail.lane0 += R * tail.m;
  };
  if (T == 1)
    for (; r0 + kRowsDecode <= n_rows; next(kRowsDecode))
      tile<kT, kRowsDecode, 1>(w + r0 * row_bytes, row_bytes, groups, tail, x, x_stride, out + r0, out_stride,
                               accumulate, true);
  for (; r0 + kRows <= n_rows; next(kRows))
    tile_rows<kT, kRows>(T, w + r0 * row_bytes, row_bytes, groups, tail, x, x_stride, out + r0, out_stride,
                         accumulate, first);
  if (r0 < n_rows)
    tile_rows<kT, 1>(T, w + r0 * row_bytes, row_bytes, groups, tail, x, x_stride, out + r0, out_stride,
                     accumulate, first);
}

template <DType kT>
TERN_AVX512 void gemm(const uint8_t* w, const QgemmLayout& lay, int64_t n_rows, int64_t r0, int64_t r1,
                      const XGroup* x, int64_t x_stride, int n_tokens, float* out, int64_t out_stride,
                      bool accumulate) {
  static_assert(kTokens == 6 && kRows == 2);
  // Token tiles outside, row tiles inside: a tile's activations stay in L1 while the rows (a block of at
  // most a few dozen, chosen by the caller) pass under them.
  for (int t0 = 0; t0 < n_tokens; t0 += kTokens) {
    const int T = n_tokens - t0 < kTokens ? n_tokens - t0 : kTokens;
    const XGroup* xt = x + t0 * x_stride;
    float* ot = out + t0 * out_stride;
    // The first token tile reads the rows from memory (the later ones find them in L1): it prefetches
    // ahead as decode does, which a batch of a few tokens (continuous batching) needs as much as one.
    const bool first = t0 == 0;
    if (!lay.shared_tail()) {
      TileTail tail;
      tail.partial = lay.partial;
      rows<kT>(T, w + r0 * lay.row_bytes, lay.row_bytes, r1 - r0, lay.groups, tail, xt, x_stride, ot + r0,
               out_stride, accumulate, first);
      continue;
    }
    // Pack by pack: its tail group against the tile's tokens, then its rows in [r0, r1), each adding its
    // lanes of the tail products.
    const int P = lay.pack, m = lay.partial;
    for (int64_t pk = r0 / P; pk * P < r1; ++pk) {
      const int64_t p0 = pk * P, pn = std::min<int64_t>(P, n_rows - p0);
      const int64_t a = std::max(r0, p0), b = std::min(r1, p0 + pn);
      const uint8_t* tw = w + p0 * lay.row_bytes;  // the pack's tail group, then its rows
      const uint8_t* wa = tw + pn * lay.tail_bytes + (a - p0) * lay.main_bytes;
      __m512 tv[kTokens];
      TileTail tail;
      tail.tv = tv;
      tail.m = m;
      tail.lane0 = static_cast<int>(a - p0) * m;
      if (T == 1) {  // the pack's work inline, with no calls between rows
        tail_dot<kT, 1>(tw, static_cast<int>(pn) * m, xt + lay.groups, x_stride, true, tv);
        for (int64_t r = a; r < b; ++r, tail.lane0 += m)
          tile<kT, kRowsDecode, 1>(wa + (r - a) * lay.main_bytes, lay.main_bytes, lay.groups, tail, xt,
                                   x_stride, ot + r, out_stride, accumulate, true);
        continue;
      }
      tail_dots<kT>(T, tw, static_cast<int>(pn) * m, xt + lay.groups, x_stride, first, tv);
      rows<kT>(T, wa, lay.main_bytes, b - a, lay.groups, tail, xt, x_stride, ot + a, out_stride, accumulate,
               first);
    }
  }
}

// Each block as quantize_row_q8x rounds it: d = max|x| / 127, q = nearbyint(x * (1 / d)) (the conversion
// rounds to nearest even, as nearbyint does in the default mode), sum = d * sum(q).
TERN_AVX512 void pack_x_groups(const float* x, XGroup* groups, int64_t n_groups, int64_t n_blocks, int pack,
                               float kc) {
  for (int64_t g = 0; g < n_groups; ++g) {
    XGroup& o = groups[g];
    const int m = static_cast<int>(n_blocks - g * kQGroup < kQGroup ? n_blocks - g * kQGroup : kQGroup);
    if (m < kQGroup) __builtin_memset(&o, 0, sizeof(o));
    for (int k = 0; k < m; ++k) {
      const float* xb = x + (g * kQGroup + k) * 32;
      const __m512 a = _mm512_loadu_ps(xb), b = _mm512_loadu_ps(xb + 16);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
      const float d = amax / 127.0f;
      const float id = d > 0.0f ? 1.0f / d : 0.0f;
      const __m512 vid = _mm512_set1_ps(id);
      const __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, vid)), qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, vid));
      alignas(16) int8_t q[32];
      _mm_store_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(qa));
      _mm_store_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(qb));
      const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
      for (int s = 0; s < 8; ++s) __builtin_memcpy(o.q + s * 64 + k * 4, q + 4 * s, 4);
      o.d[k] = d;
      o.c[k] = kc * (d * static_cast<float>(sum));
    }
    // The tail group: its m blocks once per row of a pack (lane j m + k: block k).
    if (m < kQGroup)
      for (int j = 1; j < pack; ++j) {
        for (int s = 0; s < 8; ++s)
          __builtin_memcpy(o.q + s * 64 + j * m * 4, o.q + s * 64, static_cast<size_t>(m) * 4);
        __builtin_memcpy(o.d + j * m, o.d, static_cast<size_t>(m) * 4);
        __builtin_memcpy(o.c + j * m, o.c, static_cast<size_t>(m) * 4);
      }
  }
}

}  // namespace

void qgemm_pack_x_avx512(DType t, const float* x, XGroup* groups, int64_t n_blocks) {
  if (t == DType::Q6_K) return qgemm_pack_x_q6k(x, groups, n_blocks);
  const QgemmLayout lay = qgemm_layout(t, n_blocks);
  const float kc = t == DType::Q8_0 ? -128.0f : t == DType::Q4_0 ? -8.0f : 1.0f;
  pack_x_groups(x, groups, lay.x_groups(), n_blocks, lay.pack, kc);
}

void qgemm_avx512(DType t, const uint8_t* w, const QgemmLayout& lay, int64_t n_rows, int64_t r0, int64_t r1,
                  const XGroup* x, int64_t x_stride, int n_tokens, float* out, int64_t out_stride, bool accumulate) {
  switch (t) {
    case DType::Q8_0: gemm<DType::Q8_0>(w, lay, n_rows, r0, r1, x, x_stride, n_tokens, out, out_stride, accumulate); break;
    case DType::Q4_0: gemm<DType::Q4_0>(w, lay, n_rows, r0, r1, x, x_stride, n_tokens, out, out_stride, accumulate); break;
    case DType::Q4_1: gemm<DType::Q4_1>(w, lay, n_rows, r0, r1, x, x_stride, n_tokens, out, out_stride, accumulate); break;
    case DType::Q4_K: gemm<DType::Q4_K>(w, lay, n_rows, r0, r1, x, x_stride, n_tokens, out, out_stride, accumulate); break;
    default: gemm<DType::Q6_K>(w, lay, n_rows, r0, r1, x, x_stride, n_tokens, out, out_stride, accumulate); break;
  }
}

}  // namespace tern::cpu
