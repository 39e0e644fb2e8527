// The AVX-512 attention kernel (Kernels::attend of the AVX-512 table; attention.cpp drives it).
#include "backend/cpu/avx512.h"

#include <cmath>

#include "backend/cpu/cpu_kernels.h"

namespace tern::cpu {

namespace {

// The fused attention kernel (Kernels::attend) takes its query rows four at a time, so that every vector of
// keys or values it loads feeds four rows' FMAs, and forms the scores without a horizontal sum per key: the
// keys are laid out in 4 x 4 blocks of 128 bits ("packed"), key g + 4i's dimensions 4c .. 4c + 3 in quarter
// i of vector (c, g), g = 0..3, so that one FMA with the query's four dimensions broadcast to every quarter
// advances 16 keys, and the four vectors' lanes add up to the 16 scores in order. A key's score is the same
// arithmetic whichever rows share the call: four chains of FMAs over its dimensions c = 0, 1, ... (one per
// dimension mod 4), added as (e0 + e2) + (e1 + e3), then scaled.

// Dimensions d0 .. d0 + 15 of keys k[0], k[4], k[8], k[12] packed: kv[i] holds dimensions d0 + 4i ..
// d0 + 4i + 3 of the four keys in its quarters (a 4 x 4 transpose of 128-bit blocks).
TERN_AVX512 inline void pack4(const float* const* k, int d0, __m512* kv) {
  const __m512 r0 = _mm512_loadu_ps(k[0] + d0), r1 = _mm512_loadu_ps(k[4] + d0);
  const __m512 r2 = _mm512_loadu_ps(k[8] + d0), r3 = _mm512_loadu_ps(k[12] + d0);
  const __m512 lo01 = _mm512_shuffle_f32x4(r0, r1, 0x44), hi01 = _mm512_shuffle_f32x4(r0, r1, 0xEE);
  const __m512 lo23 = _mm512_shuffle_f32x4(r2, r3, 0x44), hi23 = _mm512_shuffle_f32x4(r2, r3, 0xEE);
  kv[0] = _mm512_shuffle_f32x4(lo01, lo23, 0x88);
  kv[1] = _mm512_shuffle_f32x4(lo01, lo23, 0xDD);
  kv[2] = _mm512_shuffle_f32x4(hi01, hi23, 0x88);
  kv[3] = _mm512_shuffle_f32x4(hi01, hi23, 0xDD);
}

// The tile's keys packed, 16 keys (16 * hd floats) after another, vector (c, g) of a group at 64c + 16g.
TERN_AVX512 void pack_keys(const float* const* k, int n, int hd, float* kt) {
  for (int j0 = 0; j0 < n; j0 += 16, kt += 16 * hd)
    for (int g = 0; g < 4; ++g)
      for (int d0 = 0; d0 < hd; d0 += 16) {
        __m512 kv[4];
        pack4(k + j0 + g, d0, kv);
        for (int i = 0; i < 4; ++i) _mm512_store_ps(kt + (d0 + 4 * i) * 16 + 16 * g, kv[i]);
      }
}

// The 16 scores from a row's four accumulators (vector g, lane 4i + e: key g + 4i, dimensions = e mod 4).
TERN_AVX512 inline __m512 key_scores(const __m512* acc, __m512 scale) {
  // Quarter i: (e0 + e2, e1 + e3) of vectors 0 and 1 interleaved, likewise of 2 and 3; then lane 4i + g.
  const __m512 u01 = _mm512_add_ps(_mm512_unpacklo_ps(acc[0], acc[1]), _mm512_unpackhi_ps(acc[0], acc[1]));
  const __m512 u23 = _mm512_add_ps(_mm512_unpacklo_ps(acc[2], acc[3]), _mm512_unpackhi_ps(acc[2], acc[3]));
  return _mm512_mul_ps(_mm512_add_ps(_mm512_shuffle_ps(u01, u23, 0x44), _mm512_shuffle_ps(u01, u23, 0xEE)),
                       scale);
}

// Scores of R rows against the 16 keys from j0, packed at kt.
template <int R>
TERN_AVX512 void scores_packed(const float* const* q, const float* kt, int hd, __m512 scale, float (*s)[64],
                               int j0) {
  __m512 acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int g = 0; g < 4; ++g) acc[r][g] = _mm512_setzero_ps();
  for (int c = 0; c < hd / 4; ++c) {
    __m512 kv[4];
    for (int g = 0; g < 4; ++g) kv[g] = _mm512_load_ps(kt + 64 * c + 16 * g);
    for (int r = 0; r < R; ++r) {
      const __m512 qc = _mm512_broadcast_f32x4(_mm_loadu_ps(q[r] + 4 * c));
      for (int g = 0; g < 4; ++g) acc[r][g] = _mm512_fmadd_ps(qc, kv[g], acc[r][g]);
    }
  }
  for (int r = 0; r < R; ++r) _mm512_store_ps(s[r] + j0, key_scores(acc[r], scale));
}

// The same scores packing the key rows on the way (with one block of rows each packed vector is used once),
// four keys at a time: all 16 at once measured slower where the rows are a power of two apart (they share
// L1 sets). Every accumulator sees the FMAs of scores_packed, in the same order.
template <int R>
TERN_AVX512 void scores_rows(const float* const* q, const float* const* k, int hd, __m512 scale,
                             float (*s)[64], int j0) {
  __m512 acc[R][4];
  for (int g = 0; g < 4; ++g) {
    for (int r = 0; r < R; ++r) acc[r][g] = _mm512_setzero_ps();
    for (int d0 = 0; d0 < hd; d0 += 16) {
      __m512 kv[4];
      pack4(k + j0 + g, d0, kv);
      for (int i = 0; i < 4; ++i)
        for (int r = 0; r < R; ++r)
          acc[r][g] =
              _mm512_fmadd_ps(_mm512_broadcast_f32x4(_mm_loadu_ps(q[r] + d0 + 4 * i)), kv[i], acc[r][g]);
    }
  }
  for (int r = 0; r < R; ++r) _mm512_store_ps(s[r] + j0, key_scores(acc[r], scale));
}

// One row's n scores -> its weights e^(s_j - m') in place, with *m <- m' and *l updated; returns the factor
// for the row's output, 1 where the maximum did not move (o * 1 is o).
TERN_AVX512 inline float softmax_row(float* s, int n, float* m, float* l) {
  __m512 mxv = _mm512_set1_ps(-INFINITY);
  for (int j0 = 0; j0 < n; j0 += 16)
    mxv = _mm512_mask_max_ps(mxv, tail_mask(n - j0), mxv, _mm512_load_ps(s + j0));
  const float mx = _mm512_reduce_max_ps(mxv);
  const float m_new = *m > mx ? *m : mx;
  const float corr = *m != -INFINITY && m_new != *m ? std::exp(*m - m_new) : 1.0f;
  __m512 lv = _mm512_setzero_ps();
  const __m512 mv = _mm512_set1_ps(m_new);
  for (int j0 = 0; j0 < n; j0 += 16) {
    const __m512 p = _mm512_maskz_mov_ps(tail_mask(n - j0), exp512(_mm512_sub_ps(_mm512_load_ps(s + j0), mv)));
    _mm512_store_ps(s + j0, p);
    lv = _mm512_add_ps(lv, p);
  }
  *m = m_new;
  *l = *l * corr + _mm512_reduce_add_ps(lv);
  return corr;
}

// o_r[c0 .. c0 + 16C) <- o_r corr_r + sum_{j < n_r} p_r[j] v_j for R rows: each loaded value vector feeds R
// rows. Every row's sum runs over its own keys in order; the keys past the block's shortest row are added
// row by row, so a row never sees a term it would not have alone.
template <int R, int C>
TERN_AVX512 void weigh_values(const float (*p)[64], const int* n, const float* const* v, int c0,
                              const float* corr, float* o, int hd) {
  __m512 acc[R][C];
  int n_min = n[0];
  for (int r = 0; r < R; ++r) {
    n_min = n[r] < n_min ? n[r] : n_min;
    const __m512 cv = _mm512_set1_ps(corr[r]);
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_mul_ps(_mm512_loadu_ps(o + r * hd + c0 + 16 * c), cv);
  }
  for (int j = 0; j < n_min; ++j) {
    __m512 vv[C];
    for (int c = 0; c < C; ++c) vv[c] = _mm512_loadu_ps(v[j] + c0 + 16 * c);
    for (int r = 0; r < R; ++r) {
      const __m512 pr = _mm512_set1_ps(p[r][j]);
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(pr, vv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = n_min; j < n[r]; ++j) {
      const __m512 pr = _mm512_set1_ps(p[r][j]);
      for (int c = 0; c < C; ++c)
        acc[r][c] = _mm512_fmadd_ps(pr, _mm512_loadu_ps(v[j] + c0 + 16 * c), acc[r][c]);
    }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(o + r * hd + c0 + 16 * c, acc[r][c]);
}

// weigh_values over the first min(chunks, C) 16-column chunks from c0.
template <int R, int C>
TERN_AVX512 void weigh_chunks(int chunks, const float (*p)[64], const int* n, const float* const* v, int c0,
                              const float* corr, float* o, int hd) {
  if constexpr (C > 1)
    if (chunks < C) return weigh_chunks<R, C - 1>(chunks, p, n, v, c0, corr, o, hd);
  weigh_values<R, C>(p, n, v, c0, corr, o, hd);
}

// R query rows against the tile, its keys packed at kt or (kt null) read from their rows.
template <int R>
TERN_AVX512 void attend_rows(const float* const* q, const int* n, const float* kt, const float* const* k,
                             const float* const* v, int hd, float scale, float* m, float* l, float* o) {
  alignas(64) float s[R][64];
  int n_max = 0;
  for (int r = 0; r < R; ++r) n_max = n[r] > n_max ? n[r] : n_max;
  const __m512 sv = _mm512_set1_ps(scale);
  for (int j0 = 0; j0 < n_max; j0 += 16) {
    if (kt)
      scores_packed<R>(q, kt + j0 * hd, hd, sv, s, j0);
    else
      scores_rows<R>(q, k, hd, sv, s, j0);
  }
  float corr[R];
  for (int r = 0; r < R; ++r) corr[r] = softmax_row(s[r], n[r], m + r, l + r);
  // A pass over the values keeps up to 16 * kC output columns of each row in registers: all of them up to
  // head_dim 128 for one or two rows, so each value row is read once (it comes from memory in decode).
  constexpr int kC = R <= 2 ? 8 : 4;
  for (int c0 = 0; c0 < hd; c0 += 16 * kC) weigh_chunks<R, kC>((hd - c0) / 16, s, n, v, c0, corr, o, hd);
}

// Keys past the last one any row sees, up to the next multiple of 16, read as zeros (their scores are
// masked). One block of at most four rows (decode) packs the keys as it reads them; more pack the tile once.
}  // namespace

TERN_AVX512 void attend_avx512(const float* const* q, const int* n, int rows, const float* const* k,
                        const float* const* v, int hd, float scale, float* kt, float* m, float* l, float* o) {
  alignas(64) static const float zeros[256] = {};
  int n_keys = 0;
  for (int r = 0; r < rows; ++r) n_keys = n[r] > n_keys ? n[r] : n_keys;
  const float* kp[64];
  for (int j = 0; j < 64; ++j) kp[j] = j < n_keys ? k[j] : zeros;
  if (rows > 4)
    pack_keys(kp, n_keys, hd, kt);
  else
    kt = nullptr;
  int r = 0;
  for (; r + 4 <= rows; r += 4) attend_rows<4>(q + r, n + r, kt, kp, v, hd, scale, m + r, l + r, o + r * hd);
  switch (rows - r) {
    case 3: attend_rows<3>(q + r, n + r, kt, kp, v, hd, scale, m + r, l + r, o + r * hd); break;
    case 2: attend_rows<2>(q + r, n + r, kt, kp, v, hd, scale, m + r, l + r, o + r * hd); break;
    case 1: attend_rows<1>(q + r, n + r, kt, kp, v, hd, scale, m + r, l + r, o + r * hd); break;
    default: break;
  }
}


}  // namespace tern::cpu
