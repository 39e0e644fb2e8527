// The NVIDIA GPU backend (built with -DTERN_CUDA=ON). This header is plain C++: nothing outside
// src/backend/cuda/ sees a CUDA type. See docs/cuda.md for the design, the kernels and their launch shapes.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"

namespace tern {

class WeightStore;

// The matrix-vector kernel used for decode (n_tokens <= kMatvecMaxTokens, launch.h); larger batches
// always go through cuBLAS. Naive: a thread per output row. Warp: a warp per row, shuffle reduction.
// Fast: several rows per block, 16-byte loads, all tokens of the call per weight read. Cublas: cuBLAS for
// every matmul (quantized weights are dequantized to f16 first).
enum class CudaMatmul { Naive, Warp, Fast, Cublas };

// "naive", "warp", "fast" or "cublas" (the --matmul values); an error naming the choices otherwise.
Result<CudaMatmul> parse_cuda_matmul(const std::string& s);
const char* cuda_matmul_name(CudaMatmul m);

struct CudaOptions {
  int device = 0;                         // CUDA device ordinal
  CudaMatmul matmul = CudaMatmul::Fast;   // decode matrix-vector kernel
  bool graphs = true;                     // reserved for CUDA graphs of the decode step (--no-graphs)
};

// The weight types the CUDA kernels read (dequantized inside the inner loops).
bool cuda_supports_weight(DType t);
// "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K", for error messages. Q6_K (the classifier and some
// layers of Q4_K_M files) runs through the warp kernel: the fast one has no Q6_K path yet.
std::string cuda_weight_types_text();

// Ok when every tensor of `w` has a type the kernels read; otherwise an error naming the first tensor that
// does not and its type (checked by prepare() before anything is uploaded).
Status cuda_check_weights(const WeightStore& w);

// Ok when a CUDA device can be used; otherwise a one-line reason (no device, or the driver/runtime error
// string of cudaGetDeviceCount, e.g. a driver older than the runtime).
Status cuda_device_status();

// Creates the backend on o.device: a stream, a cuBLAS handle and the kernels' workspaces. Fails with a
// one-line message when no device can be used.
Result<std::unique_ptr<Backend>> make_cuda_backend(const CudaOptions& o = {});

}  // namespace tern
