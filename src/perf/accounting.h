// The accounting of a Llama-family forward pass: FLOPs and bytes moved per op, for one forward call
// (a prefill chunk or a decode step) of a batch of sequences. This is the one place these counts live;
// `tern estimate` turns them into a roofline, and run/bench/serve use them to print GB/s and the fraction
// of the roofline they reach.
//
// Conventions (docs/estimator.md has the derivations):
//  - A multiply-add is 2 FLOPs. A matmul of (rows, in) by W (out, in) is 2 * rows * in * out FLOPs.
//  - Bytes are DRAM traffic under ideal reuse: each weight matrix is read once per forward call, whatever
//    the number of rows; each activation tensor an op reads is read once and each one it writes is written
//    once; the KV cache of a kv head is read once per query tile (flash) or once per op (naive).
//  - Dequantisation and format conversions cost bytes, not FLOPs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "formats/weights.h"
#include "model/config.h"

namespace tern::perf {

// Which peak an op runs under: the unit that does its multiply-adds.
enum class Compute { F32, F16, BF16, INT8 };
inline constexpr int kComputeKinds = 4;
const char* compute_name(Compute c);  // "f32", "f16", "bf16", "int8"
std::optional<Compute> parse_compute(std::string_view s);

enum class OpClass { Gather, Norm, Matmul, Rope, KvStore, Attention, Elementwise };
const char* op_class_name(OpClass c);

enum class AttentionKind { Naive, Flash };
const char* attention_kind_name(AttentionKind a);
std::optional<AttentionKind> parse_attention_kind(std::string_view s);

// Bytes per element of each weight matrix, block scales included (Q4_0: 18/32, Q4_K: 144/256).
// `output` is the classifier; for a tied model it is the embedding table's type.
struct WeightBytes {
  double token_embd = 2, attn_q = 2, attn_k = 2, attn_v = 2, attn_output = 2;
  double ffn_gate = 2, ffn_up = 2, ffn_down = 2, output = 2;
  double norm = 4;  // every 1-D tensor: norms, and biases where the model has them
};

// The element type of each weight matrix (for a role that mixes types over the layers, the type with the
// most bytes): it picks the kernel ceiling a matmul runs under (perf/hardware.h, MatmulCeiling).
struct WeightTypes {
  DType token_embd = DType::F16, attn_q = DType::F16, attn_k = DType::F16, attn_v = DType::F16,
        attn_output = DType::F16;
  DType ffn_gate = DType::F16, ffn_up = DType::F16, ffn_down = DType::F16, output = DType::F16;
};

// Element types of one estimate: weights (per matrix), KV cache and activations, and the compute peaks
// the matmuls and the attention run under.
struct Precision {
  WeightBytes weights;
  WeightTypes weight_types;
  std::string weights_name = "F16";  // "F16", "Q4_0", or "Q4_K+Q6_K" for a mixed file
  DType weights_dtype = DType::F16;  // the dominant matrix type (most bytes)
  DType kv_dtype = DType::F16;
  DType act_dtype = DType::F16;
  double kv_bytes = 2;               // per element of the KV cache
  double act_bytes = 2;              // per element of activations (and logits)
  Compute matmul = Compute::F16;     // roof of the weight matmuls
  Compute attention = Compute::F16;  // roof of QK^T and PV
};

// Modelling switches. The defaults describe tern's own forward pass; docs/estimator.md shows how each one
// moves the reference workload towards a published estimator that makes the opposite choice.
struct Assumptions {
  bool causal = true;             // a query attends only to keys at or before its position
  bool expand_kv = false;         // K/V bytes counted for every query head (no GQA reuse, like HF repeat_kv)
  bool logits_all = false;        // final norm and classifier on every prompt token, not just the last
  bool embedding_matmul = false;  // embedding as a one-hot (tokens, vocab) x (vocab, dim) matmul
  int flash_block = 128;          // query rows per flash-attention tile; K/V are streamed once per tile
};

// One forward call: `batch` sequences, each adding `n_tokens` tokens after `kv_start` cached ones.
struct StepShape {
  int64_t batch = 1;
  int64_t n_tokens = 1;
  int64_t kv_start = 0;
  bool want_logits = true;  // false for a prefill chunk that is not the last one
  AttentionKind attention = AttentionKind::Flash;
  Assumptions assume;
};

// FLOPs and bytes of one op, per instance; `repeat` instances per forward call (n_layers for per-layer ops).
struct OpCost {
  std::string name;  // "attn_q", "attention", "ffn_down", ...
  OpClass cls = OpClass::Matmul;
  Compute compute = Compute::F32;
  int64_t repeat = 1;
  double flops = 0;
  double bytes_read = 0;            // everything read, including weight_bytes and kv_read
  double bytes_written = 0;         // everything written, including kv_written
  double weight_bytes = 0;          // of bytes_read: model weights
  double kv_read = 0;               // of bytes_read: KV cache
  double kv_written = 0;            // of bytes_written: KV cache
  DType weight_dtype = DType::F32;  // matmuls: the weight matrix's type
  int64_t mm_out = 0, mm_in = 0;    // matmuls: the weight's shape (out features, in features)
  int64_t mm_rows = 0;              // matmuls: rows of activations through it per instance (batch x tokens)
  int64_t tokens = 0, kv_start = 0;  // attention: each sequence's queries, and the keys cached before them
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;  // attention: the heads

  double bytes() const { return bytes_read + bytes_written; }
  double total_flops() const { return flops * static_cast<double>(repeat); }
  double total_bytes() const { return bytes() * static_cast<double>(repeat); }
  // FLOPs per byte; 0 for an op that moves no bytes.
  double intensity() const { return bytes() > 0 ? flops / bytes() : 0.0; }
};

// The ops of one forward call in execution order: token_embd, then per layer attn_norm, attn_q, attn_k,
// attn_v, rope, kv_store, attention (flash) or attn_scores/attn_softmax/attn_values (naive), attn_output,
// attn_residual, ffn_norm, ffn_gate, ffn_up, swiglu, ffn_down, ffn_residual, then output_norm and output
// when logits are wanted.
std::vector<OpCost> step_ops(const ModelConfig& c, const Precision& p, const StepShape& s);

struct StepTotals {
  double flops = 0, bytes_read = 0, bytes_written = 0, weight_bytes = 0, kv_read = 0, kv_written = 0;
  double bytes() const { return bytes_read + bytes_written; }
};
StepTotals totals(const std::vector<OpCost>& ops);

// Bytes streamed by one decode step of one sequence at `kv_len` cached tokens (weights + KV + activations):
// the denominator of a decode GB/s figure.
double decode_bytes_per_token(const ModelConfig& c, const Precision& p, int64_t kv_len);

// Parameters from the shapes: embedding, per-layer matrices, norms and biases, final norm, and the classifier
// when untied. Llama-3-8B: 8,030,261,248.
int64_t param_count(const ModelConfig& c);

// Bytes of weights from the shapes and per-matrix bytes per element.
double weight_bytes_total(const ModelConfig& c, const WeightBytes& w);

// KV cache bytes per token across all layers: 2 (K and V) * n_layers * kv_dim * bytes per element.
// Llama-3-8B in fp16: 131,072 (128 KiB).
double kv_bytes_per_token(const ModelConfig& c, double kv_bytes_per_elem);

// Element types by their GGUF names, case-insensitive: "f16", "bf16", "q8_0", "q4_k", ...
Result<DType> parse_dtype(const std::string& name);
// Bytes per element including block scales: block_bytes / block_elems.
double dtype_bytes(DType t);
bool dtype_is_float(DType t);      // F32, F16, BF16
std::string dtype_lower(DType t);  // "q4_k"
// The weight types --weights accepts, for error messages.
std::string weight_dtype_names();

// Every matrix of type `t`; norms are F32 for quantised types (as GGUF stores them) and `t` otherwise.
WeightBytes uniform_weight_bytes(DType t);
WeightTypes uniform_weight_types(DType t);

// Measured from a loaded file: per-matrix bytes per element from the tensors' own types and sizes
// (so that weight_bytes_total equals the file's tensor bytes), each role's type, the dominant matrix type
// and a name such as "Q4_K+Q6_K".
struct StoreWeights {
  WeightBytes bytes;
  WeightTypes types;
  DType dominant = DType::F32;
  std::string name;
  double total_bytes = 0;
};
Result<StoreWeights> weight_bytes_from_store(const ModelConfig& c, const WeightStore& w);

}  // namespace tern::perf
