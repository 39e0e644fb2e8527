#include "formats/convert.h"

#include <cstring>
#include <filesystem>
#include <memory>
#include <set>

#include "core/quant.h"
#include "formats/gguf_writer.h"
#include "formats/quantize_model.h"
#include "tokenizer/hf_tokenizer_json.h"

namespace tern {

namespace {

// llama.cpp's tensor order: (generated rope factors first), embeddings, each layer, final norm, classifier.
std::vector<std::string> tensor_order(const ModelConfig& c) {
  std::vector<std::string> order = {"rope_freqs.weight", "token_embd.weight"};
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    order.push_back(b + "attn_norm.weight");
    for (const char* p : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
      order.push_back(b + p + ".weight");
      order.push_back(b + p + ".bias");
    }
    order.push_back(b + "ffn_norm.weight");
    for (const char* p : {"ffn_gate", "ffn_up", "ffn_down"}) {
      order.push_back(b + p + ".weight");
      order.push_back(b + p + ".bias");
    }
  }
  order.push_back("output_norm.weight");
  order.push_back("output.weight");
  return order;
}

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// attn_q / attn_k weights and biases: the tensors whose rows RoPE pairs up.
bool is_rope_rows(const std::string& name) {
  return name.rfind("blk.", 0) == 0 &&
         (ends_with(name, ".attn_q.weight") || ends_with(name, ".attn_k.weight") ||
          ends_with(name, ".attn_q.bias") || ends_with(name, ".attn_k.bias"));
}


}  // namespace

void permute_half_to_adjacent(const uint8_t* src, uint8_t* dst, int64_t rows, size_t row_bytes, int head_dim) {
  const int half = head_dim / 2;
  for (int64_t h = 0; h < rows / head_dim; ++h)
    for (int j = 0; j < half; ++j)
      for (int s = 0; s < 2; ++s) {
        const int64_t to = h * head_dim + 2 * j + s, from = h * head_dim + s * half + j;
        std::memcpy(dst + static_cast<size_t>(to) * row_bytes, src + static_cast<size_t>(from) * row_bytes,
                    row_bytes);
      }
}

Result<ConvertStats> convert_to_gguf(const ModelFile& m, const std::string& out_path, const ConvertOptions& opt) {
  const ModelConfig& c = m.config;
  if (opt.type && *opt.type != DType::F32 && *opt.type != DType::F16 && *opt.type != DType::BF16)
    return error("convert: type " + std::string(dtype_name(*opt.type)) +
                 " is not a conversion target (F32, F16, BF16; `tern quantize` makes quantized files)");
  std::error_code ec;
  if (std::filesystem::is_regular_file(m.path, ec) && std::filesystem::exists(out_path, ec) &&
      std::filesystem::equivalent(m.path, out_path, ec))
    return error(out_path + ": the output would overwrite the input");
  const bool permute = c.rope_style == RopeStyle::HalfSplit;

  ConvertStats st;
  GgufWriter w;
  if (m.gguf)
    for (const auto& [key, v] : m.gguf->metadata()) w.set(key, v);
  set_llama_metadata(c, w);
  w.set_u32("general.alignment", 32);
  // general.file_type: the target's code; with types kept, a GGUF input's own (it may describe a mixture),
  // else the code of the attention matrices' type.
  if (opt.type || !m.gguf || !m.gguf->find("general.file_type")) {
    DType main_type = opt.type.value_or(DType::F32);
    if (!opt.type)
      if (const TensorView* q = m.weights.find("blk.0.attn_q.weight")) main_type = q->dtype;
    const int ft = llama_file_type(main_type);
    if (ft >= 0) w.set_u32("general.file_type", static_cast<uint32_t>(ft));
    else w.remove("general.file_type");
  }
  // A Hugging Face folder's tokenizer.json (+ tokenizer_config.json) becomes tokenizer.ggml.* keys, so that
  // the output runs on its own. A tokenizer GGUF cannot express is a note, not an error: the weights still
  // convert, and the output then needs the tokenizer passed separately.
  if (!m.gguf || !m.gguf->find("tokenizer.ggml.model")) {
    std::string why = "the input has none";
    const std::string json = m.path + "/tokenizer.json";
    if (m.format == ModelFormat::HfFolder && std::filesystem::is_regular_file(json, ec)) {
      auto tk = load_tokenizer_json_gguf_metadata(json);
      if (tk) {
        for (auto& [key, v] : tk->kv) w.set(key, std::move(v));
        st.tokenizer_tokens = tk->n_tokens;
        for (auto& n : tk->notes) st.notes.push_back("tokenizer: " + n);
        if (tk->n_tokens != c.vocab_size)
          st.notes.push_back("tokenizer: " + std::to_string(tk->n_tokens) + " tokens but the model's vocab_size is " +
                             std::to_string(c.vocab_size) + " (the output runs only with a matching tokenizer)");
      } else {
        why = tk.message();
      }
    }
    if (st.tokenizer_tokens == 0)
      st.notes.push_back("no tokenizer written (" + why + "): pass the tokenizer separately when running the output");
  }

  // The write order: llama.cpp's, then anything else the model holds, by name.
  std::vector<const TensorView*> tensors;
  std::set<std::string> seen;
  for (const std::string& name : tensor_order(c))
    if (const TensorView* t = m.weights.find(name)) {
      tensors.push_back(t);
      seen.insert(name);
    }
  for (const auto& [name, t] : m.weights.all())
    if (!seen.count(name)) tensors.push_back(&t);

  // A llama3 scaling from config.json becomes llama.cpp's rope_freqs.weight.
  if (c.rope_scaling.type == RopeScalingType::Llama3 && !m.weights.find("rope_freqs.weight")) {
    auto factors = std::make_shared<std::vector<float>>(rope_llama3_factors(c));
    Status s = w.add_tensor("rope_freqs.weight", DType::F32, {static_cast<int64_t>(factors->size())},
                            [factors](uint8_t* dst, size_t n) -> Status {
                              std::memcpy(dst, factors->data(), n);
                              return Status();
                            });
    if (!s) return error(out_path + ": " + s.message());
    ++st.tensors;
  }

  for (const TensorView* tp : tensors) {
    const TensorView& t = *tp;
    DType to = t.dtype;
    if (opt.type) to = t.shape.size() >= 2 ? *opt.type : DType::F32;
    if (to != t.dtype && !can_dequantize(t.dtype))
      return error(m.path + ": tensor '" + t.name + "' of type " + std::string(dtype_name(t.dtype)) +
                   " cannot be converted to " + std::string(dtype_name(to)));
    const bool perm = permute && is_rope_rows(t.name);
    if (perm && (t.shape.empty() || t.shape[0] % c.head_dim != 0))
      return error(m.path + ": tensor '" + t.name + "' has shape " + t.shape_str() + ", not whole heads of " +
                   std::to_string(c.head_dim) + " rows");
    const bool convert = to != t.dtype;
    st.tensors_permuted += perm;
    st.tensors_converted += convert;
    ++st.tensors;
    const int head_dim = c.head_dim;
    Status s = w.add_tensor(t.name, to, t.shape, [tp, to, perm, convert, head_dim](uint8_t* dst, size_t n) -> Status {
      const TensorView& v = *tp;
      const auto* src = static_cast<const uint8_t*>(v.data);
      // One row: the innermost dimension (a 1-D tensor is a single row, except when permuting a bias,
      // where each element is its own row).
      int64_t cols = v.cols(), rows = v.rows();
      if (perm && v.shape.size() == 1) rows = v.shape[0], cols = 1;
      const size_t in_row = row_bytes(v.dtype, static_cast<uint64_t>(cols));
      const size_t out_row = row_bytes(to, static_cast<uint64_t>(cols));
      if (!convert && !perm) {
        std::memcpy(dst, src, n);
        return Status();
      }
      if (!convert) {
        permute_half_to_adjacent(src, dst, rows, in_row, head_dim);
        return Status();
      }
      // Convert row by row through fp32 (into a permuted position when needed).
      std::vector<float> tmp(static_cast<size_t>(cols));
      for (int64_t r = 0; r < rows; ++r) {
        int64_t from = r;
        if (perm) {
          const int64_t h = r / head_dim, k = r % head_dim;  // k = 2j + s
          from = h * head_dim + (k % 2) * (head_dim / 2) + k / 2;
        }
        dequantize_row(v.dtype, src + static_cast<size_t>(from) * in_row, tmp.data(), cols);
        quantize_row(to, tmp.data(), dst + static_cast<size_t>(r) * out_row, cols);
      }
      return Status();
    });
    if (!s) return error(out_path + ": " + s.message());
  }
  TERN_TRY(w.write(out_path));
  st.bytes_out = std::filesystem::file_size(out_path, ec);
  return st;
}

}  // namespace tern
