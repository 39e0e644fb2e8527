// A Backend that times another: every op is forwarded to the inner backend and its wall time (after the
// backend's synchronize(), so a device backend's queued work is counted where it was issued) is added to a
// total per op and weight role, split by phase: calls of one token are the decode steps of a batch-1 run,
// calls of more are prefill (swiglu and add, which take no token count, count as prefill; the model calls
// only the fused ops). `tern bench --op-times` wraps its backend in one and prints where a step's time
// goes, to set against the roofline's per-op table (docs/estimator.md). Synchronizing after every op takes
// away a device backend's overlap of launches, so its totals are an upper bound there; on the CPU backends,
// whose synchronize() does nothing, the timing adds two clock reads per op.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace tern {

class TimedBackend final : public Backend {
 public:
  explicit TimedBackend(Backend& inner) : in_(inner) {}

  struct OpTime {
    std::string op;  // "ffn_input", "matmul_residual attn_output", "matmul output", ...
    double seconds = 0;
    int64_t calls = 0;
  };
  // Totals so far, largest first, for calls of one token (decode) or of more (prefill).
  std::vector<OpTime> totals(bool decode) const;
  void reset();

  const char* name() const override { return in_.name(); }
  bool host_memory() const override { return in_.host_memory(); }
  Result<void*> alloc(size_t bytes) override { return in_.alloc(bytes); }
  void dealloc(void* p) override { in_.dealloc(p); }
  Status copy_to_host(void* host_dst, const void* src, size_t bytes) override {
    return in_.copy_to_host(host_dst, src, bytes);
  }
  void copy_from_host(void* dst, const void* host_src, size_t bytes) override {
    in_.copy_from_host(dst, host_src, bytes);
  }
  void copy(void* dst, const void* src, size_t bytes) override { in_.copy(dst, src, bytes); }
  Status prepare(const WeightStore& weights) override { return in_.prepare(weights); }
  PrepareStats prepare_stats() const override { return in_.prepare_stats(); }
  Status synchronize() override { return in_.synchronize(); }
  bool supports_kv(DType t) const override { return in_.supports_kv(t); }
  bool supports(DType t) const override { return in_.supports(t); }

  void embedding(const TensorView& table, const int* tokens, int n_tokens, float* out) override;
  void rmsnorm(const float* x, const TensorView& w, float eps, int n_tokens, float* out) override;
  void matmul(const TensorView& w, const float* x, int n_tokens, float* out) override;
  void rope(float* x, int n_tokens, int n_heads, int head_dim, int pos0, const float* freqs,
            RopeStyle style) override;
  void kv_store(const KvView& kv, int pos0, int n_tokens, const float* k, const float* v) override;
  void attention(const float* q, const KvView& kv, int n_tokens, int pos0, int n_heads, int n_kv_heads,
                 int head_dim, float* out) override;
  void swiglu(float* gate, const float* up, int64_t n) override;
  void add(float* x, const float* y, int64_t n) override;
  void add_bias(float* x, const TensorView& b, int n_tokens) override;
  void attn_input(const AttnInput& a, const float* x, int n_tokens, const int* pos, float* xb, float* q,
                  float* k, float* v) override;
  void attention_batch(const AttnSeq* seqs, int n_seqs, const float* q, const float* k, const float* v,
                       int n_heads, int n_kv_heads, int head_dim, float* out) override;
  void ffn_input(const float* x, const TensorView& norm, float eps, const TensorView& w_gate,
                 const TensorView& w_up, const TensorView* b_gate, const TensorView* b_up, int n_tokens,
                 float* xb, float* h, float* h2) override;
  void matmul_residual(const TensorView& w, const TensorView* b, const float* y, int n_tokens, float* x,
                       float* tmp) override;

 private:
  using Clock = std::chrono::steady_clock;
  // Synchronizes the inner backend and adds the time since t0 to (op, phase); with a weight, the op's name
  // is followed by the weight's role.
  void done(const char* op, const TensorView* w, int n_tokens, Clock::time_point t0);

  Backend& in_;
  std::map<std::string, OpTime> decode_, prefill_;
};

// The role of a weight in op names: "blk.3.ffn_down.weight" -> "ffn_down", "output.weight" -> "output".
std::string weight_role(const std::string& tensor_name);

}  // namespace tern
