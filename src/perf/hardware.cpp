#include "perf/hardware.h"

#include <algorithm>
#include <cmath>

namespace tern::perf {

double Hardware::peak_flops(Compute c) const {
  const double p = peak[static_cast<int>(c)];
  return p > 0 ? p : peak[static_cast<int>(Compute::F32)];
}

double MatmulCeiling::gemv_rate(double matrix_bytes) const {
  if (gemv_by_size.empty()) return gemv_bytes_per_s;
  if (matrix_bytes >= gemv_by_size.back().matrix_bytes) return gemv_by_size.back().bytes_per_s;
  if (matrix_bytes <= gemv_by_size.front().matrix_bytes) return gemv_by_size.front().bytes_per_s;
  for (size_t i = 0; i + 1 < gemv_by_size.size(); ++i) {
    const SizedRate &a = gemv_by_size[i], &b = gemv_by_size[i + 1];
    if (matrix_bytes <= b.matrix_bytes) {
      const double f = std::log(matrix_bytes / a.matrix_bytes) / std::log(b.matrix_bytes / a.matrix_bytes);
      return a.bytes_per_s + f * (b.bytes_per_s - a.bytes_per_s);
    }
  }
  return gemv_by_size.back().bytes_per_s;
}

const MatmulCeiling* Hardware::matmul_ceiling(DType weights) const {
  for (const MatmulCeiling& m : matmul_ceilings)
    if (m.weights == weights) return &m;
  return nullptr;
}

const ShapeCeiling* Hardware::shape_ceiling(DType weights, int64_t out, int64_t in) const {
  for (const ShapeCeiling& c : shape_ceilings)
    if (c.weights == weights && c.out == out && c.in == in) return &c;
  return nullptr;
}

double Hardware::attention_rate(int n_heads, int n_kv_heads, int head_dim, int64_t tokens,
                                int64_t kv_start) const {
  std::vector<const AttentionCeiling*> pts;
  for (const AttentionCeiling& a : attention_ceilings)
    if (a.n_heads == n_heads && a.n_kv_heads == n_kv_heads && a.head_dim == head_dim && a.flops_per_s > 0 &&
        (tokens == 1) == (a.tokens == 1))
      pts.push_back(&a);
  if (pts.empty()) return 0;
  if (tokens > 1) {
    const AttentionCeiling* best = pts.front();
    for (const AttentionCeiling* a : pts)
      if (std::fabs(std::log(static_cast<double>(a->tokens) / static_cast<double>(tokens))) <
          std::fabs(std::log(static_cast<double>(best->tokens) / static_cast<double>(tokens))))
        best = a;
    return best->flops_per_s;
  }
  std::sort(pts.begin(), pts.end(), [](auto* a, auto* b) { return a->kv_start < b->kv_start; });
  if (kv_start <= pts.front()->kv_start) return pts.front()->flops_per_s;
  if (kv_start >= pts.back()->kv_start) return pts.back()->flops_per_s;
  for (size_t i = 0; i + 1 < pts.size(); ++i)
    if (kv_start <= pts[i + 1]->kv_start) {
      const double f = static_cast<double>(kv_start - pts[i]->kv_start) /
                       static_cast<double>(pts[i + 1]->kv_start - pts[i]->kv_start);
      return pts[i]->flops_per_s + f * (pts[i + 1]->flops_per_s - pts[i]->flops_per_s);
    }
  return pts.back()->flops_per_s;
}

namespace {

constexpr double TB = 1e12, GB = 1e9, GiB = 1024.0 * 1024 * 1024, MiB = 1024.0 * 1024, T = 1e12;

Hardware gpu(const char* key, const char* name, double bw, double mem, double l2, double f32, double f16,
             double bf16, double int8, const char* source) {
  Hardware h;
  h.llc_bytes = l2;
  h.key = key;
  h.name = name;
  h.gpu = true;
  h.mem_bandwidth = bw;
  h.mem_bytes = mem;
  h.peak[static_cast<int>(Compute::F32)] = f32;
  h.peak[static_cast<int>(Compute::F16)] = f16;
  h.peak[static_cast<int>(Compute::BF16)] = bf16;
  h.peak[static_cast<int>(Compute::INT8)] = int8;
  h.source = source;
  return h;
}

}  // namespace

// Capacities are the nominal "GB" of the product, which for HBM and GDDR parts are binary gigabytes (an
// A100 80GB reports 81920 MiB); the driver keeps a few hundred MiB of that for itself.
// L2 sizes are from NVIDIA's architecture whitepapers (A100 40 MB, H100 50 MB, AD102 72 MB, AD103 64 MB).
// f16/bf16/int8 peaks are the tensor-core figures without structured sparsity (spec sheets print the sparse
// figure, twice the dense one, with an asterisk); f32 is the non-tensor CUDA-core peak.
const std::vector<Hardware>& hardware_presets() {
  static const std::vector<Hardware> presets = {
      gpu("a100-80gb-pcie", "NVIDIA A100 80GB PCIe", 1935 * GB, 80 * GiB, 40 * MiB, 19.5 * T, 312 * T,
          312 * T, 624 * T,
          "NVIDIA A100 Tensor Core GPU datasheet (A100 80GB PCIe column): FP32 19.5 TFLOPS; FP16 and BF16 "
          "Tensor Core 312 TFLOPS and INT8 624 TOPS dense (624 / 1,248 with sparsity); 80GB HBM2e at "
          "1,935 GB/s"),
      gpu("a100-80gb-sxm", "NVIDIA A100 80GB SXM", 2039 * GB, 80 * GiB, 40 * MiB, 19.5 * T, 312 * T, 312 * T,
          624 * T,
          "NVIDIA A100 Tensor Core GPU datasheet (A100 80GB SXM column): FP32 19.5 TFLOPS; FP16 and BF16 "
          "Tensor Core 312 TFLOPS and INT8 624 TOPS dense (624 / 1,248 with sparsity); 80GB HBM2e at "
          "2,039 GB/s"),
      gpu("h100-sxm", "NVIDIA H100 SXM", 3.35 * TB, 80 * GiB, 50 * MiB, 67 * T, 989.5 * T, 989.5 * T,
          1979 * T,
          "NVIDIA H100 Tensor Core GPU datasheet (H100 SXM column): FP32 67 TFLOPS; FP16 and BF16 Tensor "
          "Core "
          "1,979 TFLOPS and INT8 3,958 TOPS with sparsity, so 989.5 TFLOPS and 1,979 TOPS dense; 80GB HBM3 "
          "at "
          "3.35 TB/s"),
      gpu("h100-pcie", "NVIDIA H100 PCIe", 2.0 * TB, 80 * GiB, 50 * MiB, 51 * T, 756.5 * T, 756.5 * T,
          1513 * T,
          "NVIDIA H100 Tensor Core GPU datasheet (H100 PCIe column): FP32 51 TFLOPS; FP16 and BF16 Tensor "
          "Core "
          "1,513 TFLOPS and INT8 3,026 TOPS with sparsity, so 756.5 TFLOPS and 1,513 TOPS dense; 80GB HBM2e "
          "at "
          "2 TB/s"),
      gpu("h200", "NVIDIA H200 SXM", 4.8 * TB, 141 * GiB, 50 * MiB, 67 * T, 989.5 * T, 989.5 * T, 1979 * T,
          "NVIDIA H200 Tensor Core GPU datasheet (H200 SXM column): FP32 67 TFLOPS; FP16 and BF16 Tensor "
          "Core "
          "1,979 TFLOPS and INT8 3,958 TOPS with sparsity, so 989.5 TFLOPS and 1,979 TOPS dense; 141GB HBM3e "
          "at 4.8 TB/s"),
      gpu("rtx-4090", "NVIDIA GeForce RTX 4090", 1008 * GB, 24 * GiB, 72 * MiB, 82.6 * T, 165.2 * T,
          165.2 * T, 660.6 * T,
          "NVIDIA Ada Lovelace GPU architecture whitepaper, appendix table for the GeForce RTX 4090: FP32 "
          "82.6 "
          "TFLOPS; FP16 Tensor 165.2 TFLOPS with FP32 accumulate (330.3 with FP16 accumulate; GEMM libraries "
          "accumulate fp16 in fp32, so 165.2 is the roof used); BF16 Tensor 165.2 TFLOPS; INT8 Tensor 660.6 "
          "TOPS, all dense; 24 GB GDDR6X, 384-bit at 21 Gbps = 1,008 GB/s"),
      gpu("rtx-4080-super", "NVIDIA GeForce RTX 4080 SUPER", 736 * GB, 16 * GiB, 64 * MiB, 52.2 * T,
          104.4 * T, 104.4 * T, 417.8 * T,
          "NVIDIA GeForce RTX 4080 SUPER specifications: 10,240 CUDA cores (80 SMs), boost clock 2.55 GHz, "
          "16 GB "
          "GDDR6X, 256-bit at 23 Gbps = 736 GB/s. NVIDIA prints no dense tensor figures for this card; they "
          "are "
          "derived from the Ada per-SM rates of the Ada whitepaper (per SM and clock: 256 FP32 FLOPs, 512 "
          "FP16/BF16 tensor FLOPs with FP32 accumulate, 2,048 INT8 tensor ops; the RTX 4090 row of the "
          "whitepaper checks out with them): FP32 52.2 TFLOPS, FP16/BF16 104.4 TFLOPS, INT8 417.8 TOPS"),
  };
  return presets;
}

std::string hardware_preset_names() {
  std::string s;
  for (const Hardware& h : hardware_presets()) s += h.key + ", ";
  return s + "host";
}

Result<Hardware> find_hardware_preset(const std::string& key) {
  for (const Hardware& h : hardware_presets())
    if (h.key == key) return h;
  return error("unknown hardware '" + key + "' (valid: " + hardware_preset_names() + ")");
}

}  // namespace tern::perf
