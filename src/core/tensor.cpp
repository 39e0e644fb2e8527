#include "core/tensor.h"

#include <cassert>
#include <cstring>

namespace tern {

std::string TensorView::shape_str() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

float load_element(DType t, const void* row, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(row)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(row)[i]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(row)[i]);
    default: assert(false && "load_element: not a plain float type"); return 0.0f;
  }
}

void row_to_f32(DType t, const void* row, float* out, int64_t n) {
  if (t == DType::F32) {
    std::memcpy(out, row, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = load_element(t, row, i);
}

}  // namespace tern
