// The sampling stages, each a free function over the logits or a CandidateList (declared in sampler.h).
#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <limits>

#include "sampler/sampler.h"

namespace tern {

namespace {

// The one order every sorting stage uses: larger logit first, ties to the lower id. It is a strict total
// order (ids are distinct and NaN was mapped to -inf), so any correct sort gives the same result.
bool before(const Candidate& a, const Candidate& b) {
  if (a.logit != b.logit) return a.logit > b.logit;
  return a.id < b.id;
}

// The length of the shortest prefix of `sorted` whose mass is >= target; all of it (at least 1) if rounding
// keeps the sum just short.
size_t prefix_reaching(std::span<const Candidate> sorted, double target) {
  double cum = 0.0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    cum += sorted[i].prob;
    if (cum >= target) return i + 1;
  }
  return std::max<size_t>(sorted.size(), 1);
}

// The candidate at which the running mass, in `before` order, first reaches `target`: the last one top-p
// keeps. Reorders `pool` (non-empty). Sorting the pool would do; this avoids it for large pools by
// bucketing the logits: bucket(x) = floor((max - l) * scale) is monotone in `before` order, so the cut lies
// in the first bucket where the running mass reaches the target, and only that bucket is sorted.
Candidate find_cut(std::vector<Candidate>& pool, double target) {
  assert(!pool.empty());
  constexpr size_t kSortBelow = 512;  // small pools: a plain sort is cheaper than two bucket passes
  const auto first = pool.begin();
  if (pool.size() <= kSortBelow) {
    std::sort(first, pool.end(), before);
    return pool[prefix_reaching(pool, target) - 1];
  }
  float max_l = -std::numeric_limits<float>::infinity();
  float min_l = std::numeric_limits<float>::infinity();
  for (const Candidate& x : pool) {
    max_l = std::max(max_l, x.logit);
    min_l = std::min(min_l, x.logit);
  }
  // The span [min_l, max_l] is spread over buckets 0 .. kBuckets - 2. Any positive scale is correct; if
  // the span is not a positive finite number (all equal, or some logit infinite) every token goes to
  // bucket 0 (scale 0; NaN from 0 * inf fails `d >= 1` too), which degrades to the plain sort.
  constexpr int kBuckets = 1024;
  const double span = static_cast<double>(max_l) - static_cast<double>(min_l);
  const double scale = span > 0.0 && std::isfinite(span) ? (kBuckets - 2) / span : 0.0;
  auto bucket_of = [&](const Candidate& x) {
    const double d = static_cast<double>(max_l - x.logit) * scale;  // >= 0, or NaN
    if (!(d >= 1.0)) return 0;
    return d < kBuckets - 1 ? static_cast<int>(d) : kBuckets - 1;
  };
  std::array<double, kBuckets> mass{};
  for (const Candidate& x : pool) mass[bucket_of(x)] += x.prob;
  // The first bucket whose running mass reaches the target; the last non-empty one if rounding keeps the
  // running mass just short (then the whole pool is kept).
  int cut_bucket = -1, last_nonempty = 0;
  double running = 0.0, in_front = 0.0, in_front_of_last = 0.0;
  for (int b = 0; b < kBuckets; ++b) {
    if (!(mass[b] > 0.0)) continue;
    if (running + mass[b] >= target) {
      cut_bucket = b;
      in_front = running;
      break;
    }
    last_nonempty = b;
    in_front_of_last = running;
    running += mass[b];
  }
  if (cut_bucket < 0) {
    cut_bucket = last_nonempty;
    in_front = in_front_of_last;
  }
  // Bring the cut bucket's tokens to the front (std::partition's order is unspecified, but the sort by a
  // strict total order that follows makes the result unique), sort only them and walk the rest of the mass.
  const auto mid =
      std::partition(first, pool.end(), [&](const Candidate& x) { return bucket_of(x) == cut_bucket; });
  std::sort(first, mid, before);
  const std::span<const Candidate> in_cut(pool.data(), static_cast<size_t>(mid - first));
  return in_cut[prefix_reaching(in_cut, target - in_front) - 1];
}

double live_mass(const CandidateList& c) {
  double total = 0.0;
  for (const Candidate& x : c.live()) total += x.prob;
  return total;
}

}  // namespace

void CandidateList::reset(const float* logits, size_t n) {
  if (items.size() < n) items.resize(n);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) {
    const float l = logits[i];
    items[i] = Candidate{static_cast<int>(i), std::isnan(l) ? neg_inf : l, 0.0f};
  }
  size = n;
  sorted = false;
}

std::span<const int> penalty_window(std::span<const int> history, int last_n) {
  if (last_n < 0 || static_cast<size_t>(last_n) >= history.size()) return history;
  return history.subspan(history.size() - static_cast<size_t>(last_n));
}

void apply_penalties(std::span<float> logits, std::span<const int> recent, float repeat_penalty,
                     float frequency_penalty, float presence_penalty, std::span<int> counts) {
  assert(counts.size() >= logits.size());
  const size_t n = logits.size();
  auto in_vocab = [n](int t) { return t >= 0 && static_cast<size_t>(t) < n; };
  // Two passes over the window instead of clearing a vocab-sized table: count, then penalise each distinct
  // token once and zero its count, which also marks it done.
  for (int t : recent)
    if (in_vocab(t)) ++counts[t];
  for (int t : recent) {
    if (!in_vocab(t) || counts[t] == 0) continue;
    float& l = logits[t];
    // CTRL (Keskar et al. 2019) divides the logit by the penalty; dividing a negative logit would raise its
    // probability, so negative logits are multiplied instead (as llama.cpp does).
    if (repeat_penalty != 1.0f) l = l > 0.0f ? l / repeat_penalty : l * repeat_penalty;
    // OpenAI's frequency and presence penalties: l -= c * f + [c > 0] * p.
    l -= static_cast<float>(counts[t]) * frequency_penalty + presence_penalty;
    counts[t] = 0;
  }
}

int argmax(std::span<const float> logits) {
  assert(!logits.empty());
  int best = -1;
  float best_l = 0.0f;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float l = logits[i];
    if (std::isnan(l)) continue;
    if (best < 0 || l > best_l) {  // strict: a tie keeps the earlier (lower) id
      best = static_cast<int>(i);
      best_l = l;
    }
  }
  return best < 0 ? 0 : best;
}

void apply_temperature(CandidateList& c, float temperature) {
  assert(temperature > 0.0f);
  for (Candidate& x : c.live()) x.logit /= temperature;
}

void top_k(CandidateList& c, int k) {
  if (k <= 0 || static_cast<size_t>(k) >= c.size) return;
  const auto first = c.items.begin();
  const auto kth = first + k;
  if (!c.sorted) {
    // Heap selection: items[0, k) is a heap whose top is the worst of the k best seen so far. Most later
    // tokens lose one (well predicted) comparison against it, so this is about one pass over the logits;
    // nth_element's partitioning branches are unpredictable and it was ~10x slower on a 128k vocabulary.
    std::make_heap(first, kth, before);
    for (size_t i = static_cast<size_t>(k); i < c.size; ++i) {
      if (before(c.items[i], c.items[0])) {
        std::pop_heap(first, kth, before);  // the worst moves to items[k - 1] ...
        *(kth - 1) = c.items[i];            // ... and is replaced
        std::push_heap(first, kth, before);
      }
    }
    std::sort_heap(first, kth, before);  // a strict total order: the same result from any heap or sort
  }
  c.size = static_cast<size_t>(k);
  c.sorted = true;
}

void softmax(CandidateList& c) {
  if (c.size == 0) return;
  float max_l = -std::numeric_limits<float>::infinity();
  if (c.sorted) {
    max_l = c.items[0].logit;
  } else {
    for (const Candidate& x : c.live()) max_l = std::max(max_l, x.logit);
  }
  if (!std::isfinite(max_l)) {
    // exp(l - max) is NaN here (-inf - -inf or inf - inf): the limit puts all mass, equally, on the maxima.
    size_t n_max = 0;
    for (const Candidate& x : c.live()) n_max += x.logit == max_l;
    const float share = static_cast<float>(1.0 / static_cast<double>(n_max));
    for (Candidate& x : c.live()) x.prob = x.logit == max_l ? share : 0.0f;
    return;
  }
  // Subtracting the max makes every exponent <= 0: no overflow, and the largest term is exactly 1, so the
  // sum is >= 1 and never underflows.
  double sum = 0.0;
  for (Candidate& x : c.live()) {
    x.prob = std::exp(x.logit - max_l);
    sum += x.prob;
  }
  const double inv = 1.0 / sum;
  for (Candidate& x : c.live()) x.prob = static_cast<float>(x.prob * inv);
}

void top_p(CandidateList& c, float p) {
  if (p >= 1.0f || c.size <= 1) return;
  const double total = live_mass(c);
  const double target = static_cast<double>(p) * total;
  if (!(target > 0.0)) return;  // no mass at all (softmax not run): nothing to rank
  if (c.sorted) {
    c.size = prefix_reaching(c.live(), target);
    return;
  }
  // Unsorted: find the last kept token (the cut) without sorting everything, then keep every token that
  // is not after the cut in the `before` order, in the order the tokens are in. The kept set is exactly
  // the sorted prefix; only its order differs, and that order is still fully determined.
  //
  // Only tokens with prob > bound can be kept. In descending order q_1 >= q_2 >= ..., the prefix ends at
  // the first m with q_1 + ... + q_m >= target, so the tail from m carries mass
  //   q_m + ... + q_n > total - target = (1 - p) * total,
  // and as it holds at most n tokens each <= q_m:  q_m > (1 - p) * total / n. The cut has prob q_m, so it
  // and every token in front of it are above the bound (halved as a margin for rounding in the sums), and
  // the running mass up to the cut is the same whether or not the tokens below the bound are counted.
  const double bound = 0.5 * (1.0 - static_cast<double>(p)) * total / static_cast<double>(c.size);
  std::vector<Candidate>& pool = c.scratch;
  pool.clear();  // capacity kept: no allocation once it has reached the vocabulary size
  for (const Candidate& x : c.live())
    if (x.prob > bound) pool.push_back(x);
  if (pool.empty()) return;  // cannot happen: the most likely token has prob >= total / n > bound
  const Candidate cut = find_cut(pool, target);
  size_t kept = 0;
  for (size_t i = 0; i < c.size; ++i) {
    if (!before(cut, c.items[i])) c.items[kept++] = c.items[i];  // stable: the order stays determined
  }
  c.size = kept;
}

void min_p(CandidateList& c, float ratio) {
  if (ratio <= 0.0f || c.size == 0) return;
  float max_prob = 0.0f;
  for (const Candidate& x : c.live()) max_prob = std::max(max_prob, x.prob);
  // min(ratio, 1) keeps the threshold <= max_prob, so the most likely token always survives.
  const float threshold = std::min(ratio, 1.0f) * max_prob;
  size_t kept = 0;
  for (size_t i = 0; i < c.size; ++i) {
    if (c.items[i].prob >= threshold) c.items[kept++] = c.items[i];  // stable: order (and `sorted`) holds
  }
  c.size = kept;
}

void renormalize(CandidateList& c) {
  const double total = live_mass(c);
  if (!(total > 0.0)) return;
  const double inv = 1.0 / total;
  for (Candidate& x : c.live()) x.prob = static_cast<float>(x.prob * inv);
}

int draw(const CandidateList& c, float u) {
  assert(c.size > 0);
  // Walking the cumulative sum against u * total (not u) makes the draw exact for an unnormalised list and
  // immune to a sum of 1 +- rounding. The comparison is strict, so a zero-probability token is never chosen.
  const double target = static_cast<double>(u) * live_mass(c);
  double cum = 0.0;
  size_t last_positive = 0;
  for (size_t i = 0; i < c.size; ++i) {
    const Candidate& x = c.items[i];
    if (!(x.prob > 0.0f)) continue;
    cum += x.prob;
    last_positive = i;
    if (cum > target) return x.id;
  }
  return c.items[last_positive].id;  // only when rounding left target at the very top
}

}  // namespace tern
