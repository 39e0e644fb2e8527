// llama2.c checkpoints (the "legacy" export): a 7 x int32 header, then fp32 arrays in a fixed order.
// Layer matrices are stored (out, in), row-major, all layers of one kind back to back.
#include <cstring>

#include "formats/model_file.h"

namespace tern {

namespace {

struct Llama2cHeader {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

constexpr uint32_t kLlama2cV1Magic = 0x616b3432;  // "ak42": llama2.c's versioned export, not supported

}  // namespace

Result<std::shared_ptr<ModelFile>> load_llama2c(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.status();
  auto file = mapped.value();
  if (file->size() < sizeof(Llama2cHeader))
    return error(path + ": too small to be a llama2.c checkpoint (" + std::to_string(file->size()) + " bytes)");
  Llama2cHeader h;
  std::memcpy(&h, file->data(), sizeof h);
  if (static_cast<uint32_t>(h.dim) == kLlama2cV1Magic)
    return error(path + ": llama2.c versioned export (magic ak42) is not supported; export with the legacy format");

  auto m = std::make_shared<ModelFile>();
  m->path = path;
  m->format = ModelFormat::Llama2c;
  ModelConfig& c = m->config;
  c.arch = "llama";
  c.name = "llama2.c checkpoint";
  c.dim = h.dim;
  c.hidden_dim = h.hidden_dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  // A negative vocab size is llama2.c's flag for a separate classifier matrix at the end of the file.
  c.tied_embeddings = h.vocab_size > 0;
  c.vocab_size = h.vocab_size == INT32_MIN ? 0 : (h.vocab_size < 0 ? -h.vocab_size : h.vocab_size);
  c.max_seq_len = h.seq_len;
  c.head_dim = h.n_heads > 0 ? h.dim / h.n_heads : 0;
  c.rope_theta = 10000.0f;
  c.norm_eps = 1e-5f;
  c.rope_style = RopeStyle::Adjacent;  // llama2.c rotates (2i, 2i+1)
  TERN_TRY(validate_config(c, path));
  if (c.dim % c.n_heads != 0)
    return error(path + ": dim " + std::to_string(c.dim) + " is not a multiple of n_heads " + std::to_string(c.n_heads));

  // Walk the arrays in file order; every size is checked against the file before a view is made.
  size_t offset = sizeof(Llama2cHeader);
  const int64_t L = c.n_layers, D = c.dim, H = c.hidden_dim, KV = c.kv_dim(), V = c.vocab_size;
  struct Array {
    const char* name;  // per-layer arrays use "blk.%d.X"
    bool per_layer;
    std::vector<int64_t> shape;  // of one layer's slice
  };
  const std::vector<Array> arrays = {
      {"token_embd.weight", false, {V, D}},        {"attn_norm.weight", true, {D}},
      {"attn_q.weight", true, {D, D}},             {"attn_k.weight", true, {KV, D}},
      {"attn_v.weight", true, {KV, D}},            {"attn_output.weight", true, {D, D}},
      {"ffn_norm.weight", true, {D}},              {"ffn_gate.weight", true, {H, D}},
      {"ffn_down.weight", true, {D, H}},           {"ffn_up.weight", true, {H, D}},
      {"output_norm.weight", false, {D}},
  };
  auto take = [&](const std::string& name, const std::vector<int64_t>& shape) -> Status {
    TensorView t;
    t.name = name;
    t.dtype = DType::F32;
    t.shape = shape;
    t.nbytes = static_cast<size_t>(t.numel()) * sizeof(float);
    if (offset > file->size() || t.nbytes > file->size() - offset)
      return error(path + ": file is truncated: tensor '" + name + "' needs " + std::to_string(t.nbytes) +
                   " bytes at offset " + std::to_string(offset) + " but the file has " + std::to_string(file->size()));
    t.data = file->data() + offset;
    offset += t.nbytes;
    m->weights.add(std::move(t));
    return Status();
  };
  for (const auto& a : arrays) {
    if (!a.per_layer) {
      TERN_TRY(take(a.name, a.shape));
      continue;
    }
    for (int64_t l = 0; l < L; ++l) TERN_TRY(take("blk." + std::to_string(l) + "." + a.name, a.shape));
  }
  // Legacy RoPE tables freq_cis_real and freq_cis_imag, (seq_len, head_dim/2) each: recomputed, so skipped.
  const size_t freq_bytes = 2 * static_cast<size_t>(c.max_seq_len) * (c.head_dim / 2) * sizeof(float);
  if (offset + freq_bytes > file->size())
    return error(path + ": file is truncated inside the legacy freq_cis tables");
  offset += freq_bytes;
  if (!c.tied_embeddings) TERN_TRY(take("output.weight", {V, D}));
  if (offset != file->size())
    return error(path + ": " + std::to_string(file->size() - offset) +
                 " unexpected bytes after the last tensor (header and file size disagree)");
  m->weights.keep_alive(file);
  return m;
}

}  // namespace tern
