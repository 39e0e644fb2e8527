// Sampling as a chain of small stages over the logits of one position (docs/sampling.md):
//
//   penalties -> temperature (0: greedy argmax, done) -> top-k -> softmax -> top-p -> min-p
//             -> renormalise -> draw
//
// Each stage is a free function, testable alone. After penalties, stages work on a CandidateList: a buffer
// of (token id, logit, probability) sized to the vocabulary once and reused, so nothing is allocated per
// token. The random draw uses tern's own RNG (core/rng.h) so a seed gives the same tokens on every machine
// and compiler, given the same logits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/rng.h"
#include "core/status.h"

namespace tern {

struct SamplerParams {
  float temperature = 1.0f;        // --temp: logits / T; 0 = greedy
  int top_k = 0;                   // --top-k: keep the k most likely tokens; 0 = off
  float top_p = 1.0f;              // --top-p: keep the smallest set with mass >= p; 1 = off
  float min_p = 0.0f;              // --min-p: drop tokens with prob < min_p * max prob; 0 = off
  float repeat_penalty = 1.0f;     // --repeat-penalty: logit > 0 divided, else multiplied; 1 = off
  float frequency_penalty = 0.0f;  // --frequency-penalty: subtract count * f
  float presence_penalty = 0.0f;   // --presence-penalty: subtract f once if present
  int penalty_last_n = 64;         // --penalty-last-n: recent tokens the penalties see (0 = none, -1 = all)
  uint64_t seed = 0;               // --seed
};

// Checks ranges; the message names the flag and the bad value ("--temp must be >= 0 and finite, got -1").
Status validate(const SamplerParams& p);

// One candidate token. `logit` is the (penalised, tempered) logit; `prob` is valid after softmax().
struct Candidate {
  int id;
  float logit;
  float prob;
};

// The live candidates are items[0, size). `sorted` means they are in descending logit order, ties by
// ascending id (the strict total order every sorting stage uses, so no result depends on how a library
// sorts). Otherwise they are in id order, as reset() left them, less the tokens dropped. The order matters:
// draw() walks it, so it must be the same on every machine for a seed to mean the same tokens.
struct CandidateList {
  std::vector<Candidate> items;
  size_t size = 0;
  bool sorted = false;
  std::vector<Candidate> scratch;  // working space for top_p(); reserve it to the vocabulary up front

  // Fills the list with all n tokens of `logits`, in id order, prob 0. NaN logits become -inf (never drawn).
  // Allocates only when n exceeds the capacity reached so far.
  void reset(const float* logits, size_t n);
  std::span<Candidate> live() { return {items.data(), size}; }
  std::span<const Candidate> live() const { return {items.data(), size}; }
};

// ---- Stages, in chain order ----

// The window of `history` the penalties look at: the last `last_n` tokens (-1: all, 0: none).
std::span<const int> penalty_window(std::span<const int> history, int last_n);

// Applies repetition, frequency and presence penalties in place to logits[0, logits.size()) for each
// distinct token t occurring c(t) > 0 times in `recent`:
//   l = l > 0 ? l / repeat : l * repeat;     l -= c(t) * frequency + presence.
// `counts` is scratch of logits.size() zeros; it is left all zero again. Ids outside the vocabulary are
// ignored.
void apply_penalties(std::span<float> logits, std::span<const int> recent, float repeat_penalty,
                     float frequency_penalty, float presence_penalty, std::span<int> counts);

// Greedy: the index of the largest logit, ties to the lowest id. NaN never wins. Requires logits non-empty.
int argmax(std::span<const float> logits);

// logit /= temperature, for temperature > 0.
void apply_temperature(CandidateList& c, float temperature);

// Keeps the k largest logits (ties: lower id first) and leaves them sorted; k <= 0 or k >= size: no-op.
// Costs O(n + k log k) for small k (a heap of the k best, then sorting them), O(n log k) at worst.
void top_k(CandidateList& c, int k);

// prob_i = exp(l_i - max) / sum_j exp(l_j - max), the sum accumulated in double. If every logit is -inf
// (or some are +inf), the mass is shared equally by the tokens equal to the maximum.
void softmax(CandidateList& c);

// Keeps the smallest set of most likely tokens (a prefix in the sorted order) whose mass is >= p * (total
// mass); always at least one token; p >= 1: no-op. Needs softmax() first. Probabilities are not rescaled
// (see renormalize()). A sorted list is truncated. An unsorted one is not sorted: the last kept token is
// found by bucketing the logits and sorting one bucket, and the kept tokens stay in their current order,
// O(n) in all but degenerate cases instead of O(n log n).
void top_p(CandidateList& c, float p);

// Keeps the tokens with prob >= ratio * (max prob), in their current order; always keeps the most likely.
// ratio <= 0: no-op. Needs softmax() first. Probabilities are not rescaled.
void min_p(CandidateList& c, float ratio);

// Rescales the live probabilities to sum to 1.
void renormalize(CandidateList& c);

// Inverse CDF: the first live candidate whose cumulative mass exceeds u * (total live mass), for u in
// [0, 1). Candidates with prob 0 are never picked. Returns the token id. Requires size > 0.
int draw(const CandidateList& c, float u);

// ---- The chain ----

class Sampler {
 public:
  // `params` must pass validate() (asserted); vocab_size > 0. Allocates the buffers once.
  Sampler(const SamplerParams& params, int vocab_size);

  // Picks the next token from `logits` (vocab_size floats; penalties are applied in place) given the tokens
  // so far. Temperature 0 is greedy and consumes no random numbers; otherwise exactly one uniform().
  int sample(float* logits, const std::vector<int>& history);

  // Restarts the random sequence as if constructed with `seed` (e.g. a new request with its own seed).
  void reseed(uint64_t seed);

  const SamplerParams& params() const { return params_; }
  const Rng& rng() const { return rng_; }
  // The candidates of the last non-greedy sample() with their renormalised probabilities (e.g. for
  // logprobs); empty after a greedy one.
  const CandidateList& candidates() const { return candidates_; }

 private:
  SamplerParams params_;
  int vocab_size_;
  Rng rng_;
  CandidateList candidates_;  // reused across calls: no per-token allocation
  std::vector<int> counts_;   // penalty scratch, all zero between calls
};

}  // namespace tern
