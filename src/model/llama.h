// The Llama-family forward pass, read top to bottom like llama2.c's run.c:
//   x = embed(token)
//   for each layer:  x += Wo · attn(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x))
//                    x += Wdown · (silu(Wgate·norm(x)) * Wup·norm(x))
//   logits = Wcls · norm(x)
// Prefill runs a whole chunk of prompt tokens through each op at once; decode is the one-token case.
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "core/status.h"
#include "formats/weights.h"
#include "model/config.h"
#include "runtime/kv_cache.h"

namespace tern {

// Checks that every tensor the forward pass reads exists with the right shape and a type the compute path
// supports; the error names the file and the tensor.
Status validate_llama_weights(const ModelConfig& c, const WeightStore& w, const std::string& source);

struct LayerWeights {
  const TensorView *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w_gate, *w_up, *w_down;
  // Projection biases: null unless config.attn_bias (bq..bo) / config.mlp_bias (b_gate..b_down).
  const TensorView *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr;
  const TensorView *b_gate = nullptr, *b_up = nullptr, *b_down = nullptr;
};

// One sequence's part of a batched forward call: n tokens at positions pos .. pos+n-1, whose keys and
// values go to (and whose attention reads) the cache blocks of `blocks` (a table covering pos + n
// positions). `logits`, when not null, receives vocab_size logits of the last token.
struct SeqChunk {
  const int* tokens = nullptr;
  int n = 0;
  int pos = 0;
  const int32_t* blocks = nullptr;
  float* logits = nullptr;
};

class LlamaModel {
 public:
  // `n_ctx` is the longest sequence (at most config.max_seq_len); `max_batch` the most tokens per forward
  // call. The KV cache pool follows `kv` (by default: f32, enough blocks for one sequence of n_ctx).
  static Result<std::unique_ptr<LlamaModel>> create(const ModelConfig& c, const WeightStore& w, Backend& backend,
                                                    int n_ctx, int max_batch = 64, const KvOptions& kv = {});

  // Runs tokens[0..n) at positions pos .. pos+n-1 of the model's own sequence (the first blocks of the
  // pool, in order), appending their keys/values to the cache.
  // Writes vocab_size logits for the last token into `logits`, or for every token ((n, vocab) row-major)
  // when `all_logits`. Longer inputs than max_batch are processed in chunks.
  Status forward(const int* tokens, int n, int pos, float* logits, bool all_logits = false);

  // Runs several sequences' tokens through the weights together (continuous batching): every matmul sees
  // the tokens of all of them, attention reads each sequence's own blocks. The chunks' tokens add up to at
  // most max_batch; blocks are the caller's (from cache()).
  Status forward_batch(const SeqChunk* seqs, int n_seqs);

  const ModelConfig& config() const { return c_; }
  int n_ctx() const { return n_ctx_; }
  int max_batch() const { return max_batch_; }
  KvCache& cache() { return cache_; }
  const KvCache& cache() const { return cache_; }

 private:
  LlamaModel(const ModelConfig& c, Backend& b, int n_ctx, int max_batch, KvCache cache);
  Status check_tokens(const int* tokens, int n, int pos) const;
  Status alloc_buffers(const std::vector<float>& rope_freqs);
  Status forward_chunks(const SeqChunk* seqs, int n_seqs, bool all_logits, float* all_out);

  ModelConfig c_;
  Backend& be_;
  int n_ctx_;
  int max_batch_;
  const TensorView* tok_embd_ = nullptr;
  const TensorView* out_norm_ = nullptr;
  const TensorView* classifier_ = nullptr;
  std::vector<LayerWeights> layers_;
  KvCache cache_;
  std::vector<int32_t> own_blocks_;  // the table of forward()'s sequence: blocks 0, 1, 2, ...
  // Activation buffers in the backend's memory (device memory for cuda), sized once for max_batch tokens:
  // no allocation per token.
  BackendBuffer x_, xb_, q_, k_, v_, att_, hb_, hb2_;
  BackendBuffer rope_freqs_;  // (head_dim/2) rotation frequency per pair, from rope_frequencies()
  // Backends whose memory is not the host's: logits are computed into logits_ (max_batch, vocab) and
  // copied out; block tables are uploaded (own_table_ once, forward_batch's tables into tables_ per call).
  BackendBuffer logits_, own_table_, tables_;
  std::vector<int32_t> table_stage_;        // host staging for tables_
  std::vector<const int32_t*> seq_tables_;  // per sequence of a call: its table in the backend's memory
  int max_table_ = 0;                       // entries of one sequence's table: ceil(n_ctx / block_size)
  std::vector<float> last_;                 // host backends: the logits of several rows
  std::vector<int> tok_;
  std::vector<int> pos_;  // position of each token of a call (host memory, for Backend::attn_input)
  std::vector<Backend::AttnSeq> attn_seqs_;  // per sequence of a call: its rows, positions and cache view
};

}  // namespace tern
