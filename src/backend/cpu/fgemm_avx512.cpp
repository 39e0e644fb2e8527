// The float GEMM's AVX-512 micro-kernel (see fgemm.h).
#include "backend/cpu/avx512.h"

#include "backend/cpu/fgemm.h"

namespace tern::cpu {

namespace {

constexpr int kRows = 4;            // R: weight rows per tile
constexpr int kTokens = 6;          // T: tokens per tile
constexpr int64_t kChunk = 512;     // elements of the reduction per pass (a multiple of 16)

// 16 weights from element i of a row, as fp32 (masked lanes 0).
template <DType kT>
TERN_AVX512 inline __m512 load_w(const uint8_t* row, int64_t i, __mmask16 m) {
  if constexpr (kT == DType::F32) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + i);
  } else if constexpr (kT == DType::F16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(row) + i));
  } else {  // bf16: the top half of an fp32
    const __m512i u = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(row) + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
  }
}

// acc[R][T] (parked in `park`) += rows x tokens over elements [k0, k1).
template <DType kT, int R, int T>
TERN_AVX512 void tile(const uint8_t* w, int64_t row_bytes, const float* x, int64_t n_in, int64_t k0, int64_t k1,
                      __m512* park) {
  __m512 acc[R][T];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_load_ps(&park[r * T + t]);
  for (int64_t i = k0; i < k1; i += 16) {
    const __mmask16 m = tail_mask(k1 - i);
    __m512 wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = load_w<kT>(w + r * row_bytes, i, m);
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const __m512 xv = _mm512_maskz_loadu_ps(m, x + t * n_in + i);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) _mm512_store_ps(&park[r * T + t], acc[r][t]);
}

template <DType kT, int R>
TERN_AVX512 void tile_t(int T, const uint8_t* w, int64_t row_bytes, const float* x, int64_t n_in, int64_t k0,
                        int64_t k1, __m512* park) {
  switch (T) {
    case 1: tile<kT, R, 1>(w, row_bytes, x, n_in, k0, k1, park); break;
    case 2: tile<kT, R, 2>(w, row_bytes, x, n_in, k0, k1, park); break;
    case 3: tile<kT, R, 3>(w, row_bytes, x, n_in, k0, k1, park); break;
    case 4: tile<kT, R, 4>(w, row_bytes, x, n_in, k0, k1, park); break;
    case 5: tile<kT, R, 5>(w, row_bytes, x, n_in, k0, k1, park); break;
    default: tile<kT, R, 6>(w, row_bytes, x, n_in, k0, k1, park); break;
  }
}

template <DType kT>
TERN_AVX512 void gemm(const uint8_t* w, int64_t row_bytes, int64_t n_rows, int64_t n_in, const float* x,
                      int n_tokens, float* out, int64_t out_stride, float* scratch, bool accumulate) {
  __m512* park = reinterpret_cast<__m512*>(scratch);  // (n_rows, kTokens) accumulators of the token tile
  for (int t0 = 0; t0 < n_tokens; t0 += kTokens) {
    const int T = n_tokens - t0 < kTokens ? n_tokens - t0 : kTokens;
    const float* xt = x + t0 * n_in;
    for (int64_t i = 0; i < n_rows * kTokens; ++i) park[i] = _mm512_setzero_ps();
    // One token (decode) reads each row once, front to back: chunking the reduction would interleave the
    // block's rows in 1-2 KB pieces, which the hardware prefetchers follow poorly. Chunk boundaries do not
    // change any result (the accumulators are parked and reloaded, the FMAs keep their order).
    const int64_t chunk = T == 1 ? n_in : kChunk;
    for (int64_t k0 = 0; k0 < n_in; k0 += chunk) {
      const int64_t k1 = k0 + chunk < n_in ? k0 + chunk : n_in;
      int64_t r = 0;
      // One token: rows one at a time, so that memory is read front to back (4-row tiles streamed ~20%
      // slower in decode on the development machine).
      if (T > 1)
        for (; r + kRows <= n_rows; r += kRows)
          tile_t<kT, kRows>(T, w + r * row_bytes, row_bytes, xt, n_in, k0, k1, park + r * T);
      for (; r < n_rows; ++r) tile_t<kT, 1>(T, w + r * row_bytes, row_bytes, xt, n_in, k0, k1, park + r * T);
    }
    // park holds, per row tile of R rows, R x T vectors in (r, t) order: row r's vector for token t sits at
    // park[r * T + t] for every tile shape used above.
    for (int64_t r = 0; r < n_rows; ++r)
      for (int t = 0; t < T; ++t) {
        float& o = out[(t0 + t) * out_stride + r];
        const float v = _mm512_reduce_add_ps(park[r * T + t]);
        o = accumulate ? o + v : v;
      }
  }
}

// The rows of a half-precision block as fp32 (exact conversions), n_in floats apart.
template <DType kT>
TERN_AVX512 void widen_rows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, int64_t n_in, float* dst) {
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t i = 0; i < n_in; i += 16) {
      const __mmask16 m = tail_mask(n_in - i);
      _mm512_mask_storeu_ps(dst + r * n_in + i, m, load_w<kT>(w + r * row_bytes, i, m));
    }
}

}  // namespace

int64_t fgemm_scratch_floats(int64_t max_rows, int64_t n_in) { return max_rows * kTokens * 16 + max_rows * n_in; }

void fgemm_avx512(DType t, const uint8_t* w, int64_t row_bytes, int64_t n_rows, int64_t n_in, const float* x,
                  int n_tokens, float* out, int64_t out_stride, float* scratch, bool accumulate) {
  // Several token tiles would convert every weight once per tile: widen the block to fp32 once instead and
  // run the fp32 kernel over it (the conversions are exact, so every product and sum is the same).
  if (t != DType::F32 && n_tokens > kTokens) {
    float* wide = scratch + n_rows * kTokens * 16;
    if (t == DType::F16) widen_rows<DType::F16>(w, row_bytes, n_rows, n_in, wide);
    else widen_rows<DType::BF16>(w, row_bytes, n_rows, n_in, wide);
    return gemm<DType::F32>(reinterpret_cast<const uint8_t*>(wide), n_in * 4, n_rows, n_in, x, n_tokens, out,
                            out_stride, scratch, accumulate);
  }
  switch (t) {
    case DType::F32: gemm<DType::F32>(w, row_bytes, n_rows, n_in, x, n_tokens, out, out_stride, scratch, accumulate); break;
    case DType::F16: gemm<DType::F16>(w, row_bytes, n_rows, n_in, x, n_tokens, out, out_stride, scratch, accumulate); break;
    default: gemm<DType::BF16>(w, row_bytes, n_rows, n_in, x, n_tokens, out, out_stride, scratch, accumulate); break;
  }
}

}  // namespace tern::cpu
