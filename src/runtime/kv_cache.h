// The KV cache of one sequence: for each layer, keys and values of every position so far, fp32,
// laid out (n_ctx, n_kv_heads, head_dim) so that one position's heads are contiguous.
#pragma once

#include <vector>

#include "model/config.h"

namespace tern {

class KvCache {
 public:
  KvCache(const ModelConfig& c, int n_ctx)
      : n_ctx_(n_ctx), kv_dim_(c.kv_dim()),
        k_(static_cast<size_t>(c.n_layers) * n_ctx * c.kv_dim()),
        v_(static_cast<size_t>(c.n_layers) * n_ctx * c.kv_dim()) {}

  int n_ctx() const { return n_ctx_; }
  float* k(int layer) { return k_.data() + static_cast<size_t>(layer) * n_ctx_ * kv_dim_; }
  float* v(int layer) { return v_.data() + static_cast<size_t>(layer) * n_ctx_ * kv_dim_; }
  size_t bytes() const { return (k_.size() + v_.size()) * sizeof(float); }

 private:
  int n_ctx_;
  int kv_dim_;
  std::vector<float> k_, v_;
};

}  // namespace tern
