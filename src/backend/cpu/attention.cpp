#include "backend/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/quant.h"

namespace tern::cpu {

namespace {

template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// Byte offsets of a cache's rows j, j + 1, ... in turn: one block-table lookup per block rather than a
// division per row.
class RowWalk {
 public:
  explicit RowWalk(const KvView& kv) : kv_(kv) {}
  int64_t next(int64_t j) {
    if (j >= end_) {
      const int64_t b = j / kv_.block_size;
      off_ = kv_.blocks[b] * kv_.block_bytes + (j - b * kv_.block_size) * kv_.row_bytes;
      end_ = (b + 1) * kv_.block_size;
    } else {
      off_ += kv_.row_bytes;
    }
    return off_;
  }

 private:
  const KvView& kv_;
  int64_t end_ = 0, off_ = 0;
};

}  // namespace

Attention::Attention(ThreadPool& pool, const Kernels& k) : pool_(pool), k_(k) {
  scratch_.resize(static_cast<size_t>(pool.size()));
}

void Attention::store(const KvView& kv, int pos0, int n_tokens, const float* k, const float* v) {
  const int64_t n = kv.row_elems;
  for (int t = 0; t < n_tokens; ++t) {
    const float* kt = k + t * n;
    const float* vt = v + t * n;
    uint8_t* kr = kv.k_row(pos0 + t);
    uint8_t* vr = kv.v_row(pos0 + t);
    switch (kv.dtype) {
      case DType::F32:
        std::memcpy(kr, kt, static_cast<size_t>(n) * sizeof(float));
        std::memcpy(vr, vt, static_cast<size_t>(n) * sizeof(float));
        break;
      case DType::F16:
        k_.f32_to_f16(kt, reinterpret_cast<uint16_t*>(kr), n);
        k_.f32_to_f16(vt, reinterpret_cast<uint16_t*>(vr), n);
        break;
      default:  // Q8_0, the same rounding as the reference backend
        quantize_row(kv.dtype, kt, kr, n);
        quantize_row(kv.dtype, vt, vr, n);
        break;
    }
  }
}

void Attention::run(const float* q, const KvView& kv, int n_tokens, int pos0, int n_heads, int n_kv_heads,
                    int head_dim, float* out) {
  Backend::AttnSeq s;
  s.kv = kv;
  s.n_tokens = n_tokens;
  s.pos0 = pos0;
  run_batch(&s, 1, q, n_heads, n_kv_heads, head_dim, out);
}

void Attention::run_batch(const Backend::AttnSeq* seqs, int n_seqs, const float* q, int n_heads, int n_kv_heads,
                          int head_dim, float* out) {
  const int group = n_heads / n_kv_heads;
  const size_t hd = static_cast<size_t>(head_dim);
  for (Scratch& s : scratch_) {
    grow(s.k, kKeyTile * hd);
    grow(s.v, kKeyTile * hd);
    grow(s.scores, kKeyTile);
    grow(s.m, static_cast<size_t>(kQueryBlock * group));
    grow(s.l, static_cast<size_t>(kQueryBlock * group));
    grow(s.o, static_cast<size_t>(kQueryBlock * group) * hd);
    grow(s.kt, kKeyTile * hd + 16);
    grow(s.qrow, static_cast<size_t>(kQueryBlock * group));
    grow(s.nrow, static_cast<size_t>(kQueryBlock * group));
  }
  items_.clear();
  for (int i = 0; i < n_seqs; ++i)
    for (int qb = 0; qb * kQueryBlock < seqs[i].n_tokens; ++qb)
      for (int g = 0; g < n_kv_heads; ++g)
        items_.push_back({i, qb, g, seqs[i].pos0 + std::min(seqs[i].n_tokens, (qb + 1) * kQueryBlock)});
  // The items that read the most keys run first, so the cheap ones fill in at the end.
  // std::sort with the build order as the tie-break: the same order as a stable sort, without the buffer a
  // stable sort may allocate (this runs once per layer per step).
  std::sort(items_.begin(), items_.end(), [](const Item& a, const Item& b) {
    if (a.n_keys != b.n_keys) return a.n_keys > b.n_keys;
    if (a.seq != b.seq) return a.seq < b.seq;
    return a.qblock != b.qblock ? a.qblock < b.qblock : a.kv_head < b.kv_head;
  });
  pool_.parallel_for(static_cast<int64_t>(items_.size()), [&](int64_t i0, int64_t i1, int tid) {
    for (int64_t i = i0; i < i1; ++i) {
      const Item& it = items_[static_cast<size_t>(i)];
      run_item(it, seqs[it.seq], q, n_heads, n_kv_heads, head_dim, out, scratch_[static_cast<size_t>(tid)]);
    }
  });
}

// Query block it.qblock of sequence s against kv head it.kv_head: tiles of keys, each converted to fp32 once
// and used for every query of the block and of the group.
void Attention::run_item(const Item& it, const Backend::AttnSeq& sq, const float* q, int n_heads, int n_kv_heads,
                         int head_dim, float* out, Scratch& s) const {
  const Kernels& kern = k_;
  const KvView& kv = sq.kv;
  const int group = n_heads / n_kv_heads, g = it.kv_head, pos0 = sq.pos0;
  const size_t hd = static_cast<size_t>(head_dim);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  const bool fused = kern.attend != nullptr && head_dim % 16 == 0 && head_dim <= 256;
  // The fused kernel's packed keys are read with aligned loads: the scratch's start rounded up to 64 bytes.
  float* kt = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(s.kt.data()) + 63) & ~uintptr_t{63});
  // Rows of this sequence's tokens in q and out.
  q += static_cast<int64_t>(sq.row) * n_heads * head_dim;
  out += static_cast<int64_t>(sq.row) * n_heads * head_dim;
  const int t0 = it.qblock * kQueryBlock, t1 = std::min(sq.n_tokens, t0 + kQueryBlock);
  const int rows = (t1 - t0) * group;
  std::fill(s.m.begin(), s.m.begin() + rows, -INFINITY);
  std::fill(s.l.begin(), s.l.begin() + rows, 0.0f);
  std::fill(s.o.begin(), s.o.begin() + rows * static_cast<int64_t>(hd), 0.0f);
  const int64_t head_off = static_cast<int64_t>(row_bytes(kv.dtype, static_cast<int64_t>(g) * head_dim));
  const int n_keys = it.n_keys;  // keys 0 .. pos0 + t1 - 1 are visible to some query of the block
  const int64_t head_bytes = static_cast<int64_t>(row_bytes(kv.dtype, head_dim));
  RowWalk rows_now(kv), rows_ahead(kv);
  for (int kb = 0; kb < n_keys; kb += kKeyTile) {
    const int ke = std::min(n_keys, kb + kKeyTile);
    // The tile's rows of kv head g as fp32: read in place for an F32 cache, converted once otherwise.
    const float* krow[kKeyTile];
    const float* vrow[kKeyTile];
    for (int j = kb; j < ke; ++j) {
      // One query token (decode) has a few rows' work per tile and reads the cache from memory: the next
      // tile's rows are fetched into L2 meanwhile.
      if (t1 - t0 == 1 && j + kKeyTile < n_keys) {
        const int64_t ahead = rows_ahead.next(j + kKeyTile) + head_off;
        for (int64_t b = 0; b < head_bytes; b += 64) {
          __builtin_prefetch(kv.k + ahead + b, 0, 2);
          __builtin_prefetch(kv.v + ahead + b, 0, 2);
        }
      }
      const int64_t off = rows_now.next(j) + head_off;
      const uint8_t* kp = kv.k + off;
      const uint8_t* vp = kv.v + off;
      float* kd = s.k.data() + (j - kb) * hd;
      float* vd = s.v.data() + (j - kb) * hd;
      switch (kv.dtype) {
        case DType::F32:
          krow[j - kb] = reinterpret_cast<const float*>(kp);
          vrow[j - kb] = reinterpret_cast<const float*>(vp);
          continue;
        case DType::F16:
          kern.f16_to_f32(reinterpret_cast<const uint16_t*>(kp), kd, head_dim);
          kern.f16_to_f32(reinterpret_cast<const uint16_t*>(vp), vd, head_dim);
          break;
        default:
          dequantize_row(kv.dtype, kp, kd, head_dim);
          dequantize_row(kv.dtype, vp, vd, head_dim);
          break;
      }
      krow[j - kb] = kd;
      vrow[j - kb] = vd;
    }
    // Token t sees keys up to pos0 + t: the tokens from tv on see some of this tile.
    const int tv = std::max(t0, kb - pos0);
    if (fused) {
      int n_rows = 0;
      for (int t = tv; t < t1; ++t)
        for (int hh = 0; hh < group; ++hh, ++n_rows) {
          s.qrow[n_rows] = q + (static_cast<int64_t>(t) * n_heads + g * group + hh) * head_dim;
          s.nrow[n_rows] = std::min(ke, pos0 + t + 1) - kb;
        }
      const int r0 = (tv - t0) * group;
      kern.attend(s.qrow.data(), s.nrow.data(), n_rows, krow, vrow, head_dim, scale, kt, &s.m[r0], &s.l[r0],
                  s.o.data() + r0 * hd);
      continue;
    }
    for (int t = tv; t < t1; ++t) {
      const int visible = std::min(ke, pos0 + t + 1) - kb;  // causal limit of this token inside the tile
      for (int hh = 0; hh < group; ++hh) {
        const int r = (t - t0) * group + hh;
        const float* qh = q + (static_cast<int64_t>(t) * n_heads + g * group + hh) * head_dim;
        float mx = -INFINITY;
        for (int j = 0; j < visible; ++j) {
          s.scores[j] = kern.dot_f32(qh, krow[j], head_dim) * scale;
          mx = std::max(mx, s.scores[j]);
        }
        float* o = s.o.data() + r * hd;
        const float m_new = std::max(s.m[r], mx);
        if (s.m[r] != -INFINITY && m_new != s.m[r]) {
          // Rescale what was accumulated under the old maximum.
          const float corr = std::exp(s.m[r] - m_new);
          s.l[r] *= corr;
          for (size_t d = 0; d < hd; ++d) o[d] *= corr;
        }
        s.m[r] = m_new;
        float sum = 0.0f;
        for (int j = 0; j < visible; ++j) {
          const float p = std::exp(s.scores[j] - m_new);
          sum += p;
          kern.axpy(p, vrow[j], o, head_dim);
        }
        s.l[r] += sum;
      }
    }
  }
  for (int t = t0; t < t1; ++t)
    for (int hh = 0; hh < group; ++hh) {
      const int r = (t - t0) * group + hh;
      const float inv = 1.0f / s.l[r];
      const float* o = s.o.data() + r * hd;
      float* dst = out + (static_cast<int64_t>(t) * n_heads + g * group + hh) * head_dim;
      for (size_t d = 0; d < hd; ++d) dst[d] = o[d] * inv;
    }
}

}  // namespace tern::cpu
