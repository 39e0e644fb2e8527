#include "runtime/kv_cache.h"

#include <cassert>

#include "core/quant.h"

namespace tern {

Result<DType> parse_kv_type(const std::string& s) {
  if (s == "f32") return DType::F32;
  if (s == "f16") return DType::F16;
  if (s == "q8_0") return DType::Q8_0;
  return error("unknown KV cache type '" + s + "' (choose f32, f16 or q8_0)");
}

Result<KvCache> KvCache::create(const ModelConfig& c, const KvOptions& o, Backend& backend) {
  if (o.dtype != DType::F32 && o.dtype != DType::F16 && o.dtype != DType::Q8_0)
    return error("KV cache type " + std::string(dtype_name(o.dtype)) + " is not supported (choose f32, f16 or q8_0)");
  if (!backend.supports_kv(o.dtype))
    return error("the " + std::string(backend.name()) + " backend does not support a " +
                 std::string(dtype_name(o.dtype)) + " KV cache (use --kv-type f16 or f32)");
  if (o.dtype == DType::Q8_0 && c.head_dim % 32 != 0)
    return error("a q8_0 KV cache needs head_dim to be a multiple of 32; this model's is " +
                 std::to_string(c.head_dim) + " (use --kv-type f16)");
  if (o.block_size < 1) return error("KV block size must be at least 1");
  const int n_blocks = o.n_blocks > 0 ? o.n_blocks : (c.max_seq_len + o.block_size - 1) / o.block_size;
  KvCache kv;
  kv.dtype_ = o.dtype;
  kv.block_size_ = o.block_size;
  kv.n_blocks_ = n_blocks;
  kv.n_layers_ = c.n_layers;
  kv.row_elems_ = c.kv_dim();
  kv.row_bytes_ = static_cast<int64_t>(::tern::row_bytes(o.dtype, c.kv_dim()));
  kv.block_bytes_ = kv.row_bytes_ * o.block_size;
  const size_t total = static_cast<size_t>(c.n_layers) * static_cast<size_t>(n_blocks) * kv.block_bytes_;
  auto k = BackendBuffer::make(backend, total);
  if (!k) return error("KV cache keys: " + k.message());
  auto v = BackendBuffer::make(backend, total);
  if (!v) return error("KV cache values: " + v.message());
  kv.k_ = std::move(k.value());
  kv.v_ = std::move(v.value());
  kv.refs_.assign(static_cast<size_t>(n_blocks), 0);
  kv.free_.reserve(static_cast<size_t>(n_blocks));
  for (int32_t b = n_blocks - 1; b >= 0; --b) kv.free_.push_back(b);  // alloc() hands out 0, 1, 2, ...
  return kv;
}

int32_t KvCache::alloc() {
  if (free_.empty()) return -1;
  const int32_t b = free_.back();
  free_.pop_back();
  refs_[static_cast<size_t>(b)] = 1;
  return b;
}

void KvCache::retain(int32_t block) {
  assert(refs_[static_cast<size_t>(block)] > 0);
  ++refs_[static_cast<size_t>(block)];
}

void KvCache::release(int32_t block) {
  int32_t& r = refs_[static_cast<size_t>(block)];
  assert(r > 0);
  if (--r == 0) free_.push_back(block);
}

KvView KvCache::view(int layer, const int32_t* table) {
  const size_t layer_bytes = static_cast<size_t>(n_blocks_) * block_bytes_;
  KvView v;
  v.dtype = dtype_;
  v.k = k_.u8() + static_cast<size_t>(layer) * layer_bytes;
  v.v = v_.u8() + static_cast<size_t>(layer) * layer_bytes;
  v.block_bytes = block_bytes_;
  v.row_elems = row_elems_;
  v.row_bytes = row_bytes_;
  v.block_size = block_size_;
  v.blocks = table;
  return v;
}

Status kv_reserve(KvCache& cache, KvSequence& seq, int n_positions) {
  const size_t need = static_cast<size_t>((n_positions + cache.block_size() - 1) / cache.block_size());
  if (need <= seq.blocks.size()) return Status();
  const size_t more = need - seq.blocks.size();
  if (more > static_cast<size_t>(cache.n_free()))
    return error("the KV cache has " + std::to_string(cache.n_free()) + " free blocks; " + std::to_string(more) +
                 " more are needed for " + std::to_string(n_positions) + " positions");
  while (seq.blocks.size() < need) seq.blocks.push_back(cache.alloc());
  return Status();
}

void kv_free(KvCache& cache, KvSequence& seq) {
  for (int32_t b : seq.blocks) cache.release(b);
  seq.blocks.clear();
  seq.n_tokens = 0;
}

}  // namespace tern
