#include "perf/kernel_probe.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/quant.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace tern::perf {

namespace {

using Clock = std::chrono::steady_clock;

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
using HostBytes = std::unique_ptr<uint8_t, AlignedFree>;

// Distinct rows of a synthetic weight; the rest repeat them. The values do not change how fast the kernels
// run, and repeating a few rows makes a 256 MiB weight cheap to build (quantising it all would take longer
// than measuring it).
constexpr int64_t kPatternRows = 16;

// A (rows, cols) weight of type t, 64-byte aligned like a mapped tensor's data: rows quantised from seeded
// values in [-1, 1), or, for a type tern cannot quantise (Q6_K), random codes with small block scales
// (random bytes there could be NaN or huge).
HostBytes synthetic_weight(DType t, int64_t rows, int64_t cols) {
  const size_t rb = row_bytes(t, static_cast<uint64_t>(cols));
  const size_t total = rb * static_cast<size_t>(rows);
  HostBytes w(static_cast<uint8_t*>(std::aligned_alloc(64, (total + 63) / 64 * 64)));
  if (!w) return w;
  Rng rng(0x7e57);
  std::vector<float> src(static_cast<size_t>(cols));
  const int64_t pattern = std::min(rows, kPatternRows);
  for (int64_t r = 0; r < pattern; ++r) {
    uint8_t* row = w.get() + static_cast<size_t>(r) * rb;
    if (can_quantize(t)) {
      for (float& v : src) v = 2 * rng.uniform() - 1;
      quantize_row(t, src.data(), row, cols);
    } else {
      assert(t == DType::Q6_K);  // the one probed type without a quantiser
      for (size_t i = 0; i < rb; ++i) row[i] = static_cast<uint8_t>(rng.next_u32());
      const uint16_t d = f32_to_f16(0.01f);
      for (size_t b = 0; b < rb / sizeof(BlockQ6_K); ++b)
        std::memcpy(row + b * sizeof(BlockQ6_K) + offsetof(BlockQ6_K, d), &d, sizeof d);
    }
  }
  for (int64_t r = pattern; r < rows; r += pattern)
    std::memcpy(w.get() + static_cast<size_t>(r) * rb, w.get(),
                static_cast<size_t>(std::min(pattern, rows - r)) * rb);
  return w;
}

// One type under test: its backend, GEMM and GEMV weights, the activations (gemm_tokens rows; the GEMV
// reads the first) and the outputs. Buffers are declared after the backend that frees them.
struct Subject {
  DType type = DType::F32;
  std::unique_ptr<Backend> be;
  HostBytes gemm_w, gemv_w;
  TensorView gemm, gemv;
  BackendBuffer x, gemm_out, gemv_out;
  double gemm_s = 1e30, gemv_s = 1e30;  // fastest call so far
  std::vector<std::vector<TensorView>> slices;  // the GEMV weight cut into slices of each of the sizes
  std::vector<double> sliced_s;                 // fastest pass over each
};

// The GEMV weight w as consecutive slices of about `bytes` each (whole rows, at least one).
std::vector<TensorView> slice_rows(const TensorView& w, int64_t bytes) {
  const int64_t rb = static_cast<int64_t>(w.nbytes) / w.rows();
  const int64_t rows = std::max<int64_t>(1, bytes / rb);
  std::vector<TensorView> out;
  for (int64_t r = 0; r + rows <= w.rows(); r += rows)
    out.push_back({"probe_gemv_slice",
                   w.dtype,
                   {rows, w.cols()},
                   static_cast<const uint8_t*>(w.data) + r * rb,
                   static_cast<size_t>(rows * rb)});
  return out;
}

// Seconds of one pass over the slices, a call each.
Result<double> time_slices(Backend& be, const std::vector<TensorView>& slices, const float* x, float* out) {
  const auto t0 = Clock::now();
  for (const TensorView& w : slices) be.matmul(w, x, 1, out);
  TERN_TRY(be.synchronize());
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Seconds of one call of out = x W^T.
Result<double> time_matmul(Backend& be, const TensorView& w, const float* x, int tokens, float* out) {
  const auto t0 = Clock::now();
  be.matmul(w, x, tokens, out);
  TERN_TRY(be.synchronize());
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

const std::vector<DType>& probed_weight_types() {
  static const std::vector<DType> types = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0,
                                           DType::Q4_0, DType::Q4_1, DType::Q4_K, DType::Q6_K};
  return types;
}

Result<std::vector<MatmulCeiling>> measure_matmul_ceilings(const MatmulProbeShape& s, int threads) {
  if (s.gemm_rows < 1 || s.gemm_cols < 1 || s.gemm_tokens < 1 || s.gemv_cols < 1 || s.gemv_bytes < 1)
    return error("matmul probe: every dimension must be positive");
  std::vector<int64_t> sizes;
  for (int64_t b : s.gemv_sizes)
    if (b > 0 && b < s.gemv_bytes) sizes.push_back(b);
  std::sort(sizes.begin(), sizes.end());
  std::vector<float> xv(static_cast<size_t>(s.gemm_tokens * s.gemm_cols));
  Rng rng(0x5eed);
  for (float& v : xv) v = 2 * rng.uniform() - 1;

  std::vector<Subject> subjects;
  for (DType t : probed_weight_types()) {
    Subject u;
    u.type = t;
    u.be = make_cpu_backend(threads);
    const int64_t block = dtype_info(static_cast<uint32_t>(t))->block_elems;
    if (!u.be->supports(t) || s.gemm_cols % block != 0 || s.gemv_cols % block != 0) continue;
    const size_t gemm_rb = row_bytes(t, static_cast<uint64_t>(s.gemm_cols));
    const size_t gemv_rb = row_bytes(t, static_cast<uint64_t>(s.gemv_cols));
    const int64_t gemv_rows =
        (s.gemv_bytes + static_cast<int64_t>(gemv_rb) - 1) / static_cast<int64_t>(gemv_rb);
    u.gemm_w = synthetic_weight(t, s.gemm_rows, s.gemm_cols);
    u.gemv_w = synthetic_weight(t, gemv_rows, s.gemv_cols);
    auto x = BackendBuffer::make(*u.be, xv.size() * sizeof(float));
    auto gemm_out =
        BackendBuffer::make(*u.be, static_cast<size_t>(s.gemm_tokens * s.gemm_rows) * sizeof(float));
    auto gemv_out = BackendBuffer::make(*u.be, static_cast<size_t>(gemv_rows) * sizeof(float));
    if (!u.gemm_w || !u.gemv_w || !x || !gemm_out || !gemv_out)
      return error("matmul probe: cannot allocate the weights of " + std::string(dtype_name(t)) + " (" +
                   std::to_string(gemv_rows) + " x " + std::to_string(s.gemv_cols) + ")");
    u.x = std::move(x.value());
    u.gemm_out = std::move(gemm_out.value());
    u.gemv_out = std::move(gemv_out.value());
    u.be->copy_from_host(u.x.get(), xv.data(), xv.size() * sizeof(float));
    u.gemm = {"probe_gemm",
              t,
              {s.gemm_rows, s.gemm_cols},
              u.gemm_w.get(),
              gemm_rb * static_cast<size_t>(s.gemm_rows)};
    u.gemv = {
        "probe_gemv", t, {gemv_rows, s.gemv_cols}, u.gemv_w.get(), gemv_rb * static_cast<size_t>(gemv_rows)};
    // Untimed: the integer GEMM repacks each weight at its first use, and the first calls fault pages in.
    auto gemm = time_matmul(*u.be, u.gemm, u.x.f32(), static_cast<int>(s.gemm_tokens), u.gemm_out.f32());
    auto gemv = time_matmul(*u.be, u.gemv, u.x.f32(), 1, u.gemv_out.f32());
    if (!gemm || !gemv) return error("matmul probe: " + (gemm ? gemv.message() : gemm.message()));
    for (int64_t b : sizes) u.slices.push_back(slice_rows(u.gemv, b));
    u.sliced_s.assign(sizes.size(), 1e30);
    subjects.push_back(std::move(u));
  }

  for (int round = 0; round < s.rounds; ++round)
    for (Subject& u : subjects) {
      auto gemm = time_matmul(*u.be, u.gemm, u.x.f32(), static_cast<int>(s.gemm_tokens), u.gemm_out.f32());
      auto gemv = time_matmul(*u.be, u.gemv, u.x.f32(), 1, u.gemv_out.f32());
      if (!gemm || !gemv) return error("matmul probe: " + (gemm ? gemv.message() : gemm.message()));
      u.gemm_s = std::min(u.gemm_s, gemm.value());
      u.gemv_s = std::min(u.gemv_s, gemv.value());
      for (size_t i = 0; i < sizes.size(); ++i) {
        auto t = time_slices(*u.be, u.slices[i], u.x.f32(), u.gemv_out.f32());
        if (!t) return error("matmul probe: " + t.message());
        u.sliced_s[i] = std::min(u.sliced_s[i], t.value());
      }
    }

  if (subjects.empty())
    return error("matmul probe: no weight type fits a GEMM of " + std::to_string(s.gemm_cols) +
                 " columns (the types' blocks are 32 or 256 elements)");
  std::vector<MatmulCeiling> out;
  for (const Subject& u : subjects) {
    const double gemm_ops = 2.0 * static_cast<double>(s.gemm_rows * s.gemm_cols * s.gemm_tokens);
    const double gemv_bytes =
        static_cast<double>(u.gemv.nbytes) + 4.0 * static_cast<double>(s.gemv_cols + u.gemv.rows());
    MatmulCeiling c{u.type, gemm_ops / u.gemm_s, gemv_bytes / u.gemv_s, {}};
    for (size_t i = 0; i < sizes.size(); ++i) {
      double bytes = 0;
      for (const TensorView& w : u.slices[i])
        bytes += static_cast<double>(w.nbytes) + 4.0 * (s.gemv_cols + w.rows());
      if (!u.slices[i].empty())
        c.gemv_by_size.push_back({bytes / static_cast<double>(u.slices[i].size()), bytes / u.sliced_s[i]});
    }
    c.gemv_by_size.push_back({gemv_bytes, c.gemv_bytes_per_s});
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace tern::perf
