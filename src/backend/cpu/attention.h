// The CPU backend's attention: writes to the paged KV cache and causal attention over it in tiles with an
// online softmax (flash-attention style). A work item is (a block of query tokens, one kv head); it walks
// the keys in tiles, converts each K/V tile to fp32 once (F16 and Q8_0 caches) and uses it for every query
// head of the group and every token of the block, keeping a running max, sum and output per query, so no
// score matrix is ever materialised. Where there is a fused kernel (AVX-512) it takes all of a tile's query
// rows in one call, so that it can share what it loads between rows.
#pragma once

#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_kernels.h"
#include "core/thread_pool.h"

namespace tern::cpu {

class Attention {
 public:
  Attention(ThreadPool& pool, const Kernels& k);

  void store(const KvView& kv, int pos0, int n_tokens, const float* k, const float* v);
  void run(const float* q, const KvView& kv, int n_tokens, int pos0, int n_heads, int n_kv_heads, int head_dim,
           float* out);
  // Several sequences' attention as one job: the items of all of them, the longest first.
  void run_batch(const Backend::AttnSeq* seqs, int n_seqs, const float* q, int n_heads, int n_kv_heads,
                 int head_dim, float* out);

  static constexpr int kQueryBlock = 16;  // query tokens per work item
  static constexpr int kKeyTile = 64;     // keys per tile

 private:
  struct Scratch {
    std::vector<float> k, v;     // one K and one V tile as fp32 (kKeyTile, head_dim)
    std::vector<float> scores;   // one query's scores over a tile
    std::vector<float> m, l, o;  // running max, sum and output of each query row of the item
    std::vector<float> kt;       // the fused kernel's scratch for a K tile, kKeyTile * head_dim (+ alignment)
    std::vector<const float*> qrow;  // the fused kernel's query rows of a tile and the keys each sees
    std::vector<int> nrow;
  };
  struct Item {
    int seq, qblock, kv_head, n_keys;
  };
  void run_item(const Item& it, const Backend::AttnSeq& s, const float* q, int n_heads, int n_kv_heads,
                int head_dim, float* out, Scratch& sc) const;

  ThreadPool& pool_;
  const Kernels& k_;
  std::vector<Scratch> scratch_;  // per thread
  std::vector<Item> items_;       // the work items of a call
};

}  // namespace tern::cpu
