// safetensors reader: the Hugging Face weight format, one file or a set of shards.
//
// File layout (little-endian):
//   u64 N                         length of the header
//   N bytes of JSON               {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [..],
//                                  "data_offsets": [begin, end]}, ...}
//   the data section              every tensor's bytes at [begin, end), relative to the section's start
// Everything the header claims is checked against the file before any tensor is used: the header fits,
// is a JSON object, each entry has a known dtype, a shape of non-negative integers and begin <= end inside
// the data section with end - begin = numel x element size, and no two tensors overlap. Errors name the
// file and the tensor. Tensor bytes stay in the memory map.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mmap.h"
#include "core/status.h"
#include "core/tensor.h"

namespace tern {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;           // as written: "F32", "BF16", "I64", ...
  std::vector<int64_t> shape;  // row-major, outermost first (as PyTorch has it)
  uint64_t begin = 0, end = 0;  // byte range in the data section
};

class SafetensorsFile {
 public:
  static Result<SafetensorsFile> open(const std::string& path);
  static Result<SafetensorsFile> parse(std::shared_ptr<MappedFile> file);

  const std::string& path() const { return file_->path(); }
  const std::shared_ptr<MappedFile>& file() const { return file_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // "__metadata__"
  size_t data_offset() const { return data_offset_; }

  // A view of the tensor's bytes in the map, named `name` (or the tensor's own name when empty). Only the
  // types the engine computes with (F32, F16, BF16) are accepted; others are an error naming the tensor.
  // The data pointer is where the file puts it: a crafted file may leave it unaligned for its type.
  Result<TensorView> view(const SafetensorsTensor& t, const std::string& name = "") const;

 private:
  std::shared_ptr<MappedFile> file_;
  size_t data_offset_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Bytes per element of a safetensors dtype name, or 0 for a name this reader does not know.
size_t safetensors_dtype_size(const std::string& dtype);

// The weights of a Hugging Face folder: `model.safetensors.index.json` (its "weight_map" names the shard of
// every tensor; each shard must exist and hold the tensors the index assigns to it), else
// `model.safetensors`, else the folder's only *.safetensors file.
struct SafetensorsSet {
  std::vector<SafetensorsFile> files;
  struct Entry {
    size_t file;    // index into files
    size_t tensor;  // index into files[file].tensors()
  };
  std::map<std::string, Entry> tensors;

  const SafetensorsFile& file_of(const Entry& e) const { return files[e.file]; }
  const SafetensorsTensor& tensor_of(const Entry& e) const { return files[e.file].tensors()[e.tensor]; }
};

Result<SafetensorsSet> open_safetensors_dir(const std::string& dir);

}  // namespace tern
