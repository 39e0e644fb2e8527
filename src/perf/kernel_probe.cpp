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

// The median of a round's timings: a model's probe is short, a second or two, so that one burst of load on a
// shared machine, or one fast moment, would move a best or a mean; the median is what the kernel typically
// reaches in the minute the model is then measured in.
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Reads 128 MiB, more than the last-level cache a core sees on common CPUs (a socket's L3, or an EPYC
// chiplet's), so that what the caches held is gone: in a decode step the
// cache rows a layer's attention reads were written a step ago, and the whole model's weights have streamed
// through the caches since.
constexpr size_t kEvictWords = (size_t{128} << 20) / sizeof(uint64_t);
void evict_caches(const std::vector<uint64_t>& buffer) {
  uint64_t sum = 0;
  for (uint64_t w : buffer) sum += w;
  volatile uint64_t sink = sum;
  (void)sink;
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

Result<std::vector<ShapeCeiling>> measure_shape_ceilings(const std::vector<MatrixShape>& shapes,
                                                         const ShapeProbe& p, int threads) {
  if (p.tokens < 1 || p.stream_bytes < 1 || p.rounds < 1)
    return error("shape probe: tokens, stream bytes and rounds must be positive");
  // One backend for all shapes: each has a thread pool, and idle pools' workers spinning for their next
  // job would take the cores from the one being timed. Declared before the buffers it frees.
  std::unique_ptr<Backend> be = make_cpu_backend(threads);
  struct Probe {
    MatrixShape shape;
    HostBytes w;
    std::vector<TensorView> copies;  // the GEMM uses the first
    BackendBuffer x, out;
    std::vector<double> gemm_s, gemv_s;  // seconds of each round's call (GEMM) and pass (GEMV run)
  };
  std::vector<float> xv;
  Rng rng(0x5eed);
  std::vector<Probe> probes;
  for (const MatrixShape& m : shapes) {
    const std::string name = std::string(dtype_name(m.weights)) + " " + std::to_string(m.out) + " x " +
                             std::to_string(m.in);
    if (m.out < 1 || m.in < 1) return error("shape probe: " + name + ": dimensions must be positive");
    Probe u;
    u.shape = m;
    const int64_t block = dtype_info(static_cast<uint32_t>(m.weights))->block_elems;
    if (!be->supports(m.weights) || m.in % block != 0)
      return error("shape probe: " + name + ": the cpu backend has no matmul for this type and width");
    const int64_t rb = static_cast<int64_t>(row_bytes(m.weights, static_cast<uint64_t>(m.in)));
    const int64_t matrix = rb * m.out;
    const int64_t copies = std::max<int64_t>(1, (p.stream_bytes + matrix - 1) / matrix);
    u.w = synthetic_weight(m.weights, m.out * copies, m.in);
    const int64_t tokens = m.gemm ? p.tokens : 1;
    auto x = BackendBuffer::make(*be, static_cast<size_t>(tokens * m.in) * sizeof(float));
    auto out = BackendBuffer::make(*be, static_cast<size_t>(tokens * m.out) * sizeof(float));
    if (!u.w || !x || !out) return error("shape probe: cannot allocate " + name + " x " + std::to_string(copies));
    u.x = std::move(x.value());
    u.out = std::move(out.value());
    xv.resize(static_cast<size_t>(tokens * m.in));
    for (float& v : xv) v = 2 * rng.uniform() - 1;
    be->copy_from_host(u.x.get(), xv.data(), xv.size() * sizeof(float));
    const TensorView all{"probe_shape", m.weights, {m.out * copies, m.in}, u.w.get(),
                         static_cast<size_t>(matrix * copies)};
    u.copies = slice_rows(all, matrix);
    // Untimed: the first calls repack each copy and fault its pages in.
    if (m.gemm)
      if (auto t = time_matmul(*be, u.copies[0], u.x.f32(), static_cast<int>(tokens), u.out.f32()); !t)
        return error("shape probe: " + t.message());
    if (auto t = time_slices(*be, u.copies, u.x.f32(), u.out.f32()); !t)
      return error("shape probe: " + t.message());
    probes.push_back(std::move(u));
  }
  for (int round = 0; round < p.rounds; ++round)
    for (Probe& u : probes) {
      if (u.shape.gemm) {
        auto t = time_matmul(*be, u.copies[0], u.x.f32(), static_cast<int>(p.tokens), u.out.f32());
        if (!t) return error("shape probe: " + t.message());
        u.gemm_s.push_back(t.value());
      }
      auto t = time_slices(*be, u.copies, u.x.f32(), u.out.f32());
      if (!t) return error("shape probe: " + t.message());
      u.gemv_s.push_back(t.value());
    }
  std::vector<ShapeCeiling> out;
  for (const Probe& u : probes) {
    const MatrixShape& m = u.shape;
    ShapeCeiling c;
    c.weights = m.weights;
    c.out = m.out;
    c.in = m.in;
    // Bytes of a call as perf/accounting.h counts a matmul's: the weights, the input row and the output row.
    double bytes = 0;
    for (const TensorView& w : u.copies) bytes += static_cast<double>(w.nbytes) + 4.0 * static_cast<double>(m.in + m.out);
    c.gemv_bytes_per_s = bytes / median(u.gemv_s);
    if (m.gemm) {
      c.tokens = p.tokens;
      c.gemm_ops_per_s = 2.0 * static_cast<double>(m.out * m.in * p.tokens) / median(u.gemm_s);
    }
    out.push_back(c);
  }
  return out;
}

Result<std::vector<AttentionCeiling>> measure_attention_ceilings(const ModelConfig& c,
                                                                 const std::vector<AttentionPoint>& points,
                                                                 int rounds, int threads) {
  if (c.n_heads < 1 || c.n_kv_heads < 1 || c.head_dim < 1 || c.n_layers < 1 || c.n_heads % c.n_kv_heads != 0)
    return error("attention probe: the model's heads (" + std::to_string(c.n_heads) + " query, " +
                 std::to_string(c.n_kv_heads) + " kv, width " + std::to_string(c.head_dim) + ") are not valid");
  if (rounds < 1) return error("attention probe: rounds must be positive");
  std::unique_ptr<Backend> be = make_cpu_backend(threads);
  constexpr int kBlock = 16;  // positions per cache block, as the runtime's KV cache
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;
  const int64_t q_dim = static_cast<int64_t>(c.n_heads) * c.head_dim;
  std::vector<AttentionCeiling> out;
  Rng rng(0xa77e);
  const std::vector<uint64_t> evict(kEvictWords, 1);
  for (const AttentionPoint& pt : points) {
    if (pt.tokens < 1 || pt.kv_start < 0)
      return error("attention probe: a point needs at least one query and no negative cache length");
    const int64_t rows = pt.kv_start + pt.tokens;
    const int64_t blocks = (rows + kBlock - 1) / kBlock;
    const int64_t block_bytes = kBlock * kv_dim * 4;
    // Per layer a K and a V pool; one block table (identity) serves them all.
    auto k = BackendBuffer::make(*be, static_cast<size_t>(c.n_layers * blocks * block_bytes));
    auto v = BackendBuffer::make(*be, static_cast<size_t>(c.n_layers * blocks * block_bytes));
    auto q = BackendBuffer::make(*be, static_cast<size_t>(pt.tokens * q_dim) * sizeof(float));
    auto kn = BackendBuffer::make(*be, static_cast<size_t>(pt.tokens * kv_dim) * sizeof(float));
    auto vn = BackendBuffer::make(*be, static_cast<size_t>(pt.tokens * kv_dim) * sizeof(float));
    auto o = BackendBuffer::make(*be, static_cast<size_t>(pt.tokens * q_dim) * sizeof(float));
    if (!k || !v || !q || !kn || !vn || !o)
      return error("attention probe: cannot allocate a cache of " + std::to_string(rows) + " positions");
    std::vector<float> fill(static_cast<size_t>(c.n_layers * blocks * kBlock * kv_dim));
    for (float& f : fill) f = 2 * rng.uniform() - 1;
    be->copy_from_host(k->get(), fill.data(), fill.size() * sizeof(float));
    for (float& f : fill) f = 2 * rng.uniform() - 1;
    be->copy_from_host(v->get(), fill.data(), fill.size() * sizeof(float));
    std::vector<float> qv(static_cast<size_t>(pt.tokens * q_dim));
    for (float& f : qv) f = 2 * rng.uniform() - 1;
    be->copy_from_host(q->get(), qv.data(), qv.size() * sizeof(float));
    be->copy_from_host(kn->get(), qv.data(), static_cast<size_t>(pt.tokens * kv_dim) * sizeof(float));
    be->copy_from_host(vn->get(), qv.data(), static_cast<size_t>(pt.tokens * kv_dim) * sizeof(float));
    std::vector<int32_t> table(static_cast<size_t>(blocks));
    for (int64_t b = 0; b < blocks; ++b) table[static_cast<size_t>(b)] = static_cast<int32_t>(b);
    std::vector<Backend::AttnSeq> layers(static_cast<size_t>(c.n_layers));
    for (int l = 0; l < c.n_layers; ++l) {
      Backend::AttnSeq& sq = layers[static_cast<size_t>(l)];
      sq.kv.dtype = DType::F32;
      sq.kv.k = static_cast<uint8_t*>(k->get()) + static_cast<int64_t>(l) * blocks * block_bytes;
      sq.kv.v = static_cast<uint8_t*>(v->get()) + static_cast<int64_t>(l) * blocks * block_bytes;
      sq.kv.block_bytes = block_bytes;
      sq.kv.row_elems = kv_dim;
      sq.kv.row_bytes = kv_dim * 4;
      sq.kv.block_size = kBlock;
      sq.kv.blocks = table.data();
      sq.n_tokens = static_cast<int>(pt.tokens);
      sq.pos0 = static_cast<int>(pt.kv_start);
      sq.row = 0;
    }
    auto pass = [&]() -> Result<double> {
      evict_caches(evict);
      const auto t0 = Clock::now();
      for (const Backend::AttnSeq& sq : layers)
        be->attention_batch(&sq, 1, q->f32(), kn->f32(), vn->f32(), c.n_heads, c.n_kv_heads, c.head_dim,
                            o->f32());
      TERN_TRY(be->synchronize());
      return std::chrono::duration<double>(Clock::now() - t0).count();
    };
    std::vector<double> secs;
    for (int r = 0; r <= rounds; ++r) {  // the first pass, untimed, faults the pages in
      auto t = pass();
      if (!t) return error("attention probe: " + t.message());
      if (r > 0) secs.push_back(t.value());
    }
    StepShape s;
    s.n_tokens = pt.tokens;
    s.kv_start = pt.kv_start;
    double flops = 0;
    for (const OpCost& op : step_ops(c, Precision{}, s))
      if (op.name == "attention") flops = op.flops;
    out.push_back({c.n_heads, c.n_kv_heads, c.head_dim, pt.tokens, pt.kv_start,
                   flops * c.n_layers / median(secs)});
  }
  return out;
}

Result<ModelCeilings> measure_model_ceilings(const ModelSpec& m, const Workload& w, int threads) {
  const int64_t chunk = w.prefill_chunk > 0 ? std::min(w.prefill_chunk, w.prompt) : w.prompt;
  ShapeProbe p;
  p.tokens = chunk;
  auto shapes = measure_shape_ceilings(matrix_shapes(m, w), p, threads);
  if (!shapes) return shapes.status();
  std::vector<AttentionPoint> points;
  if (chunk > 1) points.push_back({chunk, 0});
  // Decode step i attends with prompt + i - 1 keys cached before its token (perf/estimator.cpp).
  const int64_t steps = std::max<int64_t>(1, w.output - 1);
  for (int64_t i : {int64_t{1}, (steps + 1) / 2, steps}) {
    const AttentionPoint d{1, w.prompt + i - 1};
    if (std::none_of(points.begin(), points.end(),
                     [&](const AttentionPoint& x) { return x.tokens == 1 && x.kv_start == d.kv_start; }))
      points.push_back(d);
  }
  auto attention = measure_attention_ceilings(m.config, points, 9, threads);
  if (!attention) return attention.status();
  return ModelCeilings{shapes.value(), attention.value()};
}

}  // namespace tern::perf
