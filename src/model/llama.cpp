#include "model/llama.h"

#include <algorithm>
#include <cstring>

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

LlamaModel::LlamaModel(const ModelConfig& c, Backend& b, int n_ctx, int max_batch, KvCache cache)
    : c_(c), be_(b), n_ctx_(n_ctx), max_batch_(max_batch), cache_(std::move(cache)) {
  tok_.resize(static_cast<size_t>(max_batch));
  pos_.resize(static_cast<size_t>(max_batch));
  attn_seqs_.resize(static_cast<size_t>(max_batch));
  seq_tables_.resize(static_cast<size_t>(max_batch));
}

Status LlamaModel::alloc_buffers(const std::vector<float>& rope_freqs) {
  const size_t B = static_cast<size_t>(max_batch_), F = sizeof(float);
  auto make = [&](BackendBuffer& buf, size_t bytes, const char* what) -> Status {
    auto r = BackendBuffer::make(be_, bytes);
    if (!r) return error(std::string("activation buffer '") + what + "': " + r.message());
    buf = std::move(r.value());
    return Status();
  };
  TERN_TRY(make(x_, B * c_.dim * F, "x"));
  TERN_TRY(make(xb_, B * std::max(c_.dim, c_.q_dim()) * F, "xb"));
  TERN_TRY(make(q_, B * c_.q_dim() * F, "q"));
  TERN_TRY(make(k_, B * c_.kv_dim() * F, "k"));
  TERN_TRY(make(v_, B * c_.kv_dim() * F, "v"));
  TERN_TRY(make(att_, B * c_.q_dim() * F, "att"));
  TERN_TRY(make(hb_, B * c_.hidden_dim * F, "hb"));
  TERN_TRY(make(hb2_, B * c_.hidden_dim * F, "hb2"));
  TERN_TRY(make(rope_freqs_, rope_freqs.size() * F, "rope_freqs"));
  be_.copy_from_host(rope_freqs_.get(), rope_freqs.data(), rope_freqs.size() * F);
  if (!be_.host_memory()) {
    TERN_TRY(make(logits_, B * static_cast<size_t>(c_.vocab_size) * F, "logits"));
    const size_t own = own_blocks_.size() * sizeof(int32_t);
    TERN_TRY(make(own_table_, own, "block table"));
    be_.copy_from_host(own_table_.get(), own_blocks_.data(), own);
    max_table_ = (n_ctx_ + cache_.block_size() - 1) / cache_.block_size();
    table_stage_.resize(B * static_cast<size_t>(max_table_));
    TERN_TRY(make(tables_, table_stage_.size() * sizeof(int32_t), "block tables"));
  }
  return be_.synchronize();
}

Result<std::unique_ptr<LlamaModel>> LlamaModel::create(const ModelConfig& c, const WeightStore& w, Backend& backend,
                                                        int n_ctx, int max_batch, const KvOptions& kv) {
  TERN_TRY(validate_llama_weights(c, w, "model"));
  if (n_ctx < 1 || n_ctx > c.max_seq_len)
    return error("context length " + std::to_string(n_ctx) + " is outside [1, " + std::to_string(c.max_seq_len) +
                 "] (the model's maximum)");
  if (max_batch < 1) return error("max_batch must be at least 1");
  KvOptions ko = kv;
  const int own_blocks = (n_ctx + ko.block_size - 1) / std::max(ko.block_size, 1);
  if (ko.n_blocks == 0) ko.n_blocks = own_blocks;
  TERN_TRY(validate_config(c, "model"));
  TERN_TRY(backend.prepare(w));  // a device backend uploads the weights here
  auto cache = KvCache::create(c, ko, backend);
  if (!cache) return cache.status();
  std::unique_ptr<LlamaModel> m(new LlamaModel(c, backend, n_ctx, max_batch, std::move(cache.value())));
  // forward()'s own sequence reads blocks 0, 1, 2, ... (the pool is shared with forward_batch callers,
  // which should not mix the two on one model).
  for (int b = 0; b < own_blocks && b < ko.n_blocks; ++b) m->own_blocks_.push_back(b);
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
  for (const TensorView* t : {m->tok_embd_, m->out_norm_, m->classifier_})
    if (!backend.supports(t->dtype))
      return error(std::string("backend ") + backend.name() + " does not support tensor '" + t->name + "' of type " +
                   std::string(dtype_name(t->dtype)));
  TERN_TRY(m->alloc_buffers(rope_frequencies(c)));  // once: the per-token path only reads the table
  return m;
}

Status LlamaModel::check_tokens(const int* tokens, int n, int pos) const {
  if (n < 1) return error("forward: no tokens");
  if (pos < 0 || pos + n > n_ctx_)
    return error("sequence of " + std::to_string(pos + n) + " tokens exceeds the context length " +
                 std::to_string(n_ctx_));
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= c_.vocab_size)
      return error("token id " + std::to_string(tokens[i]) + " is outside the vocabulary [0, " +
                   std::to_string(c_.vocab_size) + ")");
  return Status();
}

Status LlamaModel::forward(const int* tokens, int n, int pos, float* logits, bool all_logits) {
  TERN_TRY(check_tokens(tokens, n, pos));
  if (static_cast<int64_t>(own_blocks_.size()) * cache_.block_size() < pos + n)
    return error("the KV cache pool is too small for " + std::to_string(pos + n) + " positions");
  for (int done = 0; done < n;) {
    const int chunk = std::min(max_batch_, n - done);
    const bool last = done + chunk == n;
    SeqChunk s;
    s.tokens = tokens + done;
    s.n = chunk;
    s.pos = pos + done;
    s.blocks = own_blocks_.data();
    if (all_logits) {
      TERN_TRY(forward_chunks(&s, 1, true, logits + static_cast<size_t>(done) * c_.vocab_size));
    } else {
      s.logits = last ? logits : nullptr;
      TERN_TRY(forward_chunks(&s, 1, false, nullptr));
    }
    done += chunk;
  }
  return Status();
}

Status LlamaModel::forward_batch(const SeqChunk* seqs, int n_seqs) {
  int total = 0;
  for (int i = 0; i < n_seqs; ++i) {
    TERN_TRY(check_tokens(seqs[i].tokens, seqs[i].n, seqs[i].pos));
    if (!seqs[i].blocks) return error("forward_batch: a sequence has no block table");
    total += seqs[i].n;
  }
  if (total < 1) return error("forward_batch: no tokens");
  if (total > max_batch_)
    return error("forward_batch: " + std::to_string(total) + " tokens exceed the batch limit " +
                 std::to_string(max_batch_));
  return forward_chunks(seqs, n_seqs, false, nullptr);
}

Status LlamaModel::forward_chunks(const SeqChunk* seqs, int n_seqs, bool all_logits, float* all_out) {
  const int D = c_.dim;
  const bool host = be_.host_memory();
  int n = 0;  // all tokens of the call, sequence after sequence
  int staged = 0;  // table entries staged for upload (backends whose memory is not the host's)
  for (int i = 0; i < n_seqs; ++i) {
    std::copy(seqs[i].tokens, seqs[i].tokens + seqs[i].n, tok_.data() + n);
    n += seqs[i].n;
    if (host || seqs[i].blocks == own_blocks_.data()) {
      seq_tables_[i] = host ? seqs[i].blocks : static_cast<const int32_t*>(own_table_.get());
    } else {
      const int len = (seqs[i].pos + seqs[i].n + cache_.block_size() - 1) / cache_.block_size();
      std::copy(seqs[i].blocks, seqs[i].blocks + len, table_stage_.data() + staged);
      seq_tables_[i] = static_cast<const int32_t*>(tables_.get()) + staged;
      staged += len;
    }
  }
  if (staged) be_.copy_from_host(tables_.get(), table_stage_.data(), static_cast<size_t>(staged) * sizeof(int32_t));
  float* x = x_.f32();    // (n, D) the residual stream
  float* xb = xb_.f32();  // (n, D) normalised input / branch output
  float *q = q_.f32(), *k = k_.f32(), *v = v_.f32(), *att = att_.f32();
  float *hb = hb_.f32(), *hb2 = hb2_.f32();
  const float* freqs = rope_freqs_.f32();
  be_.embedding(*tok_embd_, tok_.data(), n, x);

  for (int i = 0, row = 0; i < n_seqs; row += seqs[i].n, ++i) {
    for (int t = 0; t < seqs[i].n; ++t) pos_[static_cast<size_t>(row + t)] = seqs[i].pos + t;
    Backend::AttnSeq& a = attn_seqs_[static_cast<size_t>(i)];
    a.n_tokens = seqs[i].n, a.pos0 = seqs[i].pos, a.row = row;
  }
  Backend::AttnInput ai;
  ai.eps = c_.norm_eps;
  ai.n_heads = c_.n_heads, ai.n_kv_heads = c_.n_kv_heads, ai.head_dim = c_.head_dim;
  ai.freqs = freqs;
  ai.style = c_.rope_style;
  for (int l = 0; l < c_.n_layers; ++l) {
    const LayerWeights& w = layers_[l];
    // Attention block: x += Wo attn(rope(Wq norm(x)), rope(Wk norm(x)), Wv norm(x)).
    ai.norm = w.attn_norm, ai.wq = w.wq, ai.wk = w.wk, ai.wv = w.wv, ai.bq = w.bq, ai.bk = w.bk, ai.bv = w.bv;
    be_.attn_input(ai, x, n, pos_.data(), xb, q, k, v);
    // Each sequence stores into and attends over its own blocks.
    for (int i = 0; i < n_seqs; ++i) attn_seqs_[static_cast<size_t>(i)].kv = cache_.view(l, seq_tables_[i]);
    be_.attention_batch(attn_seqs_.data(), n_seqs, q, k, v, c_.n_heads, c_.n_kv_heads, c_.head_dim, att);
    be_.matmul_residual(*w.wo, w.bo, att, n, x, xb);

    // Feed-forward block (SwiGLU): x += Wdown (silu(Wgate norm(x)) * Wup norm(x)).
    be_.ffn_input(x, *w.ffn_norm, c_.norm_eps, *w.w_gate, *w.w_up, w.b_gate, w.b_up, n, xb, hb, hb2);
    be_.matmul_residual(*w.w_down, w.b_down, hb, n, x, xb);
  }

  // Only the rows whose logits are wanted go through the final norm and the classifier.
  // Host backends write logits straight into the caller's memory; others into logits_, then copy out.
  const size_t V = static_cast<size_t>(c_.vocab_size);
  if (all_logits) {
    be_.rmsnorm(x, *out_norm_, c_.norm_eps, n, xb);
    if (host) {
      be_.matmul(*classifier_, xb, n, all_out);
      return Status();
    }
    be_.matmul(*classifier_, xb, n, logits_.f32());
    return be_.copy_to_host(all_out, logits_.get(), static_cast<size_t>(n) * V * sizeof(float));
  }
  int rows = 0;
  for (int i = 0, row = 0; i < n_seqs; row += seqs[i].n, ++i)
    if (seqs[i].logits) {
      // Gather the last token's residual of each sequence that wants logits (in place: rows only move up).
      const size_t src = static_cast<size_t>(row + seqs[i].n - 1) * D;
      if (src != static_cast<size_t>(rows) * D) be_.copy(x + static_cast<size_t>(rows) * D, x + src, sizeof(float) * D);
      ++rows;
    }
  if (rows == 0) return Status();
  be_.rmsnorm(x, *out_norm_, c_.norm_eps, rows, xb);
  if (!host) {
    be_.matmul(*classifier_, xb, rows, logits_.f32());
    for (int i = 0, r = 0; i < n_seqs; ++i)
      if (seqs[i].logits) TERN_TRY(be_.copy_to_host(seqs[i].logits, logits_.f32() + r++ * V, V * sizeof(float)));
    return Status();
  }
  if (rows == 1) {
    for (int i = 0; i < n_seqs; ++i)
      if (seqs[i].logits) be_.matmul(*classifier_, xb, 1, seqs[i].logits);
    return Status();
  }
  if (last_.size() < rows * V) last_.resize(rows * V);
  be_.matmul(*classifier_, xb, rows, last_.data());
  for (int i = 0, r = 0; i < n_seqs; ++i)
    if (seqs[i].logits) {
      std::copy(last_.data() + r * V, last_.data() + (r + 1) * V, seqs[i].logits);
      ++r;
    }
  return Status();
}

}  // namespace tern
