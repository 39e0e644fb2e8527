#include "gguf_builder.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"

namespace tern_test {

namespace {

template <class T>
std::string le(T v) {
  // The project only targets little-endian hosts; the bytes are copied as they are in memory.
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}

constexpr uint64_t kMaxMaterialised = uint64_t{1} << 26;  // bytes of data section build() will write

uint64_t splitmix(uint64_t& s) {
  s += 0x9E3779B97F4A7C15ull;
  uint64_t z = s;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

std::string le_u8(uint8_t v) { return le(v); }
std::string le_u16(uint16_t v) { return le(v); }
std::string le_u32(uint32_t v) { return le(v); }
std::string le_u64(uint64_t v) { return le(v); }
std::string le_f32(float v) { return le(v); }
std::string le_f64(double v) { return le(v); }
std::string gguf_str(const std::string& s) { return le_u64(s.size()) + s; }

GVal GVal::arr(uint32_t elem, const std::vector<GVal>& elems) {
  std::string p = le_u32(elem) + le_u64(elems.size());
  for (const auto& e : elems) p += e.payload;
  return {kGgufArray, p};
}

GVal GVal::str_arr(const std::vector<std::string>& items) {
  std::vector<GVal> v;
  for (const auto& s : items) v.push_back(str(s));
  return arr(kGgufString, v);
}

GVal GVal::f32_arr(const std::vector<float>& items) {
  std::vector<GVal> v;
  for (float f : items) v.push_back(f32(f));
  return arr(kGgufF32, v);
}

GVal GVal::i32_arr(const std::vector<int32_t>& items) {
  std::vector<GVal> v;
  for (int32_t x : items) v.push_back(i32(x));
  return arr(kGgufI32, v);
}

GgufBuilder& GgufBuilder::kv(const std::string& key, const GVal& v) {
  kvs_.push_back({key, v, false, {}});
  return *this;
}

GgufBuilder& GgufBuilder::raw_entry(std::string bytes) {
  kvs_.push_back({{}, {}, true, std::move(bytes)});
  return *this;
}

GgufBuilder& GgufBuilder::set_kv(const std::string& key, const GVal& v) {
  for (auto& e : kvs_)
    if (!e.raw && e.key == key) {
      e.value = v;
      return *this;
    }
  return kv(key, v);
}

bool GgufBuilder::remove_kv(const std::string& key) {
  auto it = std::find_if(kvs_.begin(), kvs_.end(), [&](const Entry& e) { return !e.raw && e.key == key; });
  if (it == kvs_.end()) return false;
  kvs_.erase(it);
  return true;
}

GgufBuilder& GgufBuilder::tensor(GTensor t) {
  tensors_.push_back(std::move(t));
  return *this;
}

GgufBuilder& GgufBuilder::tensor_f32(const std::string& name, const std::vector<int64_t>& shape,
                                     const std::vector<float>& v) {
  GTensor t;
  t.name = name;
  for (auto it = shape.rbegin(); it != shape.rend(); ++it) t.ne.push_back(static_cast<uint64_t>(*it));
  t.ggml_type = kGgmlF32;
  t.data = f32_bytes(v);
  return tensor(std::move(t));
}

GTensor* GgufBuilder::find_tensor(const std::string& name) {
  for (auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

bool GgufBuilder::remove_tensor(const std::string& name) {
  auto it = std::find_if(tensors_.begin(), tensors_.end(), [&](const GTensor& t) { return t.name == name; });
  if (it == tensors_.end()) return false;
  tensors_.erase(it);
  return true;
}

std::string GgufBuilder::build() {
  layout_ = Layout();
  const uint64_t align = alignment ? alignment : 1;
  auto pad_to = [&](std::string& s, uint64_t a) {
    while (s.size() % a) s.push_back('\0');
  };

  std::string out = magic;
  out += le_u32(version);
  out += le_u64(tensor_count.value_or(tensors_.size()));
  out += le_u64(kv_count.value_or(kvs_.size()));
  layout_.header_end = out.size();

  for (const auto& e : kvs_) {
    layout_.kv_begin.push_back(out.size());
    if (e.raw) {
      layout_.kv_value.push_back(out.size());
      out += e.raw_bytes;
      continue;
    }
    out += gguf_str(e.key);
    layout_.kv_value.push_back(out.size());
    out += le_u32(e.value.type);
    out += e.value.payload;
  }
  layout_.kv_end = out.size();

  // Data offsets: explicit where given, otherwise each tensor at the next aligned position after the last.
  std::vector<uint64_t> offsets;
  uint64_t next = 0;
  for (const auto& t : tensors_) {
    uint64_t off = t.offset ? *t.offset : (next + align - 1) / align * align;
    offsets.push_back(off);
    if (off <= kMaxMaterialised && t.data.size() <= kMaxMaterialised - off) next = std::max(next, off + t.data.size());
  }

  for (size_t k = 0; k < tensors_.size(); ++k) {
    const auto& t = tensors_[k];
    layout_.tensor_info_begin.push_back(out.size());
    out += gguf_str(t.name);
    out += le_u32(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) out += le_u64(d);
    out += le_u32(t.ggml_type);
    out += le_u64(offsets[k]);
  }
  layout_.tensor_info_end = out.size();

  pad_to(out, align);
  layout_.data_begin = out.size();
  std::string data;
  for (size_t k = 0; k < tensors_.size(); ++k) {
    const uint64_t off = offsets[k];
    const auto& t = tensors_[k];
    // Absurd explicit offsets (tests of data past the end) are recorded in the tensor info only.
    if (off > kMaxMaterialised || t.data.size() > kMaxMaterialised - off) {
      layout_.tensor_data.push_back(SIZE_MAX);
      continue;
    }
    if (data.size() < off + t.data.size()) data.resize(off + t.data.size(), '\0');
    std::memcpy(data.data() + off, t.data.data(), t.data.size());
    layout_.tensor_data.push_back(layout_.data_begin + off);
  }
  out += data;
  layout_.total = out.size();
  return out;
}

std::vector<float> random_floats(size_t n, uint64_t seed, float scale) {
  std::vector<float> v(n);
  uint64_t s = seed;
  for (auto& x : v) {
    const double u = static_cast<double>(splitmix(s) >> 11) * 0x1p-53;  // [0, 1)
    x = static_cast<float>((2.0 * u - 1.0) * scale);
  }
  return v;
}

std::string f32_bytes(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  if (!v.empty()) std::memcpy(s.data(), v.data(), s.size());
  return s;
}

std::string f16_bytes(const std::vector<float>& v) {
  std::string s;
  for (float f : v) s += le_u16(tern::f32_to_f16(f));
  return s;
}

std::string bf16_bytes(const std::vector<float>& v) {
  std::string s;
  for (float f : v) s += le_u16(tern::f32_to_bf16(f));
  return s;
}

void TinyLlama::make_weights() {
  weights.clear();
  const int64_t D = dim, H = hidden, V = vocab, Q = static_cast<int64_t>(n_heads) * head_dim(),
                KV = static_cast<int64_t>(n_kv_heads) * head_dim();
  uint64_t s = seed;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool norm) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    std::vector<float> v = random_floats(n, splitmix(s), norm ? 0.2f : 0.5f);
    if (norm)
      for (auto& x : v) x += 1.0f;  // RMSNorm gains near 1
    weights.push_back({name, std::move(shape), std::move(v)});
  };
  add("token_embd.weight", {V, D}, false);
  for (int l = 0; l < n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", {D}, true);
    add(b + "attn_q.weight", {Q, D}, false);
    add(b + "attn_k.weight", {KV, D}, false);
    add(b + "attn_v.weight", {KV, D}, false);
    add(b + "attn_output.weight", {D, Q}, false);
    add(b + "ffn_norm.weight", {D}, true);
    add(b + "ffn_gate.weight", {H, D}, false);
    add(b + "ffn_up.weight", {H, D}, false);
    add(b + "ffn_down.weight", {D, H}, false);
  }
  add("output_norm.weight", {D}, true);
  if (!tied) add("output.weight", {V, D}, false);
}

GgufBuilder TinyLlama::builder() {
  if (weights.empty()) make_weights();
  GgufBuilder b;
  b.kv("general.architecture", GVal::str("llama"));
  b.kv("general.name", GVal::str("tiny test llama"));
  b.kv("llama.context_length", GVal::u32(static_cast<uint32_t>(ctx)));
  b.kv("llama.embedding_length", GVal::u32(static_cast<uint32_t>(dim)));
  b.kv("llama.block_count", GVal::u32(static_cast<uint32_t>(n_layers)));
  b.kv("llama.feed_forward_length", GVal::u32(static_cast<uint32_t>(hidden)));
  b.kv("llama.attention.head_count", GVal::u32(static_cast<uint32_t>(n_heads)));
  b.kv("llama.attention.head_count_kv", GVal::u32(static_cast<uint32_t>(n_kv_heads)));
  b.kv("llama.rope.freq_base", GVal::f32(rope_theta));
  b.kv("llama.attention.layer_norm_rms_epsilon", GVal::f32(norm_eps));
  for (const auto& w : weights) b.tensor_f32(w.name, w.shape, w.values);
  return b;
}

}  // namespace tern_test
