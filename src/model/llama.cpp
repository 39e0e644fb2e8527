#include "model/llama.h"

#include <algorithm>

#include "core/quant.h"

namespace tern {

Status validate_llama_weights(const ModelConfig& c, const WeightStore& w, const std::string& source) {
  auto expect = [&](const std::string& name, std::vector<int64_t> shape) -> Status {
    const TensorView* t = w.find(name);
    if (!t) return error(source + ": missing tensor '" + name + "'");
    if (t->shape != shape) {
      TensorView want;
      want.shape = shape;
      return error(source + ": tensor '" + name + "' has shape " + t->shape_str() + ", expected " + want.shape_str());
    }
    if (!dtype_is_supported(t->dtype))
      return error(source + ": tensor '" + name + "' has type " + std::string(dtype_name(t->dtype)) +
                   ", which is not supported yet (supported: " + supported_dtypes_text() + ")");
    return Status();
  };
  // Biases are added by Backend::add_bias, which reads plain float types only.
  auto expect_bias = [&](const std::string& name, int64_t n) -> Status {
    TERN_TRY(expect(name, {n}));
    const DType t = w.find(name)->dtype;
    if (t != DType::F32 && t != DType::F16 && t != DType::BF16)
      return error(source + ": bias '" + name + "' has type " + std::string(dtype_name(t)) +
                   "; biases must be F32, F16 or BF16");
    return Status();
  };
  const int64_t D = c.dim, H = c.hidden_dim, Q = c.q_dim(), KV = c.kv_dim(), V = c.vocab_size;
  TERN_TRY(expect("token_embd.weight", {V, D}));
  TERN_TRY(expect("output_norm.weight", {D}));
  if (!c.tied_embeddings) TERN_TRY(expect("output.weight", {V, D}));
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    TERN_TRY(expect(b + "attn_norm.weight", {D}));
    TERN_TRY(expect(b + "attn_q.weight", {Q, D}));
    TERN_TRY(expect(b + "attn_k.weight", {KV, D}));
    TERN_TRY(expect(b + "attn_v.weight", {KV, D}));
    TERN_TRY(expect(b + "attn_output.weight", {D, Q}));
    TERN_TRY(expect(b + "ffn_norm.weight", {D}));
    TERN_TRY(expect(b + "ffn_gate.weight", {H, D}));
    TERN_TRY(expect(b + "ffn_up.weight", {H, D}));
    TERN_TRY(expect(b + "ffn_down.weight", {D, H}));
    if (c.attn_bias) {
      TERN_TRY(expect_bias(b + "attn_q.bias", Q));
      TERN_TRY(expect_bias(b + "attn_k.bias", KV));
      TERN_TRY(expect_bias(b + "attn_v.bias", KV));
      TERN_TRY(expect_bias(b + "attn_output.bias", D));
    }
    if (c.mlp_bias) {
      TERN_TRY(expect_bias(b + "ffn_gate.bias", H));
      TERN_TRY(expect_bias(b + "ffn_up.bias", H));
      TERN_TRY(expect_bias(b + "ffn_down.bias", D));
    }
  }
  return Status();
}

LlamaModel::LlamaModel(const ModelConfig& c, Backend& b, int n_ctx, int max_batch)
    : c_(c), be_(b), max_batch_(max_batch), cache_(c, n_ctx) {
  const size_t B = static_cast<size_t>(max_batch);
  x_.resize(B * c.dim);
  xb_.resize(B * std::max(c.dim, c.q_dim()));
  q_.resize(B * c.q_dim());
  att_.resize(B * c.q_dim());
  hb_.resize(B * c.hidden_dim);
  hb2_.resize(B * c.hidden_dim);
}

Result<std::unique_ptr<LlamaModel>> LlamaModel::create(const ModelConfig& c, const WeightStore& w, Backend& backend,
                                                        int n_ctx, int max_batch) {
  TERN_TRY(validate_llama_weights(c, w, "model"));
  if (n_ctx < 1 || n_ctx > c.max_seq_len)
    return error("context length " + std::to_string(n_ctx) + " is outside [1, " + std::to_string(c.max_seq_len) +
                 "] (the model's maximum)");
  if (max_batch < 1) return error("max_batch must be at least 1");
  std::unique_ptr<LlamaModel> m(new LlamaModel(c, backend, n_ctx, max_batch));
  m->tok_embd_ = w.find("token_embd.weight");
  m->out_norm_ = w.find("output_norm.weight");
  m->classifier_ = c.tied_embeddings ? m->tok_embd_ : w.find("output.weight");
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    LayerWeights lw{w.find(b + "attn_norm.weight"), w.find(b + "attn_q.weight"), w.find(b + "attn_k.weight"),
                    w.find(b + "attn_v.weight"), w.find(b + "attn_output.weight"), w.find(b + "ffn_norm.weight"),
                    w.find(b + "ffn_gate.weight"), w.find(b + "ffn_up.weight"), w.find(b + "ffn_down.weight")};
    if (c.attn_bias) {
      lw.bq = w.find(b + "attn_q.bias");
      lw.bk = w.find(b + "attn_k.bias");
      lw.bv = w.find(b + "attn_v.bias");
      lw.bo = w.find(b + "attn_output.bias");
    }
    if (c.mlp_bias) {
      lw.b_gate = w.find(b + "ffn_gate.bias");
      lw.b_up = w.find(b + "ffn_up.bias");
      lw.b_down = w.find(b + "ffn_down.bias");
    }
    m->layers_.push_back(lw);
  }
  TERN_TRY(validate_config(c, "model"));
  m->rope_freqs_ = rope_frequencies(c);  // once: the per-token path only reads the table
  for (const TensorView* t : {m->tok_embd_, m->out_norm_, m->classifier_})
    if (!backend.supports(t->dtype))
      return error(std::string("backend ") + backend.name() + " does not support tensor '" + t->name + "' of type " +
                   std::string(dtype_name(t->dtype)));
  return m;
}

Status LlamaModel::forward(const int* tokens, int n, int pos, float* logits, bool all_logits) {
  if (n < 1) return error("forward: no tokens");
  if (pos < 0 || pos + n > cache_.n_ctx())
    return error("sequence of " + std::to_string(pos + n) + " tokens exceeds the context length " +
                 std::to_string(cache_.n_ctx()));
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= c_.vocab_size)
      return error("token id " + std::to_string(tokens[i]) + " is outside the vocabulary [0, " +
                   std::to_string(c_.vocab_size) + ")");
  for (int done = 0; done < n;) {
    const int chunk = std::min(max_batch_, n - done);
    const bool last = done + chunk == n;
    float* out = all_logits ? logits + static_cast<size_t>(done) * c_.vocab_size : (last ? logits : nullptr);
    forward_chunk(tokens + done, chunk, pos + done, out, all_logits);
    done += chunk;
  }
  return Status();
}

void LlamaModel::forward_chunk(const int* tokens, int n, int pos, float* logits, bool all_logits) {
  const int D = c_.dim, KV = c_.kv_dim(), H = c_.hidden_dim;
  float* x = x_.data();    // (n, D) the residual stream
  float* xb = xb_.data();  // (n, D) normalised input / branch output
  be_.embedding(*tok_embd_, tokens, n, x);

  for (int l = 0; l < c_.n_layers; ++l) {
    const LayerWeights& w = layers_[l];
    // Attention block. Keys and values go straight into the cache rows pos .. pos+n-1.
    float* k = cache_.k(l) + static_cast<size_t>(pos) * KV;  // (n, n_kv_heads, head_dim)
    float* v = cache_.v(l) + static_cast<size_t>(pos) * KV;
    be_.rmsnorm(x, *w.attn_norm, c_.norm_eps, n, xb);
    be_.matmul(*w.wq, xb, n, q_.data());  // (n, n_heads, head_dim)
    be_.matmul(*w.wk, xb, n, k);
    be_.matmul(*w.wv, xb, n, v);
    if (w.bq) {
      be_.add_bias(q_.data(), *w.bq, n);
      be_.add_bias(k, *w.bk, n);
      be_.add_bias(v, *w.bv, n);
    }
    be_.rope(q_.data(), n, c_.n_heads, c_.head_dim, pos, rope_freqs_.data(), c_.rope_style);
    be_.rope(k, n, c_.n_kv_heads, c_.head_dim, pos, rope_freqs_.data(), c_.rope_style);
    be_.attention(q_.data(), cache_.k(l), cache_.v(l), n, pos, c_.n_heads, c_.n_kv_heads, c_.head_dim, att_.data());
    be_.matmul(*w.wo, att_.data(), n, xb);  // (n, D)
    if (w.bo) be_.add_bias(xb, *w.bo, n);
    be_.add(x, xb, static_cast<int64_t>(n) * D);

    // Feed-forward block (SwiGLU).
    be_.rmsnorm(x, *w.ffn_norm, c_.norm_eps, n, xb);
    be_.matmul(*w.w_gate, xb, n, hb_.data());  // (n, H)
    be_.matmul(*w.w_up, xb, n, hb2_.data());   // (n, H)
    if (w.b_gate) {
      be_.add_bias(hb_.data(), *w.b_gate, n);
      be_.add_bias(hb2_.data(), *w.b_up, n);
    }
    be_.swiglu(hb_.data(), hb2_.data(), static_cast<int64_t>(n) * H);
    be_.matmul(*w.w_down, hb_.data(), n, xb);  // (n, D)
    if (w.b_down) be_.add_bias(xb, *w.b_down, n);
    be_.add(x, xb, static_cast<int64_t>(n) * D);
  }
  if (!logits) return;
  // Only the rows whose logits are wanted go through the final norm and the classifier.
  const int first = all_logits ? 0 : n - 1;
  const int rows = n - first;
  be_.rmsnorm(x + static_cast<size_t>(first) * D, *out_norm_, c_.norm_eps, rows, xb);
  be_.matmul(*classifier_, xb, rows, logits);
}

}  // namespace tern
