// GgufWriter: builds GGUF v3 files. Metadata of every value type (nested arrays included) in the order it was
// set, tensors of any ggml type, each tensor's data aligned to `general.alignment` (32 unless the metadata says
// otherwise) and padded to it. Used by `tern quantize` and `tern convert`.
//
// Tensor bytes are either borrowed (a pointer that must stay valid until write() returns) or produced at
// write time by a callback, so a whole model never has to sit in memory: write() streams one tensor at a
// time. Everything is checked before the first byte is written; errors name the key, tensor or file path.
//
// File layout written (all little-endian):
//   "GGUF" u32 version=3, u64 n_tensors, u64 n_kv
//   n_kv x (string key, u32 value type, value)            string = u64 length + bytes (no terminator)
//   n_tensors x (string name, u32 n_dims, u64 ne[n_dims] innermost first, u32 ggml type, u64 offset)
//   zero padding to the alignment; then the data section: each tensor at its offset (a multiple of the
//   alignment, relative to the section start), followed by zero padding to the alignment.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/config.h"
#include "core/tensor.h"
#include "formats/gguf.h"

namespace tern {

class GgufWriter {
 public:
  // Fills exactly `nbytes` bytes of one tensor's data at write time.
  using FillFn = std::function<Status(uint8_t* dst, size_t nbytes)>;

  // --- metadata: kept in insertion order; setting an existing key replaces its value in place ---
  void set(const std::string& key, GgufValue value);
  void set_string(const std::string& key, std::string v);
  void set_bool(const std::string& key, bool v);
  void set_u8(const std::string& key, uint8_t v);
  void set_i8(const std::string& key, int8_t v);
  void set_u16(const std::string& key, uint16_t v);
  void set_i16(const std::string& key, int16_t v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_i64(const std::string& key, int64_t v);
  void set_f32(const std::string& key, float v);
  void set_f64(const std::string& key, double v);
  // An array whose elements all have type `elem` (checked by write()).
  void set_array(const std::string& key, GgufType elem, std::vector<GgufValue> items);
  void set_string_array(const std::string& key, const std::vector<std::string>& items);
  void set_i32_array(const std::string& key, const std::vector<int32_t>& items);
  void set_f32_array(const std::string& key, const std::vector<float>& items);
  bool remove(const std::string& key);
  const GgufValue* find(const std::string& key) const;
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }

  // --- tensors: written in the order added. `shape` is row-major (outermost first, as TensorView has it);
  // the file stores it reversed. Checks: 1 to 4 positive dimensions, a known type, a row length that is a
  // whole number of blocks, a unique name shorter than 64 bytes, and (for borrowed data) the byte count.
  Status add_tensor(const std::string& name, DType type, const std::vector<int64_t>& shape, const void* data,
                    size_t nbytes);
  Status add_tensor(const std::string& name, DType type, const std::vector<int64_t>& shape, FillFn fill);
  // A view's bytes, borrowed.
  Status add_tensor(const TensorView& t) { return add_tensor(t.name, t.dtype, t.shape, t.data, t.nbytes); }

  size_t tensor_count() const { return tensors_.size(); }
  uint64_t tensor_data_bytes() const;  // sum of the tensors' own bytes (padding excluded)

  // Writes the file. The alignment is `general.alignment` when set (a power of two), else 32, which is then
  // also written as `general.alignment`. On failure the partial file is removed.
  Status write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    DType type;
    std::vector<uint64_t> ne;  // innermost first
    size_t nbytes;
    const void* data;  // borrowed bytes, or null when `fill` produces them
    FillFn fill;
  };
  Status check_tensor(const std::string& name, DType type, const std::vector<int64_t>& shape, size_t& nbytes,
                      std::vector<uint64_t>& ne) const;

  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

// Writes general.architecture, general.name and the llama.* keys (shape, context, RoPE base and dimension,
// RMSNorm epsilon, vocab size; key/value length when head_dim is not dim / n_heads) of `c`.
void set_llama_metadata(const ModelConfig& c, GgufWriter& w);

}  // namespace tern
