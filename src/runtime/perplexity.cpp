#include "runtime/perplexity.h"

#include <cmath>

namespace tern {

Result<PerplexityResult> perplexity(LlamaModel& model, const Tokenizer& tok, const std::vector<int>& ids, int n_ctx) {
  if (n_ctx < 4) return error("--ctx must be at least 4 for perplexity, got " + std::to_string(n_ctx));
  if (n_ctx > model.n_ctx())
    return error("--ctx " + std::to_string(n_ctx) + " exceeds the model's context " + std::to_string(model.n_ctx()));
  const int n_chunks = static_cast<int>(ids.size()) / n_ctx;
  if (n_chunks == 0)
    return error("the text has " + std::to_string(ids.size()) + " tokens, fewer than one chunk of --ctx " +
                 std::to_string(n_ctx));
  const int V = model.config().vocab_size;
  const bool bos = tok.add_bos_by_default() && tok.bos_id() >= 0;
  std::vector<float> logits(static_cast<size_t>(n_ctx) * V);
  std::vector<int> chunk(static_cast<size_t>(n_ctx));
  PerplexityResult r;
  double nll_sum = 0.0;
  const int first = n_ctx / 2;
  for (int c = 0; c < n_chunks; ++c) {
    std::copy(ids.begin() + static_cast<long>(c) * n_ctx, ids.begin() + static_cast<long>(c + 1) * n_ctx, chunk.begin());
    if (bos) chunk[0] = tok.bos_id();
    TERN_TRY(model.forward(chunk.data(), n_ctx, 0, logits.data(), /*all_logits=*/true));
    // Token i+1 is predicted from the logits at position i; score positions first .. n_ctx-2.
    for (int i = first; i < n_ctx - 1; ++i) {
      const float* l = logits.data() + static_cast<size_t>(i) * V;
      double mx = l[0];
      for (int v = 1; v < V; ++v) mx = std::max(mx, static_cast<double>(l[v]));
      double sum = 0.0;
      for (int v = 0; v < V; ++v) sum += std::exp(static_cast<double>(l[v]) - mx);
      const int target = ids[static_cast<size_t>(c) * n_ctx + i + 1];
      nll_sum += -(static_cast<double>(l[target]) - mx - std::log(sum));
      ++r.scored_tokens;
    }
    r.chunk_ppl.push_back(std::exp(nll_sum / r.scored_tokens));
  }
  r.chunks = n_chunks;
  r.nll_mean = nll_sum / r.scored_tokens;
  r.ppl = std::exp(r.nll_mean);
  return r;
}

}  // namespace tern
