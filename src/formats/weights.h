// WeightStore: named tensor views plus whatever keeps their bytes alive (memory maps, owned buffers).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mmap.h"
#include "core/status.h"
#include "core/tensor.h"

namespace tern {

class WeightStore {
 public:
  void add(TensorView t) { tensors_[t.name] = std::move(t); }
  void keep_alive(std::shared_ptr<MappedFile> f) { files_.push_back(std::move(f)); }
  // Takes ownership of a buffer that tensors point into (used when a layout cannot be mapped as is).
  void keep_alive(std::vector<uint8_t> buf) { buffers_.push_back(std::move(buf)); }

  const TensorView* find(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
  }
  const std::map<std::string, TensorView>& all() const { return tensors_; }
  // For a backend that has copied a tensor (repacked it for its kernels) and will not read the original:
  // where the tensor is used in place from a file map, its pages are handed back (MappedFile::release), so
  // the process does not hold both copies. Tensors in owned buffers are left alone.
  void release_pages(const TensorView& t) const;
  size_t total_bytes() const;
  int64_t total_params() const;

 private:
  std::map<std::string, TensorView> tensors_;
  std::vector<std::shared_ptr<MappedFile>> files_;
  std::vector<std::vector<uint8_t>> buffers_;
};

}  // namespace tern
