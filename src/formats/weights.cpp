#include "formats/weights.h"

namespace tern {

void WeightStore::release_pages(const TensorView& t) const {
  for (const auto& f : files_)
    if (f->contains(t.data, t.nbytes)) return f->release(t.data, t.nbytes);
}

size_t WeightStore::total_bytes() const {
  size_t n = 0;
  for (const auto& [name, t] : tensors_) n += t.nbytes;
  return n;
}

int64_t WeightStore::total_params() const {
  int64_t n = 0;
  for (const auto& [name, t] : tensors_) n += t.numel();
  return n;
}

}  // namespace tern
