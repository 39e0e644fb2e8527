// A non-owning view of a tensor: name, element type, shape and a pointer to its bytes.
// Shapes are row-major, outermost first, as in numpy/PyTorch: a weight matrix that maps `in` features to
// `out` features has shape {out, in}, and row r (one output feature) is contiguous. (GGUF stores its
// dimensions innermost first; the GGUF loader reverses them.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace tern {

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  int64_t rows() const { return shape.size() < 2 ? 1 : numel() / shape.back(); }
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  const uint8_t* row_ptr(int64_t r) const {
    return static_cast<const uint8_t*>(data) + static_cast<size_t>(r) * row_bytes(dtype, cols());
  }
  std::string shape_str() const;
};

// Reads element i of a row of a plain float tensor (F32, F16, BF16) as fp32.
float load_element(DType t, const void* row, int64_t i);

// Converts one row of n elements (a whole number of blocks) to fp32: plain floats and every quantized type
// core/quant.h dequantizes; asserts otherwise.
void row_to_f32(DType t, const void* row, float* out, int64_t n);

}  // namespace tern
