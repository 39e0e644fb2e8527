#include "backend/timed_backend.h"

#include <algorithm>

namespace tern {

std::string weight_role(const std::string& tensor_name) {
  std::string s = tensor_name;
  if (s.rfind("blk.", 0) == 0) {
    const size_t dot = s.find('.', 4);
    if (dot != std::string::npos) s = s.substr(dot + 1);
  }
  const size_t w = s.rfind(".weight");
  if (w != std::string::npos && w + 7 == s.size()) s.resize(w);
  return s;
}

void TimedBackend::done(const char* op, const TensorView* w, int n_tokens, Clock::time_point t0) {
  (void)in_.synchronize();  // an error stays with the inner backend for the caller's own synchronize
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  // The name is made after the clock is read, so that its cost is not the op's.
  const std::string name = w ? std::string(op) + " " + weight_role(w->name) : std::string(op);
  OpTime& o = (n_tokens == 1 ? decode_ : prefill_)[name];
  o.op = name;
  o.seconds += s;
  o.calls += 1;
}

std::vector<TimedBackend::OpTime> TimedBackend::totals(bool decode) const {
  std::vector<OpTime> v;
  for (const auto& [name, o] : decode ? decode_ : prefill_) v.push_back(o);
  std::sort(v.begin(), v.end(), [](const OpTime& a, const OpTime& b) {
    return a.seconds != b.seconds ? a.seconds > b.seconds : a.op < b.op;
  });
  return v;
}

void TimedBackend::reset() {
  decode_.clear();
  prefill_.clear();
}

void TimedBackend::embedding(const TensorView& table, const int* tokens, int n_tokens, float* out) {
  const auto t0 = Clock::now();
  in_.embedding(table, tokens, n_tokens, out);
  done("embedding", nullptr, n_tokens, t0);
}

void TimedBackend::rmsnorm(const float* x, const TensorView& w, float eps, int n_tokens, float* out) {
  const auto t0 = Clock::now();
  in_.rmsnorm(x, w, eps, n_tokens, out);
  done("rmsnorm", &w, n_tokens, t0);
}

void TimedBackend::matmul(const TensorView& w, const float* x, int n_tokens, float* out) {
  const auto t0 = Clock::now();
  in_.matmul(w, x, n_tokens, out);
  done("matmul", &w, n_tokens, t0);
}

void TimedBackend::rope(float* x, int n_tokens, int n_heads, int head_dim, int pos0, const float* freqs,
                        RopeStyle style) {
  const auto t0 = Clock::now();
  in_.rope(x, n_tokens, n_heads, head_dim, pos0, freqs, style);
  done("rope", nullptr, n_tokens, t0);
}

void TimedBackend::kv_store(const KvView& kv, int pos0, int n_tokens, const float* k, const float* v) {
  const auto t0 = Clock::now();
  in_.kv_store(kv, pos0, n_tokens, k, v);
  done("kv_store", nullptr, n_tokens, t0);
}

void TimedBackend::attention(const float* q, const KvView& kv, int n_tokens, int pos0, int n_heads,
                             int n_kv_heads, int head_dim, float* out) {
  const auto t0 = Clock::now();
  in_.attention(q, kv, n_tokens, pos0, n_heads, n_kv_heads, head_dim, out);
  done("attention", nullptr, n_tokens, t0);
}

void TimedBackend::swiglu(float* gate, const float* up, int64_t n) {
  const auto t0 = Clock::now();
  in_.swiglu(gate, up, n);
  done("swiglu", nullptr, 0, t0);
}

void TimedBackend::add(float* x, const float* y, int64_t n) {
  const auto t0 = Clock::now();
  in_.add(x, y, n);
  done("add", nullptr, 0, t0);
}

void TimedBackend::add_bias(float* x, const TensorView& b, int n_tokens) {
  const auto t0 = Clock::now();
  in_.add_bias(x, b, n_tokens);
  done("add_bias", nullptr, n_tokens, t0);
}

void TimedBackend::attn_input(const AttnInput& a, const float* x, int n_tokens, const int* pos, float* xb,
                              float* q, float* k, float* v) {
  const auto t0 = Clock::now();
  in_.attn_input(a, x, n_tokens, pos, xb, q, k, v);
  done("attn_input (norm, QKV, rope)", nullptr, n_tokens, t0);
}

void TimedBackend::attention_batch(const AttnSeq* seqs, int n_seqs, const float* q, const float* k,
                                   const float* v, int n_heads, int n_kv_heads, int head_dim, float* out) {
  int tokens = 0;
  for (int i = 0; i < n_seqs; ++i) tokens += seqs[i].n_tokens;
  const auto t0 = Clock::now();
  in_.attention_batch(seqs, n_seqs, q, k, v, n_heads, n_kv_heads, head_dim, out);
  done("attention_batch (KV store, attention)", nullptr, tokens, t0);
}

void TimedBackend::ffn_input(const float* x, const TensorView& norm, float eps, const TensorView& w_gate,
                             const TensorView& w_up, const TensorView* b_gate, const TensorView* b_up,
                             int n_tokens, float* xb, float* h, float* h2) {
  const auto t0 = Clock::now();
  in_.ffn_input(x, norm, eps, w_gate, w_up, b_gate, b_up, n_tokens, xb, h, h2);
  done("ffn_input (norm, gate, up, SiLU)", nullptr, n_tokens, t0);
}

void TimedBackend::matmul_residual(const TensorView& w, const TensorView* b, const float* y, int n_tokens,
                                   float* x, float* tmp) {
  const auto t0 = Clock::now();
  in_.matmul_residual(w, b, y, n_tokens, x, tmp);
  done("matmul_residual", &w, n_tokens, t0);
}

}  // namespace tern
