// Row dequantization for every ggml type tern reads, and row quantization for the types `tern quantize`
// writes. Layouts and formulas are documented on the block structs in quant.h.
//
// Exactness: each dequantizer evaluates the same float32 expression, in the same order, as ggml's reference
// (`(d * sc) * q - (dmin * m)` etc.), so results are bit-identical to ggml and to the gguf Python package.
// That only holds if the compiler keeps every multiply and add as written: contracting `a * b + c` into one
// fused multiply-add (GCC does so by default under -march=native, even in ISO C++ mode) rounds once instead
// of twice. The pragma below switches contraction off for this file.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "core/quant.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cctype>
#include <cfloat>
#include <cmath>
#include <cstring>

namespace tern {

static_assert(std::endian::native == std::endian::little, "block fields are read as little-endian");

void unpack_scale_min_k4(const uint8_t* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}


namespace {

// Copies block b of a row into a local struct: rows may sit at any address (memcpy is alignment-safe).
template <class B>
B load_block(const void* row, int64_t b) {
  B blk;
  std::memcpy(&blk, static_cast<const uint8_t*>(row) + b * static_cast<int64_t>(sizeof(B)), sizeof(B));
  return blk;
}

template <class B>
void store_block(void* row, int64_t b, const B& blk) {
  std::memcpy(static_cast<uint8_t*>(row) + b * static_cast<int64_t>(sizeof(B)), &blk, sizeof(B));
}

float h2f(uint16_t h) { return f16_to_f32(h); }

// ---------------------------------------------------------------------------------------------------------
// Dequantization. `nb` is the number of blocks; y advances one block per iteration.

void dequant_q4_0(const void* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const auto blk = load_block<BlockQ4_0>(src, b);
    const float d = h2f(blk.d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>((blk.qs[j] & 0xF) - 8) * d;
      y[j + kQK / 2] = static_cast<float>((blk.qs[j] >> 4) - 8) * d;
    }
  }
}

void dequant_q4_1(const void* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const auto blk = load_block<BlockQ4_1>(src, b);
    const float d = h2f(blk.d), m = h2f(blk.m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>(blk.qs[j] & 0xF) * d + m;
      y[j + kQK / 2] = static_cast<float>(blk.qs[j] >> 4) * d + m;
    }
  }
}

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void dequant_q5_0(const void* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const auto blk = load_block<BlockQ5_0>(src, b);
    const float d = h2f(blk.d);
    const uint32_t qh = load_u32(blk.qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
      const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
      y[j] = static_cast<float>(((blk.qs[j] & 0xF) | h0) - 16) * d;
      y[j + kQK / 2] = static_cast<float>(((blk.qs[j] >> 4) | h1) - 16) * d;
    }
  }
}

void dequant_q5_1(const void* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const auto blk = load_block<BlockQ5_1>(src, b);
    const float d = h2f(blk.d), m = h2f(blk.m);
    const uint32_t qh = load_u32(blk.qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
      const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
      y[j] = static_cast<float>((blk.qs[j] & 0xF) | h0) * d + m;
      y[j + kQK / 2] = static_cast<float>((blk.qs[j] >> 4) | h1) * d + m;
    }
  }
}

void dequant_q8_0(const void* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQK) {
    const auto blk = load_block<BlockQ8_0>(src, b);
    const float d = h2f(blk.d);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(blk.qs[j]) * d;
  }
}

void dequant_q2_k(const void* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQK_K) {
    const auto blk = load_block<BlockQ2_K>(src, b);
    const float d = h2f(blk.d), dmin = h2f(blk.dmin);
    for (int h = 0; h < 2; ++h) {           // 128-element halves
      const uint8_t* q = blk.qs + 32 * h;
      for (int k = 0; k < 4; ++k) {         // bit pair (2k, 2k+1)
        for (int sub = 0; sub < 2; ++sub) {  // 16-element sub-blocks
          const int s = 8 * h + 2 * k + sub;
          const float dl = d * static_cast<float>(blk.scales[s] & 0xF);
          const float ml = dmin * static_cast<float>(blk.scales[s] >> 4);
          float* out = y + 16 * s;
          for (int l = 0; l < 16; ++l)
            out[l] = dl * static_cast<float>((q[16 * sub + l] >> (2 * k)) & 3) - ml;
        }
      }
    }
  }
}

void dequant_q3_k(const void* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQK_K) {
    const auto blk = load_block<BlockQ3_K>(src, b);
    const float d = h2f(blk.d);
    int sc[16];
    for (int j = 0; j < 16; ++j) {
      const int lo = j < 8 ? (blk.scales[j] & 0xF) : (blk.scales[j - 8] >> 4);
      const int hi = (blk.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
      sc[j] = (lo | (hi << 4)) - 32;
    }
    for (int h = 0; h < 2; ++h) {
      const uint8_t* q = blk.qs + 32 * h;
      for (int k = 0; k < 4; ++k) {
        const uint8_t hbit = static_cast<uint8_t>(1u << (4 * h + k));
        for (int sub = 0; sub < 2; ++sub) {
          const int s = 8 * h + 2 * k + sub;
          const float dl = d * static_cast<float>(sc[s]);
          float* out = y + 16 * s;
          for (int l = 0; l < 16; ++l) {
            const int ll = 16 * sub + l;
            const int v = ((q[ll] >> (2 * k)) & 3) - ((blk.hmask[ll] & hbit) ? 0 : 4);
            out[l] = dl * static_cast<float>(v);
          }
        }
      }
    }
  }
}

void dequant_q4_k(const void* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQK_K) {
    const auto blk = load_block<BlockQ4_K>(src, b);
    const float d = h2f(blk.d), dmin = h2f(blk.dmin);
    for (int c = 0; c < 4; ++c) {  // 64-element chunks: sub-blocks 2c (low nibbles) and 2c+1 (high nibbles)
      int sc0, m0, sc1, m1;
      unpack_scale_min_k4(blk.scales, 2 * c, sc0, m0);
      unpack_scale_min_k4(blk.scales, 2 * c + 1, sc1, m1);
      const float d0 = d * static_cast<float>(sc0), mm0 = dmin * static_cast<float>(m0);
      const float d1 = d * static_cast<float>(sc1), mm1 = dmin * static_cast<float>(m1);
      const uint8_t* q = blk.qs + 32 * c;
      for (int l = 0; l < 32; ++l) y[64 * c + l] = d0 * static_cast<float>(q[l] & 0xF) - mm0;
      for (int l = 0; l < 32; ++l) y[64 * c + 32 + l] = d1 * static_cast<float>(q[l] >> 4) - mm1;
    }
  }
}

void dequant_q5_k(const void* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQK_K) {
    const auto blk = load_block<BlockQ5_K>(src, b);
    const float d = h2f(blk.d), dmin = h2f(blk.dmin);
    for (int c = 0; c < 4; ++c) {
      int sc0, m0, sc1, m1;
      unpack_scale_min_k4(blk.scales, 2 * c, sc0, m0);
      unpack_scale_min_k4(blk.scales, 2 * c + 1, sc1, m1);
      const float d0 = d * static_cast<float>(sc0), mm0 = dmin * static_cast<float>(m0);
      const float d1 = d * static_cast<float>(sc1), mm1 = dmin * static_cast<float>(m1);
      const uint8_t* q = blk.qs + 32 * c;
      const uint8_t u0 = static_cast<uint8_t>(1u << (2 * c)), u1 = static_cast<uint8_t>(1u << (2 * c + 1));
      for (int l = 0; l < 32; ++l)
        y[64 * c + l] = d0 * static_cast<float>((q[l] & 0xF) + ((blk.qh[l] & u0) ? 16 : 0)) - mm0;
      for (int l = 0; l < 32; ++l)
        y[64 * c + 32 + l] = d1 * static_cast<float>((q[l] >> 4) + ((blk.qh[l] & u1) ? 16 : 0)) - mm1;
    }
  }
}

void dequant_q6_k(const void* src, float* y, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, y += kQK_K) {
    const auto blk = load_block<BlockQ6_K>(src, b);
    const float d = h2f(blk.d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = blk.ql + 64 * h;
      const uint8_t* qh = blk.qh + 32 * h;
      const int8_t* sc = blk.scales + 8 * h;
      float* out = y + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        out[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        out[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        out[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        out[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Quantization of the simple types: ggml's reference quantizers, operation for operation, so the bytes
// match llama.cpp's and gguf-py's (the scale is computed and applied in float32 before its f16 rounding).

// Q8_0: d = max|x| / 127, q = round(x / d) (computed as x * (1/d), ties away from zero as roundf).
void quant_q8_0(const float* x, void* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ8_0 blk;
    blk.d = f32_to_f16(d);
    for (int j = 0; j < kQK; ++j) blk.qs[j] = static_cast<int8_t>(std::round(x[j] * id));
    store_block(dst, b, blk);
  }
}

// Q4_0: d = m / -8 where m is the element of largest magnitude (the first one on ties), so m itself maps to
// code 0 and the other side of zero gets the full 7 steps; q = min(15, trunc(x / d + 8.5)).
void quant_q4_0(const float* x, void* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += kQK) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ4_0 blk;
    blk.d = f32_to_f16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const float v0 = x[j] * id, v1 = x[j + kQK / 2] * id;
      const int q0 = std::min(15, static_cast<int>(v0 + 8.5f));
      const int q1 = std::min(15, static_cast<int>(v1 + 8.5f));
      blk.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    store_block(dst, b, blk);
  }
}

// Q4_1: m = min x, d = (max x - m) / 15, q = min(15, trunc((x - m) / d + 0.5)).
void quant_q4_1(const float* x, void* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, x += kQK) {
    float mn = FLT_MAX, mx = -FLT_MAX;
    for (int j = 0; j < kQK; ++j) {
      mn = std::min(mn, x[j]);
      mx = std::max(mx, x[j]);
    }
    const float d = (mx - mn) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ4_1 blk;
    blk.d = f32_to_f16(d);
    blk.m = f32_to_f16(mn);
    for (int j = 0; j < kQK / 2; ++j) {
      const float v0 = (x[j] - mn) * id, v1 = (x[j + kQK / 2] - mn) * id;
      const int q0 = std::min(15, static_cast<int>(v0 + 0.5f));
      const int q1 = std::min(15, static_cast<int>(v1 + 0.5f));
      blk.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    store_block(dst, b, blk);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Q4_K quantization (tern's own encoder).
//
// Each 32-element sub-block s is represented as x ≈ a_s * q - b_s with q in [0, 15], a_s >= 0, b_s >= 0;
// a_s and b_s are themselves stored as 6-bit multiples of two f16 super-block scales d and dmin.
//  1. Per sub-block, search the (a, b) minimising the squared error: for 11 candidate step sizes around the
//     min-max one, round the codes, then solve the 2x2 least-squares problem for (a, b) given those codes
//     (clamping b to >= 0, since the offset can only be subtracted), and up to twice more re-round the codes
//     for that (a, b) and refit. Keep the best.
//  2. d = max a_s / 63, dmin = max b_s / 63 (rounded to f16); the 6-bit sc_s, m_s are round(a_s / d),
//     round(b_s / dmin).
//  3. The 6-bit rounding moves each sub-block's grid, so for each sub-block try sc_s and m_s one step either
//     way (9 pairs), re-choose the codes for each pair against the exact float32 dequantization formula, and
//     keep the pair with the least squared error.

// Round to nearest, ties to even, without a libm call (lrintf is not inlined without -fno-math-errno, and
// this runs ~100 times per element): adding 1.5 * 2^23 leaves the rounded integer in the low mantissa bits,
// exact for |v| < 2^22. The clamp keeps any finite input in that range (codes are clamped to 0..63 anyway).
int nearest_int(float v) {
  const float r = std::clamp(v, -4.0e6f, 4.0e6f) + 12582912.0f;
  int32_t i;
  std::memcpy(&i, &r, 4);
  return (i & 0x007fffff) - 0x00400000;
}

// Step 1 for one sub-block of n values: returns (a, b) with x ≈ a * q - b. Each candidate step size gives
// codes, the codes give the least-squares (a, c) (c = -b), and up to two more rounds of "re-round the codes
// for (a, c), refit" (Lloyd iterations) polish it; the best fit seen wins. (On Gaussian data, 11 candidates
// with the polishing come within 0.1% of the RMS error of 21 candidates, at half the cost.)
//
// The fit for fixed codes q minimises E(a, c) = sum (a q_i + c - x_i)^2: the normal equations give
//   a = (n Sqx - Sq Sx) / (n Sqq - Sq^2),  c = (Sqq Sx - Sq Sqx) / (n Sqq - Sq^2)
// and when c > 0 (an offset that would have to be added) c = 0, a = Sqx / Sqq. E itself follows from the
// same sums: E = Sxx - 2 a Sqx - 2 c Sx + a^2 Sqq + 2 a c Sq + n c^2.
void fit_scale_min(const float* x, int n, int nmax, float& a_out, float& b_out) {
  float xmin = x[0], xmax = x[0];
  double sx = 0, sxx = 0;
  for (int i = 0; i < n; ++i) {
    xmin = std::min(xmin, x[i]);
    xmax = std::max(xmax, x[i]);
    sx += x[i];
    sxx += static_cast<double>(x[i]) * x[i];
  }
  if (xmin > 0.0f) xmin = 0.0f;  // the offset is -b with b >= 0
  a_out = (xmax - xmin) / static_cast<float>(nmax);
  b_out = -xmin;
  if (xmax == xmin) return;
  double best_err = INFINITY;
  int q[kQK_K];
  for (int k = -5; k <= 5; ++k) {
    const float iscale = (static_cast<float>(nmax) + 0.2f * static_cast<float>(k)) / (xmax - xmin);
    for (int i = 0; i < n; ++i) q[i] = std::clamp(nearest_int(iscale * (x[i] - xmin)), 0, nmax);
    for (int round = 0; round < 3; ++round) {
      int64_t sq = 0, sqq = 0;  // integer sums are exact
      double sqx = 0;
      for (int i = 0; i < n; ++i) {
        sq += q[i];
        sqq += q[i] * q[i];
        sqx += q[i] * static_cast<double>(x[i]);
      }
      const double det = static_cast<double>(n * sqq - sq * sq);
      if (det <= 0) break;  // all codes equal: no unique fit
      double a = (n * sqx - static_cast<double>(sq) * sx) / det;
      double c = (static_cast<double>(sqq) * sx - static_cast<double>(sq) * sqx) / det;
      if (c > 0) {
        c = 0;
        a = sqx / static_cast<double>(sqq);
      }
      if (!(a > 0)) break;
      const double err = sxx - 2 * a * sqx - 2 * c * sx + a * a * static_cast<double>(sqq) +
                         2 * a * c * static_cast<double>(sq) + n * c * c;
      if (err < best_err) {
        best_err = err;
        a_out = static_cast<float>(a);
        b_out = static_cast<float>(-c);
      }
      const float ia = static_cast<float>(1.0 / a), cf = static_cast<float>(c);
      bool changed = false;
      for (int i = 0; i < n; ++i) {
        const int v = std::clamp(nearest_int((x[i] - cf) * ia), 0, nmax);
        changed = changed || v != q[i];
        q[i] = v;
      }
      if (!changed) break;
    }
  }
}

// Codes for x given the stored scale ds = d * sc and offset dm = dmin * m; returns the squared error of the
// float32 dequantization ds * q - dm.
double choose_codes(const float* x, int n, int nmax, float ds, float dm, uint8_t* q) {
  double err = 0;
  const float ids = ds > 0.0f ? 1.0f / ds : 0.0f;
  for (int i = 0; i < n; ++i) {
    const int v = std::clamp(nearest_int((x[i] + dm) * ids), 0, nmax);
    // Rounding (x + dm) / ds can land one code off the float32 optimum; check the neighbours.
    double best = INFINITY;
    int best_v = v;
    for (int c = std::max(0, v - 1); c <= std::min(nmax, v + 1); ++c) {
      const double e = static_cast<double>(ds * static_cast<float>(c) - dm) - x[i];
      if (e * e < best) {
        best = e * e;
        best_v = c;
      }
    }
    q[i] = static_cast<uint8_t>(best_v);
    err += best;
  }
  return err;
}

void quant_q4_k(const float* x, void* dst, int64_t nb) {
  constexpr int kSub = 32, kNSub = kQK_K / kSub, kNMax = 15;
  for (int64_t b = 0; b < nb; ++b, x += kQK_K) {
    float a[kNSub], m[kNSub];
    float max_a = 0.0f, max_m = 0.0f;
    for (int s = 0; s < kNSub; ++s) {
      fit_scale_min(x + kSub * s, kSub, kNMax, a[s], m[s]);
      max_a = std::max(max_a, a[s]);
      max_m = std::max(max_m, m[s]);
    }
    BlockQ4_K blk;
    blk.d = f32_to_f16(max_a / 63.0f);
    blk.dmin = f32_to_f16(max_m / 63.0f);
    const float d = h2f(blk.d), dmin = h2f(blk.dmin);
    uint8_t sc[kNSub], mn[kNSub], q[kQK_K];
    for (int s = 0; s < kNSub; ++s) {
      const int sc0 = d > 0.0f ? std::clamp(nearest_int(a[s] / d), 0, 63) : 0;
      const int m0 = dmin > 0.0f ? std::clamp(nearest_int(m[s] / dmin), 0, 63) : 0;
      double best = INFINITY;
      uint8_t trial[kSub];
      for (int ts = std::max(0, sc0 - 1); ts <= std::min(63, sc0 + 1); ++ts) {
        for (int tm = std::max(0, m0 - 1); tm <= std::min(63, m0 + 1); ++tm) {
          const float ds = d * static_cast<float>(ts), dm = dmin * static_cast<float>(tm);
          const double err = choose_codes(x + kSub * s, kSub, kNMax, ds, dm, trial);
          if (err < best) {
            best = err;
            sc[s] = static_cast<uint8_t>(ts);
            mn[s] = static_cast<uint8_t>(tm);
            std::memcpy(q + kSub * s, trial, kSub);
          }
        }
      }
    }
    // Pack the 6-bit scales and mins (the inverse of unpack_scale_min_k4).
    std::memset(blk.scales, 0, sizeof blk.scales);
    for (int s = 0; s < kNSub; ++s) {
      if (s < 4) {
        blk.scales[s] = static_cast<uint8_t>(blk.scales[s] | sc[s]);
        blk.scales[s + 4] = static_cast<uint8_t>(blk.scales[s + 4] | mn[s]);
      } else {
        blk.scales[s + 4] = static_cast<uint8_t>((sc[s] & 0xF) | ((mn[s] & 0xF) << 4));
        blk.scales[s - 4] = static_cast<uint8_t>(blk.scales[s - 4] | ((sc[s] >> 4) << 6));
        blk.scales[s] = static_cast<uint8_t>(blk.scales[s] | ((mn[s] >> 4) << 6));
      }
    }
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l)
        blk.qs[32 * c + l] = static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
    store_block(dst, b, blk);
  }
}

uint32_t block_elems(DType t) {
  auto info = dtype_info(static_cast<uint32_t>(t));
  return info ? info->block_elems : 0;
}

}  // namespace

bool can_dequantize(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16:
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0:
    case DType::Q2_K: case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K:
      return true;
    default: return false;
  }
}

bool can_quantize(DType t) {
  switch (t) {
    case DType::F32: case DType::F16: case DType::BF16:
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_1: case DType::Q4_K:
      return true;
    default: return false;
  }
}

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  assert(can_dequantize(t) && n % block_elems(t) == 0);
  const int64_t nb = n / block_elems(t);
  switch (t) {
    case DType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
    case DType::F16:
    case DType::BF16: {
      const auto* p = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = t == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
      return;
    }
    case DType::Q4_0: dequant_q4_0(src, dst, nb); return;
    case DType::Q4_1: dequant_q4_1(src, dst, nb); return;
    case DType::Q5_0: dequant_q5_0(src, dst, nb); return;
    case DType::Q5_1: dequant_q5_1(src, dst, nb); return;
    case DType::Q8_0: dequant_q8_0(src, dst, nb); return;
    case DType::Q2_K: dequant_q2_k(src, dst, nb); return;
    case DType::Q3_K: dequant_q3_k(src, dst, nb); return;
    case DType::Q4_K: dequant_q4_k(src, dst, nb); return;
    case DType::Q5_K: dequant_q5_k(src, dst, nb); return;
    case DType::Q6_K: dequant_q6_k(src, dst, nb); return;
    default: return;
  }
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  assert(can_quantize(t) && n % block_elems(t) == 0);
  const int64_t nb = n / block_elems(t);
  switch (t) {
    case DType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
    case DType::F16:
    case DType::BF16: {
      auto* p = static_cast<uint8_t*>(dst);
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = t == DType::F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      return;
    }
    case DType::Q8_0: quant_q8_0(src, dst, nb); return;
    case DType::Q4_0: quant_q4_0(src, dst, nb); return;
    case DType::Q4_1: quant_q4_1(src, dst, nb); return;
    case DType::Q4_K: quant_q4_k(src, dst, nb); return;
    default: return;
  }
}

namespace {
std::string join_types(bool (*pred)(DType), std::initializer_list<DType> order) {
  std::string s;
  for (DType t : order)
    if (pred(t)) s += (s.empty() ? "" : ", ") + std::string(dtype_name(t));
  return s;
}
}  // namespace

std::string supported_dtypes_text() {
  return join_types(can_dequantize, {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                                     DType::Q5_1, DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,
                                     DType::Q6_K});
}

std::string quantize_targets_text() {
  return join_types([](DType t) { return can_quantize(t) && t != DType::F32; },
                    {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4_K});
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (uint32_t id = 0; id < 64; ++id) {
    auto info = dtype_info(id);
    if (!info || info->name.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i)
      same = std::toupper(static_cast<unsigned char>(name[i])) == info->name[i];
    if (same) return static_cast<DType>(id);
  }
  return std::nullopt;
}

}  // namespace tern
