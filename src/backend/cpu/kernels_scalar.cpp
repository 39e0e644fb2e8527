// Portable kernels: the fallback on CPUs without AVX2 and the plain statement of each dot product's math.
#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_kernels.h"
#include "core/dtype.h"
#include "core/quant.h"

namespace tern::cpu {

void quantize_row_q8x(const float* x, BlockQ8X* out, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) {
      const float a = std::fabs(xb[i]);
      amax = a > amax ? a : amax;
    }
    const float d = amax / 127.0f;
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int i = 0; i < 32; ++i) {
      const int q = static_cast<int>(std::nearbyint(xb[i] * id));
      out[b].qs[i] = static_cast<int8_t>(q);
      sum += q;
    }
    out[b].d = d;
    out[b].sum = d * static_cast<float>(sum);
  }
}

namespace {

float dot_f32(const float* w, const float* x, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += w[i] * x[i];
  return acc;
}

float dot_f16(const uint16_t* w, const float* x, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += f16_to_f32(w[i]) * x[i];
  return acc;
}

float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) acc += bf16_to_f32(w[i]) * x[i];
  return acc;
}

// sum_i (dw * qw_i) * (dx * qx_i) = dw * dx * sum_i qw_i * qx_i, the inner sum exact in int32.
float dot_q8_0(const void* w, const BlockQ8X* x, int64_t nb) {
  const BlockQ8_0* wb = static_cast<const BlockQ8_0*>(w);
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int s = 0;
    for (int i = 0; i < 32; ++i) s += wb[b].qs[i] * x[b].qs[i];
    acc += f16_to_f32(wb[b].d) * x[b].d * static_cast<float>(s);
  }
  return acc;
}

// w_i = dw * (q_i - 8): sum = dw * (dx * sum q_i qx_i - 8 * dx * sum qx_i).
float dot_q4_0(const void* w, const BlockQ8X* x, int64_t nb) {
  const BlockQ4_0* wb = static_cast<const BlockQ4_0*>(w);
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int s = 0;
    for (int j = 0; j < 16; ++j) s += (wb[b].qs[j] & 0xF) * x[b].qs[j] + (wb[b].qs[j] >> 4) * x[b].qs[j + 16];
    acc += f16_to_f32(wb[b].d) * (x[b].d * static_cast<float>(s) - 8.0f * x[b].sum);
  }
  return acc;
}

// w_i = dw * q_i + m: sum = dw * dx * sum q_i qx_i + m * dx * sum qx_i.
float dot_q4_1(const void* w, const BlockQ8X* x, int64_t nb) {
  const BlockQ4_1* wb = static_cast<const BlockQ4_1*>(w);
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    int s = 0;
    for (int j = 0; j < 16; ++j) s += (wb[b].qs[j] & 0xF) * x[b].qs[j] + (wb[b].qs[j] >> 4) * x[b].qs[j + 16];
    acc += f16_to_f32(wb[b].d) * x[b].d * static_cast<float>(s) + f16_to_f32(wb[b].m) * x[b].sum;
  }
  return acc;
}

void f16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = ::tern::f16_to_f32(src[i]);
}

void f32_to_f16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = ::tern::f32_to_f16(src[i]);
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

constexpr Kernels kScalar = {dot_f32,  dot_f16,    dot_bf16, dot_q8_0, dot_q4_0,        dot_q4_1,
                             f16_to_f32, f32_to_f16, axpy,   nullptr,  silu_mul_scalar};

}  // namespace

const Kernels& scalar_kernels() { return kScalar; }

void silu_mul_scalar(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace tern::cpu
