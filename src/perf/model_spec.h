// Building the ModelSpec that the estimator takes, from a preset name or a model file, with tern's default
// element types for the hardware unless the caller picks them.
#pragma once

#include <optional>
#include <string>

#include "core/dtype.h"
#include "core/status.h"
#include "perf/estimator.h"
#include "perf/hardware.h"

namespace tern::perf {

// Unset fields take tern's defaults for the hardware:
//  - weights: a preset's are F16; a file's are its tensors' own types (set `weights` to model a conversion).
//  - activations: GPU f16 (bf16 when the weights are BF16, f32 when F32); CPU f32 (tern's CPU path).
//  - KV cache: the activation type on a GPU; f32 on a CPU (tern's KvCache today).
//  - matmul roof: GPU: the weights' float type, quantised weights dequantised to the activation type;
//    CPU: f32 for F32/F16 weights, bf16 for BF16 and int8 for quantised weights where the CPU has those
//    dot-product units (AVX-512 BF16, VNNI), else f32.
struct PrecisionChoice {
  std::optional<DType> weights, kv, act;
  std::optional<Compute> matmul;
};

// Completes a Precision whose `weights`, `weight_types`, `weights_name` and `weights_dtype` are set.
Result<Precision> choose_precision(Precision p, const Hardware& hw, const PrecisionChoice& choice);

Result<ModelSpec> model_spec_from_preset(const std::string& key, const Hardware& hw,
                                         const PrecisionChoice& choice);
// Loads the file with load_model_file (every format it knows) and measures its weight bytes per matrix.
Result<ModelSpec> model_spec_from_file(const std::string& path, const Hardware& hw,
                                       const PrecisionChoice& choice);
// A preset key if it names one, else a path; an unknown name that is not a file lists the presets.
Result<ModelSpec> resolve_model(const std::string& name_or_path, const Hardware& hw,
                                const PrecisionChoice& choice);

}  // namespace tern::perf
