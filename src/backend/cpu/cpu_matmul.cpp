// The CPU backend's matmul (cpu_backend_impl.h). A call is planned once (which kernel, the weight bytes it
// reads, where the activations go), its activations prepared once per token, and then any range of output
// rows can be computed by any thread: matmul spreads all rows over the pool, the fused ops (cpu_fused.cpp)
// compute rows of several weights in one job and finish each range (bias, RoPE, SiLU) while it is in cache.
#include <algorithm>
#include <cstring>
#include <new>

#include "backend/cpu/cpu_backend_impl.h"
#include "backend/cpu/fgemm.h"
#include "backend/cpu/fgemm_bf16.h"
#include "core/quant.h"

namespace tern::cpu {

MatmulPlan CpuBackend::plan_matmul(const TensorView& w, const float* x, int n_tokens, ActBuffer& act) {
  MatmulPlan p;
  p.w = &w;
  p.path = path_for(w.dtype);
  p.x = x;
  p.n_tokens = n_tokens;
  p.act = &act;
  p.n_in = w.cols();
  p.wdata = static_cast<const uint8_t*>(w.data);
  p.row_bytes = static_cast<int64_t>(row_bytes(w.dtype, w.cols()));
  // Rows per block of work for the portable paths: a block of weight rows (about 32 KiB, L1-sized) is read
  // from memory once and then used against every token of the call before moving on.
  p.grain = std::clamp<int64_t>((32 << 10) / std::max<int64_t>(p.row_bytes, 1), 1, 64);
  if ((p.path == Path::Quant || p.path == Path::QuantK) && avx512_) {
    // The packed integer GEMM (qgemm.h): weights packed once per tensor, activations once per call.
    p.qgemm = true;
    p.n_blocks = p.n_in / kQ8XBlock;
    const QgemmLayout lay = qgemm_layout(w.dtype, p.n_blocks);
    p.x_groups = lay.x_groups();
    p.row_bytes = lay.row_bytes;
    p.wdata = packed_weights(w);
    if (!p.wdata) throw std::bad_alloc();
    // About 16 KiB of weights, which stay in L1 while every token tile passes over them: a whole number of
    // packs of rows sharing a tail group, so that no block computes a tail group another also computes.
    p.qlay = lay;
    p.grain = std::clamp<int64_t>(((16 << 10) / p.row_bytes) & ~int64_t{1}, 2, 32);
    p.grain = std::max<int64_t>(lay.pack, p.grain - p.grain % lay.pack);
    grow(act.xg, static_cast<size_t>(n_tokens * p.x_groups + 1));
  } else if (p.path == Path::Quant) {
    // One integer dot product per (row, token): each activation row is quantized once per call.
    p.n_blocks = p.n_in / kQ8XBlock;
    grow(act.xq, static_cast<size_t>(n_tokens * p.n_blocks));
  } else if (p.path == Path::Float && bf16_ && bgemm_supports(w.dtype)) {
    // The float GEMM's bf16 mode (fgemm_bf16.h), for every call, one token included: its bf16 copy of the
    // weights (made at prepare, or now for the classifier tied to the embedding table), and the activations
    // rounded to bf16 once per token.
    p.bgemm = true;
    const int64_t ld = bgemm_row_elems(p.n_in);
    p.row_bytes = ld * 2;
    p.wdata = bf16_weights(w);
    if (!p.wdata) throw std::bad_alloc();
    p.grain = 16;
    const int64_t scratch = bgemm_scratch_floats(p.grain);
    for (auto& f : fscratch_) grow(f, static_cast<size_t>((scratch + 15) / 16));
    grow(act.xh, static_cast<size_t>(n_tokens * ld + 32));
  } else if (p.path == Path::Float && avx512_) {
    // The float GEMM (fgemm.h) in blocks of 16 rows.
    p.fgemm = true;
    // Its copy in huge pages, made at prepare (the classifier tied to the embedding table has none).
    if (auto it = packed_.find(w.data); it != packed_.end()) p.wdata = it->second;
    p.grain = 16;
    const int64_t scratch = fgemm_scratch_floats(p.grain, p.n_in);
    for (auto& f : fscratch_) grow(f, static_cast<size_t>((scratch + 15) / 16));
  } else if (p.path != Path::Float) {
    for (auto& s : row_scratch_) grow(s, static_cast<size_t>(p.n_in));
  }
  return p;
}

void CpuBackend::pack_token(const MatmulPlan& p, int t, const float* x_row) const {
  if (p.qgemm)
    qgemm_pack_x_avx512(p.w->dtype, x_row, p.act->xg.data() + t * p.x_groups, p.n_blocks);
  else if (p.path == Path::Quant)
    quantize_row_q8x(x_row, p.act->xq.data() + t * p.n_blocks, p.n_in);
  else if (p.bgemm)
    bgemm_pack_x(x_row, p.n_in, p.act->xh_rows() + t * bgemm_row_elems(p.n_in));
}

void CpuBackend::pack_all(const MatmulPlan& p) {
  if (!p.qgemm && !p.bgemm && p.path != Path::Quant) return;
  pool_.parallel_for(p.n_tokens, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) pack_token(p, static_cast<int>(t), p.x + t * p.n_in);
  });
}

void CpuBackend::matmul_rows(const MatmulPlan& p, int64_t r0, int64_t r1, float* out, int64_t out_stride, int tid,
                             bool accumulate) {
  const int n_tokens = p.n_tokens;
  const int64_t rb = p.row_bytes, n_in = p.n_in;
  auto put = [accumulate](float& o, float v) { o = accumulate ? o + v : v; };
  if (p.qgemm) {
    for (int64_t b0 = r0; b0 < r1; b0 += p.grain)
      qgemm_avx512(p.w->dtype, p.wdata, p.qlay, p.w->rows(), b0, std::min(r1, b0 + p.grain), p.act->xg.data(),
                   p.x_groups, n_tokens, out, out_stride, accumulate);
    return;
  }
  if (p.bgemm) {
    float* sc = fscratch_[static_cast<size_t>(tid)].data()->f;
    const uint16_t* w = reinterpret_cast<const uint16_t*>(p.wdata);
    const int64_t ld = bgemm_row_elems(n_in);
    for (int64_t b0 = r0; b0 < r1; b0 += p.grain)
      bgemm_avx512bf16(w + b0 * ld, std::min(p.grain, r1 - b0), n_in, p.act->xh_rows(), n_tokens, out + b0,
                       out_stride, sc, accumulate);
    return;
  }
  if (p.fgemm) {
    float* sc = fscratch_[static_cast<size_t>(tid)].data()->f;
    for (int64_t b0 = r0; b0 < r1; b0 += p.grain)
      fgemm_avx512(p.w->dtype, p.wdata + b0 * rb, rb, std::min(p.grain, r1 - b0), n_in, p.x, n_tokens, out + b0,
                   out_stride, sc, accumulate);
    return;
  }
  const Kernels& k = k_;
  const DType dt = p.w->dtype;
  if (p.path == Path::Quant) {
    float (*dot)(const void*, const BlockQ8X*, int64_t) =
        dt == DType::Q8_0 ? k.dot_q8_0 : dt == DType::Q4_0 ? k.dot_q4_0 : k.dot_q4_1;
    const BlockQ8X* xq = p.act->xq.data();
    for (int64_t b0 = r0; b0 < r1; b0 += p.grain) {
      const int64_t b1 = std::min(r1, b0 + p.grain);
      for (int t = 0; t < n_tokens; ++t)
        for (int64_t r = b0; r < b1; ++r) put(out[t * out_stride + r], dot(p.wdata + r * rb, xq + t * p.n_blocks, p.n_blocks));
    }
    return;
  }
  if (p.path == Path::Float) {
    for (int64_t b0 = r0; b0 < r1; b0 += p.grain) {
      const int64_t b1 = std::min(r1, b0 + p.grain);
      for (int t = 0; t < n_tokens; ++t) {
        const float* xt = p.x + t * n_in;
        for (int64_t r = b0; r < b1; ++r) {
          const void* row = p.wdata + r * rb;
          float v;
          if (dt == DType::F32) v = k.dot_f32(static_cast<const float*>(row), xt, n_in);
          else if (dt == DType::F16) v = k.dot_f16(static_cast<const uint16_t*>(row), xt, n_in);
          else v = k.dot_bf16(static_cast<const uint16_t*>(row), xt, n_in);
          put(out[t * out_stride + r], v);
        }
      }
    }
    return;
  }
  // Any other type: expand each weight row to fp32 once (into this thread's scratch), then dot it with every
  // token.
  float* row = row_scratch_[static_cast<size_t>(tid)].data();
  for (int64_t r = r0; r < r1; ++r) {
    row_to_f32(dt, p.wdata + r * rb, row, n_in);
    for (int t = 0; t < n_tokens; ++t) put(out[t * out_stride + r], k.dot_f32(row, p.x + t * n_in, n_in));
  }
}

void CpuBackend::matmul_all(const MatmulPlan& p, float* out, bool accumulate) {
  const int64_t n_out = p.w->rows(), g = p.grain;
  pool_.parallel_for((n_out + g - 1) / g, [&](int64_t i0, int64_t i1, int tid) {
    matmul_rows(p, i0 * g, std::min(n_out, i1 * g), out, n_out, tid, accumulate);
  });
}

void CpuBackend::matmul(const TensorView& w, const float* x, int n_tokens, float* out) {
  const MatmulPlan p = plan_matmul(w, x, n_tokens, act_[0]);
  pack_all(p);
  matmul_all(p, out, false);
}

const uint8_t* CpuBackend::packed_weights(const TensorView& w) {
  const int64_t nb = w.cols() / kQ8XBlock;
  const size_t prb = static_cast<size_t>(qgemm_layout(w.dtype, nb).row_bytes);
  const uint8_t* src = static_cast<const uint8_t*>(w.data);
  return kept_copy(w, prb * static_cast<size_t>(w.rows()), [&](int64_t r0, int64_t r1, uint8_t* dst) {
    qgemm_pack_weights(w.dtype, src, dst, w.rows(), r0, r1, nb);
  });
}

const uint8_t* CpuBackend::bf16_weights(const TensorView& w) {
  const int64_t n_in = w.cols(), ld = bgemm_row_elems(n_in);
  const int64_t rb = static_cast<int64_t>(row_bytes(w.dtype, n_in));
  const uint8_t* src = static_cast<const uint8_t*>(w.data);
  return kept_copy(w, static_cast<size_t>(w.rows() * ld) * 2, [&](int64_t r0, int64_t r1, uint8_t* dst) {
    bgemm_pack_weights(w.dtype, src + r0 * rb, rb, r1 - r0, n_in, reinterpret_cast<uint16_t*>(dst) + r0 * ld);
  });
}

const uint8_t* CpuBackend::float_weights(const TensorView& w) {
  const size_t rb = row_bytes(w.dtype, w.cols());
  const uint8_t* src = static_cast<const uint8_t*>(w.data);
  return kept_copy(w, w.nbytes, [&](int64_t r0, int64_t r1, uint8_t* dst) {
    std::memcpy(dst + r0 * rb, src + r0 * rb, static_cast<size_t>(r1 - r0) * rb);
  });
}

}  // namespace tern::cpu
