// GGUF v2/v3 reader: header, every metadata value type (nested arrays included), tensor infos,
// `general.alignment`. Tensor data stays in the memory map. Everything read from the file is bounds-checked,
// so a truncated or hostile file yields an error naming the file and the key or tensor, never a crash.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/mmap.h"
#include "core/status.h"
#include "core/tensor.h"

namespace tern {

enum class GgufType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

const char* gguf_type_name(GgufType t);

struct GgufValue {
  GgufType type = GgufType::UINT32;
  // Exactly one of these is meaningful, chosen by `type`:
  uint64_t u = 0;      // UINT8/16/32/64, BOOL (0/1)
  int64_t i = 0;       // INT8/16/32/64
  double f = 0.0;      // FLOAT32/64
  std::string str;     // STRING
  GgufType elem_type = GgufType::UINT8;  // ARRAY: element type
  std::vector<GgufValue> arr;            // ARRAY: elements

  bool is_integer() const;
  bool is_float() const { return type == GgufType::FLOAT32 || type == GgufType::FLOAT64; }
  std::string to_string(size_t max_items = 8) const;  // for `tern info`
};

struct GgufTensorInfo {
  std::string name;
  uint32_t ggml_type = 0;
  std::vector<uint64_t> ne;  // as stored: innermost dimension first
  uint64_t offset = 0;       // relative to the start of the data section
};

class GgufFile {
 public:
  // Parses header, metadata and tensor infos and checks every tensor's bytes lie inside the file.
  static Result<GgufFile> open(const std::string& path);
  static Result<GgufFile> parse(std::shared_ptr<MappedFile> file);

  uint32_t version() const { return version_; }
  const std::string& path() const { return file_->path(); }
  const std::shared_ptr<MappedFile>& file() const { return file_; }
  uint64_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  // Typed look-ups. Each error names the file and key and says what was expected.
  Result<uint64_t> get_uint(const std::string& key) const;   // any non-negative integer type
  Result<double> get_float(const std::string& key) const;    // float or integer types
  Result<std::string> get_string(const std::string& key) const;
  Result<bool> get_bool(const std::string& key) const;
  // The array under `key` whose elements have type `elem` (an error if absent or of another type).
  Result<const std::vector<GgufValue>*> get_array(const std::string& key, GgufType elem) const;

  // A view of tensor `info` (shape reversed to row-major). The type must be one the build knows;
  // unsupported (quantized) types are rejected with an error naming the tensor and its type.
  Result<TensorView> view(const GgufTensorInfo& info) const;

 private:
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
};

}  // namespace tern
