// The KV cache: for each layer, a pool of fixed-size blocks of key rows and value rows, plus the free list
// and reference counts that let many sequences share one pool (the paged KV cache of the server). A
// sequence owns a block table (KvSequence); position p of the sequence sits in block table[p / block_size].
// Blocks holding a common prompt prefix can be shared by several sequences (retain / release).
//
// One row is one position's n_kv_heads * head_dim keys (or values) in the cache type: F32, F16 or Q8_0
// (Q8_0 needs head_dim to be a multiple of 32).
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "core/dtype.h"
#include "core/status.h"
#include "model/config.h"

namespace tern {

struct KvOptions {
  DType dtype = DType::F32;  // F32, F16 or Q8_0
  int block_size = 16;       // positions per block
  int n_blocks = 0;          // blocks in the pool; 0: just enough for one sequence of the model's n_ctx
};

// Parses "f32", "f16" or "q8_0" (the --kv-type values).
Result<DType> parse_kv_type(const std::string& s);

class KvCache {
 public:
  // Checks the options against the model and the backend (type, block size, head_dim for Q8_0) and
  // allocates the pools in the backend's memory (Backend::alloc, zero-filled): device memory for cuda.
  // The backend must outlive the cache.
  static Result<KvCache> create(const ModelConfig& c, const KvOptions& o, Backend& backend);

  DType dtype() const { return dtype_; }
  int block_size() const { return block_size_; }
  int n_blocks() const { return n_blocks_; }
  int n_free() const { return static_cast<int>(free_.size()); }
  int n_used() const { return n_blocks_ - n_free(); }
  size_t bytes() const { return k_.size() + v_.size(); }
  int64_t row_bytes() const { return row_bytes_; }

  // Takes a block off the free list with a reference count of 1; -1 when none is free.
  int32_t alloc();
  // Reference counting for shared blocks: retain adds a user, release drops one and frees the block at 0.
  void retain(int32_t block);
  void release(int32_t block);
  int refcount(int32_t block) const { return refs_[static_cast<size_t>(block)]; }

  // The view of one layer through a block table (see backend.h).
  KvView view(int layer, const int32_t* table);

 private:
  KvCache() = default;
  DType dtype_ = DType::F32;
  int block_size_ = 0, n_blocks_ = 0, n_layers_ = 0;
  int64_t row_elems_ = 0, row_bytes_ = 0, block_bytes_ = 0;
  BackendBuffer k_, v_;  // (n_layers, n_blocks, block_size, row) each, in the backend's memory
  std::vector<int32_t> free_;
  std::vector<int32_t> refs_;
};

// A sequence's block table and length.
struct KvSequence {
  std::vector<int32_t> blocks;
  int n_tokens = 0;  // positions written so far
};

// Makes `seq` able to hold `n_positions` positions, taking blocks from the pool; an error when the pool
// has too few free blocks (nothing is taken then).
Status kv_reserve(KvCache& cache, KvSequence& seq, int n_positions);
// Gives every block of `seq` back (release) and empties it.
void kv_free(KvCache& cache, KvSequence& seq);

}  // namespace tern
