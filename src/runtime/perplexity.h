// Perplexity of a model on a text, scored the way llama.cpp's perplexity tool scores it, so the two can be
// compared: the token stream is cut into chunks of n_ctx tokens; each chunk is evaluated from an empty
// cache, with its first token replaced by BOS when the tokenizer adds one; only the second half of each
// chunk is scored (those tokens have at least n_ctx/2 tokens of context), and
//   ppl = exp(mean over scored tokens of -log softmax(logits[i])[token[i+1]]).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

namespace tern {

struct PerplexityResult {
  int chunks = 0;
  int scored_tokens = 0;
  double nll_mean = 0.0;  // mean negative log-likelihood in nats
  double ppl = 0.0;
  std::vector<double> chunk_ppl;  // running perplexity after each chunk, as llama.cpp prints it
};

// `ids` is the whole tokenised text, with BOS first when the tokenizer adds one (as llama.cpp tokenises it).
// `model` must have a context of at least n_ctx.
Result<PerplexityResult> perplexity(LlamaModel& model, const Tokenizer& tok, const std::vector<int>& ids, int n_ctx);

}  // namespace tern
