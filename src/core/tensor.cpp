#include "core/tensor.h"

#include <cassert>
#include <cstring>

#include "core/quant.h"

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

void row_to_f32(DType t, const void* row, float* out, int64_t n) { dequantize_row(t, row, out, n); }

}  // namespace tern
