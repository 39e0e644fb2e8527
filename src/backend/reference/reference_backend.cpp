// The reference backend: scalar fp32 loops that anyone can check by eye against the math in backend.h.
// It is the oracle every optimised path is tested against, so it is never optimised. Accumulations are in
// double where a sum runs over a whole row, so that its own rounding error stays far below test tolerances.
#include <cmath>
#include <vector>

#include "backend/backend.h"
#include "core/quant.h"

namespace tern {

namespace {

class ReferenceBackend final : public Backend {
 public:
  const char* name() const override { return "reference"; }
  // Every type core/quant.h dequantizes: weights of any of them are expanded one row at a time to fp32.
  bool supports(DType t) const override { return dtype_is_supported(t); }

  void embedding(const TensorView& table, const int* tokens, int n_tokens, float* out) override {
    const int64_t dim = table.cols();
    for (int t = 0; t < n_tokens; ++t) row_to_f32(table.dtype, table.row_ptr(tokens[t]), out + t * dim, dim);
  }

  void rmsnorm(const float* x, const TensorView& w, float eps, int n_tokens, float* out) override {
    const int64_t n = w.numel();
    for (int t = 0; t < n_tokens; ++t) {
      const float* xt = x + t * n;
      double ss = 0.0;
      for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xt[i]) * xt[i];
      const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
      const float* wf = weight_row(w, w.data, n);
      for (int64_t i = 0; i < n; ++i) out[t * n + i] = xt[i] * scale * wf[i];
    }
  }

  void matmul(const TensorView& w, const float* x, int n_tokens, float* out) override {
    const int64_t n_out = w.rows(), n_in = w.cols();
    for (int64_t r = 0; r < n_out; ++r) {
      const float* row = weight_row(w, w.row_ptr(r), n_in);  // expanded once, used by every token
      for (int t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * n_in;
        double acc = 0.0;
        for (int64_t i = 0; i < n_in; ++i) acc += static_cast<double>(row[i]) * xt[i];
        out[t * n_out + r] = static_cast<float>(acc);
      }
    }
  }

  void rope(float* x, int n_tokens, int n_heads, int head_dim, int pos0, const float* freqs,
            RopeStyle style) override {
    const int half = head_dim / 2;
    for (int t = 0; t < n_tokens; ++t) {
      const int pos = pos0 + t;
      for (int h = 0; h < n_heads; ++h) {
        float* v = x + (static_cast<int64_t>(t) * n_heads + h) * head_dim;
        for (int i = 0; i < half; ++i) {
          const double angle = pos * static_cast<double>(freqs[i]);
          const float c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
          // Adjacent: (2i, 2i+1). HalfSplit: (i, i + half).
          const int a = style == RopeStyle::Adjacent ? 2 * i : i;
          const int b = style == RopeStyle::Adjacent ? 2 * i + 1 : i + half;
          const float x0 = v[a], x1 = v[b];
          v[a] = x0 * c - x1 * s;
          v[b] = x0 * s + x1 * c;
        }
      }
    }
  }

  void kv_store(const KvView& kv, int pos0, int n_tokens, const float* k, const float* v) override {
    const int64_t n = kv.row_elems;
    for (int t = 0; t < n_tokens; ++t) {
      quantize_row(kv.dtype, k + t * n, kv.k_row(pos0 + t), n);
      quantize_row(kv.dtype, v + t * n, kv.v_row(pos0 + t), n);
    }
  }

  void attention(const float* q, const KvView& kv, int n_tokens, int pos0, int n_heads, int n_kv_heads,
                 int head_dim, float* out) override {
    const int group = n_heads / n_kv_heads;
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
    const int n_pos = pos0 + n_tokens;
    // The cached rows as fp32 (n_pos, n_kv_heads, head_dim), dequantized once per call.
    const int64_t kv_dim = static_cast<int64_t>(n_kv_heads) * head_dim;
    if (kf_.size() < static_cast<size_t>(n_pos * kv_dim)) {
      kf_.resize(static_cast<size_t>(n_pos * kv_dim));
      vf_.resize(static_cast<size_t>(n_pos * kv_dim));
    }
    for (int j = 0; j < n_pos; ++j) {
      dequantize_row(kv.dtype, kv.k_row(j), kf_.data() + j * kv_dim, kv_dim);
      dequantize_row(kv.dtype, kv.v_row(j), vf_.data() + j * kv_dim, kv_dim);
    }
    const float* k = kf_.data();
    const float* v = vf_.data();
    if (scores_.size() < static_cast<size_t>(n_pos)) scores_.resize(static_cast<size_t>(n_pos));
    double* scores = scores_.data();
    for (int t = 0; t < n_tokens; ++t) {
      const int n_keys = pos0 + t + 1;  // causal: keys 0 .. pos
      for (int h = 0; h < n_heads; ++h) {
        const float* qh = q + (static_cast<int64_t>(t) * n_heads + h) * head_dim;
        const int kvh = h / group;
        double max_s = -INFINITY;
        for (int j = 0; j < n_keys; ++j) {
          const float* kj = k + j * kv_dim + kvh * head_dim;
          double s = 0.0;
          for (int d = 0; d < head_dim; ++d) s += static_cast<double>(qh[d]) * kj[d];
          scores[j] = s * scale;
          if (scores[j] > max_s) max_s = scores[j];
        }
        double sum = 0.0;
        for (int j = 0; j < n_keys; ++j) sum += (scores[j] = std::exp(scores[j] - max_s));
        float* oh = out + (static_cast<int64_t>(t) * n_heads + h) * head_dim;
        for (int d = 0; d < head_dim; ++d) {
          double acc = 0.0;
          for (int j = 0; j < n_keys; ++j) acc += scores[j] * v[j * kv_dim + kvh * head_dim + d];
          oh[d] = static_cast<float>(acc / sum);
        }
      }
    }
  }

  void swiglu(float* gate, const float* up, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) {
      const float g = gate[i];
      gate[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  }

  void add(float* x, const float* y, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
  }

  void add_bias(float* x, const TensorView& b, int n_tokens) override {
    const int64_t n = b.numel();
    for (int t = 0; t < n_tokens; ++t)
      for (int64_t i = 0; i < n; ++i) x[t * n + i] += load_element(b.dtype, b.data, i);
  }

 private:
  // One weight row as fp32: F32 rows are read in place; other types are dequantized into row_ (grown to the
  // widest row seen, so no allocation per call).
  const float* weight_row(const TensorView& w, const void* row, int64_t n) {
    if (w.dtype == DType::F32) return static_cast<const float*>(row);
    if (row_.size() < static_cast<size_t>(n)) row_.resize(static_cast<size_t>(n));
    row_to_f32(w.dtype, row, row_.data(), n);
    return row_.data();
  }

  std::vector<float> row_;      // scratch for weight_row
  std::vector<double> scores_;  // attention scores of one query head, grown to the longest context seen
  std::vector<float> kf_, vf_;  // the cache rows of one attention call as fp32
};

}  // namespace

std::unique_ptr<Backend> make_reference_backend() { return std::make_unique<ReferenceBackend>(); }

}  // namespace tern
