// GgufBuilder: crafts GGUF files byte by byte for the loader tests.
//
// A valid file by default (magic "GGUF", version 3, counts taken from what was added, data section and every
// tensor aligned to `alignment`), with a knob for each part a test wants to break: magic, version, counts,
// raw value payloads (any type id, any array length, any string length), tensor dimension lists of any length,
// unknown tensor types, explicit offsets, the data section's alignment. build() also records where every part
// landed (Layout), so a test can truncate or flip bytes at a chosen section.
//
// Also: TinyLlama, a seeded random llama model small enough to check by hand (dim 8, 2 heads, 1 layer,
// vocab 16, hidden 12 by default), written as a GGUF file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tern_test {

// GGUF metadata value type ids.
enum : uint32_t {
  kGgufU8 = 0, kGgufI8 = 1, kGgufU16 = 2, kGgufI16 = 3, kGgufU32 = 4, kGgufI32 = 5, kGgufF32 = 6,
  kGgufBool = 7, kGgufString = 8, kGgufArray = 9, kGgufU64 = 10, kGgufI64 = 11, kGgufF64 = 12,
};
// ggml tensor type ids used by the tests.
enum : uint32_t { kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ4_0 = 2, kGgmlQ8_0 = 8, kGgmlQ4_K = 12, kGgmlBF16 = 30 };

// Little-endian encoders.
std::string le_u8(uint8_t v);
std::string le_u16(uint16_t v);
std::string le_u32(uint32_t v);
std::string le_u64(uint64_t v);
std::string le_f32(float v);
std::string le_f64(double v);
std::string gguf_str(const std::string& s);  // uint64 length + bytes

// One metadata value: its type id and its encoded payload (what follows the type id in the file).
struct GVal {
  uint32_t type = kGgufU32;
  std::string payload;

  static GVal u8(uint8_t v) { return {kGgufU8, le_u8(v)}; }
  static GVal i8(int8_t v) { return {kGgufI8, le_u8(static_cast<uint8_t>(v))}; }
  static GVal u16(uint16_t v) { return {kGgufU16, le_u16(v)}; }
  static GVal i16(int16_t v) { return {kGgufI16, le_u16(static_cast<uint16_t>(v))}; }
  static GVal u32(uint32_t v) { return {kGgufU32, le_u32(v)}; }
  static GVal i32(int32_t v) { return {kGgufI32, le_u32(static_cast<uint32_t>(v))}; }
  static GVal u64(uint64_t v) { return {kGgufU64, le_u64(v)}; }
  static GVal i64(int64_t v) { return {kGgufI64, le_u64(static_cast<uint64_t>(v))}; }
  static GVal f32(float v) { return {kGgufF32, le_f32(v)}; }
  static GVal f64(double v) { return {kGgufF64, le_f64(v)}; }
  static GVal boolean(bool v) { return {kGgufBool, le_u8(v ? 1 : 0)}; }
  static GVal str(const std::string& s) { return {kGgufString, gguf_str(s)}; }
  // An array; every element must have type `elem` (only their payloads are written).
  static GVal arr(uint32_t elem, const std::vector<GVal>& elems);
  static GVal str_arr(const std::vector<std::string>& items);
  static GVal f32_arr(const std::vector<float>& items);
  static GVal i32_arr(const std::vector<int32_t>& items);
  // Anything at all: a type id (valid or not) and raw payload bytes, for corrupt values.
  static GVal raw(uint32_t type, std::string payload) { return {type, std::move(payload)}; }
};

struct GTensor {
  std::string name;
  std::vector<uint64_t> ne;  // innermost first, as GGUF stores it; any length (0 or 5 to test rejection)
  uint32_t ggml_type = kGgmlF32;
  std::string data;                // the tensor's bytes
  std::optional<uint64_t> offset;  // explicit offset in the data section; default: next aligned position
};

class GgufBuilder {
 public:
  // --- knobs on the header and layout ---
  std::string magic = "GGUF";
  uint32_t version = 3;
  std::optional<uint64_t> tensor_count;  // default: tensors().size()
  std::optional<uint64_t> kv_count;      // default: number of entries added
  uint64_t alignment = 32;  // how the data section and tensor data are placed (does not write general.alignment)

  // --- metadata ---
  GgufBuilder& kv(const std::string& key, const GVal& v);
  // An arbitrary byte string in place of one key-value entry (e.g. a key with a huge length prefix).
  GgufBuilder& raw_entry(std::string bytes);

  // --- tensors ---
  GgufBuilder& tensor(GTensor t);
  // A plain F32 tensor of row-major `shape` (outermost first, as tern's TensorView has it).
  GgufBuilder& tensor_f32(const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& v);
  std::vector<GTensor>& tensors() { return tensors_; }
  GTensor* find_tensor(const std::string& name);
  bool remove_tensor(const std::string& name);
  bool remove_kv(const std::string& key);
  // Replaces the value of an existing key (adds it when absent).
  GgufBuilder& set_kv(const std::string& key, const GVal& v);

  // Where each part of the last build() landed (byte offsets in the output).
  struct Layout {
    size_t header_end = 0;              // after magic, version, tensor count, kv count (24 bytes)
    std::vector<size_t> kv_begin;       // start of each entry (its key's length prefix)
    std::vector<size_t> kv_value;       // start of each entry's value type id
    size_t kv_end = 0;
    std::vector<size_t> tensor_info_begin;
    size_t tensor_info_end = 0;
    size_t data_begin = 0;              // start of the (aligned) data section
    std::vector<size_t> tensor_data;    // absolute position of each tensor's bytes
    size_t total = 0;
  };

  std::string build();
  const Layout& layout() const { return layout_; }

 private:
  struct Entry {
    std::string key;  // unused for raw entries
    GVal value;
    bool raw = false;
    std::string raw_bytes;
  };
  std::vector<Entry> kvs_;
  std::vector<GTensor> tensors_;
  Layout layout_;
};

// Fills `n` floats from a seeded generator, uniform in [-scale, scale).
std::vector<float> random_floats(size_t n, uint64_t seed, float scale = 1.0f);

std::string f32_bytes(const std::vector<float>& v);
std::string f16_bytes(const std::vector<float>& v);   // rounded to half
std::string bf16_bytes(const std::vector<float>& v);  // rounded to bfloat16

// A tiny llama model in GGUF form. Weights live in `weights` (row-major float, shapes as TensorView has them)
// so a test can compare against them or rebuild the model another way.
struct TinyLlama {
  int dim = 8, hidden = 12, n_layers = 1, n_heads = 2, n_kv_heads = 2, vocab = 16, ctx = 32;
  bool tied = true;        // no output.weight when tied
  uint64_t seed = 1234;
  float rope_theta = 10000.0f;
  float norm_eps = 1e-5f;

  struct W {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float> values;
  };
  std::vector<W> weights;  // filled by make_weights()

  void make_weights();
  int head_dim() const { return dim / n_heads; }
  // A builder holding the metadata and tensors (call make_weights() first, or it is called for you).
  GgufBuilder builder();
};

}  // namespace tern_test
