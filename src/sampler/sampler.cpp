// validate() and the Sampler chain; the stages themselves are in stages.cpp.
#include "sampler/sampler.h"

#include <cassert>
#include <cmath>
#include <cstdio>
#include <string>

namespace tern {

namespace {

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

Status bad(const char* flag, const char* rule, double got) {
  return error(std::string(flag) + " must be " + rule + ", got " + fmt(got));
}

}  // namespace

Status validate(const SamplerParams& p) {
  // Written as !(ok) so that NaN, which fails every comparison, is rejected too.
  if (!(p.temperature >= 0.0f && std::isfinite(p.temperature)))
    return bad("--temp", ">= 0 and finite (0 = greedy)", p.temperature);
  if (p.top_k < 0) return bad("--top-k", ">= 0 (0 = off)", p.top_k);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return bad("--top-p", "in (0, 1] (1 = off)", p.top_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return bad("--min-p", "in [0, 1] (0 = off)", p.min_p);
  if (!(p.repeat_penalty > 0.0f && std::isfinite(p.repeat_penalty)))
    return bad("--repeat-penalty", "> 0 and finite (1 = off)", p.repeat_penalty);
  if (!std::isfinite(p.frequency_penalty))
    return bad("--frequency-penalty", "finite (0 = off)", p.frequency_penalty);
  if (!std::isfinite(p.presence_penalty))
    return bad("--presence-penalty", "finite (0 = off)", p.presence_penalty);
  if (p.penalty_last_n < -1) return bad("--penalty-last-n", ">= -1 (-1 = all, 0 = none)", p.penalty_last_n);
  return Status();
}

Sampler::Sampler(const SamplerParams& params, int vocab_size)
    : params_(params), vocab_size_(vocab_size), rng_(params.seed) {
  assert(validate(params).ok());
  assert(vocab_size > 0);
  candidates_.items.resize(static_cast<size_t>(vocab_size));
  candidates_.scratch.reserve(static_cast<size_t>(vocab_size));
  counts_.assign(static_cast<size_t>(vocab_size), 0);
}

void Sampler::reseed(uint64_t seed) {
  params_.seed = seed;
  rng_ = Rng(seed);
}

int Sampler::sample(float* logits, const std::vector<int>& history) {
  assert(logits != nullptr);
  const std::span<float> l(logits, static_cast<size_t>(vocab_size_));
  const SamplerParams& p = params_;

  const bool penalise = p.repeat_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f;
  if (penalise) {
    const std::span<const int> window = penalty_window(history, p.penalty_last_n);
    if (!window.empty())
      apply_penalties(l, window, p.repeat_penalty, p.frequency_penalty, p.presence_penalty, counts_);
  }

  if (p.temperature == 0.0f) {
    candidates_.size = 0;
    return argmax(l);
  }

  candidates_.reset(logits, l.size());
  if (p.temperature != 1.0f) apply_temperature(candidates_, p.temperature);
  top_k(candidates_, p.top_k);
  softmax(candidates_);
  top_p(candidates_, p.top_p);
  min_p(candidates_, p.min_p);
  renormalize(candidates_);
  return draw(candidates_, rng_.uniform());
}

}  // namespace tern
