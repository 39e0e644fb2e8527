#include "perf/accounting.h"

#include <algorithm>
#include <cctype>
#include <map>

namespace tern::perf {

const char* compute_name(Compute c) {
  switch (c) {
    case Compute::F32: return "f32";
    case Compute::F16: return "f16";
    case Compute::BF16: return "bf16";
    case Compute::INT8: return "int8";
  }
  return "?";
}

std::optional<Compute> parse_compute(std::string_view s) {
  for (Compute c : {Compute::F32, Compute::F16, Compute::BF16, Compute::INT8})
    if (s == compute_name(c)) return c;
  return std::nullopt;
}

const char* op_class_name(OpClass c) {
  switch (c) {
    case OpClass::Gather: return "gather";
    case OpClass::Norm: return "norm";
    case OpClass::Matmul: return "matmul";
    case OpClass::Rope: return "rope";
    case OpClass::KvStore: return "kv_store";
    case OpClass::Attention: return "attention";
    case OpClass::Elementwise: return "elementwise";
  }
  return "?";
}

const char* attention_kind_name(AttentionKind a) {
  return a == AttentionKind::Flash ? "flash" : "naive";
}

std::optional<AttentionKind> parse_attention_kind(std::string_view s) {
  if (s == "flash") return AttentionKind::Flash;
  if (s == "naive") return AttentionKind::Naive;
  return std::nullopt;
}

namespace {

// FLOPs per element of the elementwise ops. RMSNorm: square and accumulate (2), then scale by the inverse
// RMS and by the weight (2). RoPE: a rotated pair is 4 multiplies and 2 adds, 3 per element. SwiGLU:
// silu(g) = g / (1 + exp(-g)) is negate, exp, add, divide (4), times up (1). Softmax: max, subtract, exp,
// sum, divide (5 per score).
constexpr double kNormFlops = 4, kRopeFlops = 3, kSwigluFlops = 5, kSoftmaxFlops = 5;

struct Builder {
  std::vector<OpCost> ops;
  OpCost& add(const char* name, OpClass cls, Compute compute, int64_t repeat) {
    OpCost o;
    o.name = name;
    o.cls = cls;
    o.compute = compute;
    o.repeat = repeat;
    ops.push_back(o);
    return ops.back();
  }
};

}  // namespace

std::vector<OpCost> step_ops(const ModelConfig& c, const Precision& p, const StepShape& s) {
  const double B = static_cast<double>(s.batch), T = static_cast<double>(s.n_tokens);
  const double P0 = static_cast<double>(s.kv_start);
  const double R = B * T;  // rows through every matmul
  const double D = c.dim, Q = c.q_dim(), KV = c.kv_dim(), H = c.hidden_dim, V = c.vocab_size;
  const double hd = c.head_dim, Hq = c.n_heads;
  const double Hk = s.assume.expand_kv ? c.n_heads : c.n_kv_heads;  // kv heads whose bytes are streamed
  const double a = p.act_bytes, kvb = p.kv_bytes;
  const WeightBytes& w = p.weights;
  const int64_t L = c.n_layers;
  Builder b;

  // A weight matmul: (R, in) x W(out, in)^T -> (R, out), plus a bias of `out` (1-D type) when present.
  auto matmul = [&](const char* name, double in, double out, double wbytes, DType wtype, int64_t repeat,
                    double rows, bool bias = false) {
    OpCost& o = b.add(name, OpClass::Matmul, p.matmul, repeat);
    o.weight_dtype = wtype;
    o.mm_out = static_cast<int64_t>(out);
    o.mm_in = static_cast<int64_t>(in);
    o.mm_rows = static_cast<int64_t>(rows);
    o.flops = 2 * rows * in * out + (bias ? rows * out : 0);
    o.weight_bytes = in * out * wbytes + (bias ? out * w.norm : 0);
    o.bytes_read = o.weight_bytes + rows * in * a;
    o.bytes_written = rows * out * a;
  };
  auto rmsnorm = [&](const char* name, int64_t repeat, double rows) {
    OpCost& o = b.add(name, OpClass::Norm, Compute::F32, repeat);
    o.flops = kNormFlops * rows * D;
    o.weight_bytes = D * w.norm;
    o.bytes_read = rows * D * a + o.weight_bytes;
    o.bytes_written = rows * D * a;
  };
  auto residual = [&](const char* name) {
    OpCost& o = b.add(name, OpClass::Elementwise, Compute::F32, L);
    o.flops = R * D;
    o.bytes_read = 2 * R * D * a;
    o.bytes_written = R * D * a;
  };

  if (s.assume.embedding_matmul) {
    OpCost& o = b.add("token_embd", OpClass::Matmul, p.matmul, 1);
    o.weight_dtype = p.weight_types.token_embd;
    o.mm_out = static_cast<int64_t>(D);
    o.mm_in = static_cast<int64_t>(V);
    o.mm_rows = static_cast<int64_t>(R);
    o.flops = 2 * R * V * D;
    o.weight_bytes = V * D * w.token_embd;
    o.bytes_read = o.weight_bytes + R * V * a;  // the one-hot input rows
    o.bytes_written = R * D * a;
  } else {
    OpCost& o = b.add("token_embd", OpClass::Gather, Compute::F32, 1);
    o.weight_bytes = R * D * w.token_embd;  // only the rows of the tokens present
    o.bytes_read = o.weight_bytes;
    o.bytes_written = R * D * a;
  }

  rmsnorm("attn_norm", L, R);
  matmul("attn_q", D, Q, w.attn_q, p.weight_types.attn_q, L, R, c.attn_bias);
  matmul("attn_k", D, KV, w.attn_k, p.weight_types.attn_k, L, R, c.attn_bias);
  matmul("attn_v", D, KV, w.attn_v, p.weight_types.attn_v, L, R, c.attn_bias);
  {
    OpCost& o = b.add("rope", OpClass::Rope, Compute::F32, L);
    o.flops = kRopeFlops * R * (Q + KV);
    o.bytes_read = R * (Q + KV) * a;
    o.bytes_written = R * (Q + KV) * a;
  }
  {
    OpCost& o = b.add("kv_store", OpClass::KvStore, Compute::F32, L);
    o.bytes_read = 2 * R * KV * a;
    o.kv_written = 2 * R * KV * kvb;
    o.bytes_written = o.kv_written;
  }

  // Query-key pairs per head and sequence. Causal: query i (0-based in the chunk) sees P0 + i + 1 keys.
  const double keys_end = P0 + T;
  const double pairs = s.assume.causal ? T * P0 + T * (T + 1) / 2 : T * keys_end;
  const double q_bytes = R * Q * a;  // queries read, and the attention output written, once
  if (s.attention == AttentionKind::Flash) {
    // One kernel: scores and probabilities stay on chip. K/V of each (kv) head are streamed once per tile
    // of `flash_block` query rows; under causal masking a tile reads keys only up to its last row.
    const double Br = std::max(1, s.assume.flash_block);
    const int64_t tiles = (s.n_tokens + static_cast<int64_t>(Br) - 1) / static_cast<int64_t>(Br);
    double keys_streamed = 0;
    for (int64_t j = 0; j < tiles; ++j)
      keys_streamed += s.assume.causal ? std::min(P0 + (j + 1) * Br, keys_end) : keys_end;
    OpCost& o = b.add("attention", OpClass::Attention, p.attention, L);
    o.tokens = s.n_tokens;
    o.kv_start = s.kv_start;
    o.n_heads = c.n_heads;
    o.n_kv_heads = c.n_kv_heads;
    o.head_dim = c.head_dim;
    o.flops = B * Hq * pairs * (4 * hd + kSoftmaxFlops);
    o.kv_read = B * keys_streamed * Hk * hd * kvb * 2;
    o.bytes_read = q_bytes + o.kv_read;
    o.bytes_written = q_bytes;
  } else {
    // Three ops with the score matrix (per head, only the visible pairs) written and read back in memory.
    const double scores = B * Hq * pairs * a;
    const double k_once = B * keys_end * Hk * hd * kvb;  // K (or V) of the sequence, read once
    OpCost& qk = b.add("attn_scores", OpClass::Attention, p.attention, L);
    qk.flops = 2 * hd * B * Hq * pairs;
    qk.kv_read = k_once;
    qk.bytes_read = q_bytes + k_once;
    qk.bytes_written = scores;
    OpCost& sm = b.add("attn_softmax", OpClass::Elementwise, Compute::F32, L);
    sm.flops = kSoftmaxFlops * B * Hq * pairs;
    sm.bytes_read = scores;
    sm.bytes_written = scores;
    OpCost& pv = b.add("attn_values", OpClass::Attention, p.attention, L);
    pv.flops = 2 * hd * B * Hq * pairs;
    pv.kv_read = k_once;
    pv.bytes_read = scores + k_once;
    pv.bytes_written = q_bytes;
  }
  matmul("attn_output", Q, D, w.attn_output, p.weight_types.attn_output, L, R, c.attn_bias);
  residual("attn_residual");

  rmsnorm("ffn_norm", L, R);
  matmul("ffn_gate", D, H, w.ffn_gate, p.weight_types.ffn_gate, L, R, c.mlp_bias);
  matmul("ffn_up", D, H, w.ffn_up, p.weight_types.ffn_up, L, R, c.mlp_bias);
  {
    OpCost& o = b.add("swiglu", OpClass::Elementwise, Compute::F32, L);
    o.flops = kSwigluFlops * R * H;
    o.bytes_read = 2 * R * H * a;
    o.bytes_written = R * H * a;
  }
  matmul("ffn_down", H, D, w.ffn_down, p.weight_types.ffn_down, L, R, c.mlp_bias);
  residual("ffn_residual");

  if (s.want_logits) {
    const double rows = s.assume.logits_all ? R : B;  // otherwise only each sequence's last token
    rmsnorm("output_norm", 1, rows);
    matmul("output", D, V, w.output, p.weight_types.output, 1, rows);
  }
  return b.ops;
}

StepTotals totals(const std::vector<OpCost>& ops) {
  StepTotals t;
  for (const OpCost& o : ops) {
    const double r = static_cast<double>(o.repeat);
    t.flops += o.flops * r;
    t.bytes_read += o.bytes_read * r;
    t.bytes_written += o.bytes_written * r;
    t.weight_bytes += o.weight_bytes * r;
    t.kv_read += o.kv_read * r;
    t.kv_written += o.kv_written * r;
  }
  return t;
}

double decode_bytes_per_token(const ModelConfig& c, const Precision& p, int64_t kv_len) {
  StepShape s;
  s.kv_start = kv_len;
  return totals(step_ops(c, p, s)).bytes();
}

namespace {

// 1-D parameters of a layer: two norms, and the biases when the model has them.
int64_t layer_vectors(const ModelConfig& c) {
  return 2 * int64_t{c.dim} + (c.attn_bias ? c.q_dim() + 2 * int64_t{c.kv_dim()} + c.dim : 0) +
         (c.mlp_bias ? 2 * int64_t{c.hidden_dim} + c.dim : 0);
}

}  // namespace

int64_t param_count(const ModelConfig& c) {
  const int64_t D = c.dim, Q = c.q_dim(), KV = c.kv_dim(), H = c.hidden_dim, V = c.vocab_size;
  const int64_t per_layer = D * Q + 2 * D * KV + Q * D + 3 * D * H + layer_vectors(c);
  return V * D + c.n_layers * per_layer + D + (c.tied_embeddings ? 0 : V * D);
}

double weight_bytes_total(const ModelConfig& c, const WeightBytes& w) {
  const double D = c.dim, Q = c.q_dim(), KV = c.kv_dim(), H = c.hidden_dim, V = c.vocab_size;
  const double per_layer = D * Q * w.attn_q + D * KV * (w.attn_k + w.attn_v) + Q * D * w.attn_output +
                           D * H * (w.ffn_gate + w.ffn_up + w.ffn_down) +
                           static_cast<double>(layer_vectors(c)) * w.norm;
  return V * D * w.token_embd + c.n_layers * per_layer + D * w.norm +
         (c.tied_embeddings ? 0 : V * D * w.output);
}

double kv_bytes_per_token(const ModelConfig& c, double kv_bytes_per_elem) {
  return 2.0 * c.n_layers * c.kv_dim() * kv_bytes_per_elem;
}

namespace {

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& ch : r) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return r;
}

// Types a weight matrix can have in the files and quantisations tern knows.
constexpr DType kWeightTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                                  DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                                  DType::Q4_K, DType::Q5_K, DType::Q6_K};

}  // namespace

std::string dtype_lower(DType t) {
  return lower(dtype_name(t));
}

std::string weight_dtype_names() {
  std::string s;
  for (DType t : kWeightTypes) s += (s.empty() ? "" : ", ") + dtype_lower(t);
  return s;
}

Result<DType> parse_dtype(const std::string& name) {
  const std::string want = lower(name);
  for (DType t : kWeightTypes)
    if (dtype_lower(t) == want) return t;
  return error("unknown type '" + name + "' (valid: " + weight_dtype_names() + ")");
}

double dtype_bytes(DType t) {
  auto info = dtype_info(static_cast<uint32_t>(t));
  return info ? static_cast<double>(info->block_bytes) / info->block_elems : 0.0;
}

bool dtype_is_float(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

WeightBytes uniform_weight_bytes(DType t) {
  const double e = dtype_bytes(t);
  WeightBytes w;
  w.token_embd = w.attn_q = w.attn_k = w.attn_v = w.attn_output = e;
  w.ffn_gate = w.ffn_up = w.ffn_down = w.output = e;
  w.norm = dtype_is_float(t) ? e : 4.0;
  return w;
}

WeightTypes uniform_weight_types(DType t) {
  return {t, t, t, t, t, t, t, t, t};
}

Result<StoreWeights> weight_bytes_from_store(const ModelConfig& c, const WeightStore& store) {
  // Sum bytes and elements per role over all layers; the ratio is the role's bytes per element.
  struct Acc {
    double bytes = 0, elems = 0;
    std::map<DType, double> type_bytes;  // of the role's matrices
  };
  std::map<std::string, Acc> roles;
  std::map<DType, double> matrix_bytes;  // per type, over 2-D tensors
  StoreWeights out;
  for (const auto& [name, t] : store.all()) {
    out.total_bytes += static_cast<double>(t.nbytes);
    std::string role = name;
    if (name.rfind("blk.", 0) == 0) {
      const size_t dot = name.find('.', 4);
      role = dot == std::string::npos ? name : name.substr(dot + 1);
    }
    if (const size_t suffix = role.rfind(".weight"); suffix != std::string::npos) role.resize(suffix);
    if (t.shape.size() == 1) role = "norm";  // norms and biases: the 1-D tensors
    Acc& acc = roles[role];
    acc.bytes += static_cast<double>(t.nbytes);
    acc.elems += static_cast<double>(t.numel());
    if (t.shape.size() >= 2) {
      matrix_bytes[t.dtype] += static_cast<double>(t.nbytes);
      acc.type_bytes[t.dtype] += static_cast<double>(t.nbytes);
    }
  }
  // A matrix role's bytes per element and its type (the one with the most bytes, should it vary by layer).
  auto ratio = [&](const char* role, double& dst, DType* type) -> Status {
    auto it = roles.find(role);
    if (it == roles.end() || it->second.elems <= 0)
      return error(std::string("no tensors for '") + role + "'");
    dst = it->second.bytes / it->second.elems;
    if (type && !it->second.type_bytes.empty())
      *type = std::max_element(it->second.type_bytes.begin(), it->second.type_bytes.end(),
                               [](const auto& x, const auto& y) { return x.second < y.second; })
                  ->first;
    return Status();
  };
  WeightBytes& w = out.bytes;
  WeightTypes& ty = out.types;
  TERN_TRY(ratio("token_embd", w.token_embd, &ty.token_embd));
  TERN_TRY(ratio("attn_q", w.attn_q, &ty.attn_q));
  TERN_TRY(ratio("attn_k", w.attn_k, &ty.attn_k));
  TERN_TRY(ratio("attn_v", w.attn_v, &ty.attn_v));
  TERN_TRY(ratio("attn_output", w.attn_output, &ty.attn_output));
  TERN_TRY(ratio("ffn_gate", w.ffn_gate, &ty.ffn_gate));
  TERN_TRY(ratio("ffn_up", w.ffn_up, &ty.ffn_up));
  TERN_TRY(ratio("ffn_down", w.ffn_down, &ty.ffn_down));
  TERN_TRY(ratio("norm", w.norm, nullptr));
  if (c.tied_embeddings) {
    w.output = w.token_embd;
    ty.output = ty.token_embd;
  } else {
    TERN_TRY(ratio("output", w.output, &ty.output));
  }

  // Name: matrix types by decreasing bytes; the first is the dominant one.
  std::vector<std::pair<double, DType>> by_bytes;
  for (const auto& [t, bytes] : matrix_bytes) by_bytes.push_back({bytes, t});
  std::sort(by_bytes.begin(), by_bytes.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
  for (const auto& [bytes, t] : by_bytes)
    out.name += (out.name.empty() ? "" : "+") + std::string(dtype_name(t));
  if (!by_bytes.empty()) out.dominant = by_bytes.front().second;
  return out;
}

}  // namespace tern::perf
