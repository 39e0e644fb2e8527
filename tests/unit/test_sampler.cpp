// The sampler stages one by one on distributions small enough to check by hand, then the chain.
//
// Most tests use logits log(q) for a known distribution q, so softmax gives back q and every kept set and
// renormalised probability can be worked out on paper (shown in the comments). Probabilities come out of
// exp/sum in float, so they are compared with a 1e-6 tolerance (a few float ulps at these magnitudes);
// penalty and temperature arithmetic on binary fractions is exact and compared exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "core/rng.h"
#include "sampler/sampler.h"

namespace tern {
namespace {

constexpr float kProbTol = 1e-6f;
const float kInf = std::numeric_limits<float>::infinity();

std::vector<float> log_of(const std::vector<double>& q) {
  std::vector<float> l;
  for (double x : q) l.push_back(static_cast<float>(std::log(x)));
  return l;
}

CandidateList make_list(const std::vector<float>& logits) {
  CandidateList c;
  c.reset(logits.data(), logits.size());
  return c;
}

std::vector<int> ids(const CandidateList& c) {
  std::vector<int> v;
  for (const Candidate& x : c.live()) v.push_back(x.id);
  return v;
}

void expect_probs(const CandidateList& c, const std::vector<double>& want) {
  ASSERT_EQ(c.size, want.size());
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(c.items[i].prob, want[i], kProbTol) << "candidate " << i << " (id " << c.items[i].id << ")";
}

// Five tokens, q = (0.1, 0.3, 0.05, 0.5, 0.05) by id. Descending order (ties by id): 3, 1, 0, 2, 4 with
// cumulative mass 0.5, 0.8, 0.9, 0.95, 1.0.
const std::vector<double> kQ5 = {0.1, 0.3, 0.05, 0.5, 0.05};

// ---------------------------------------------------------------- penalties

TEST(SamplerPenalties, WindowTakesTheLastN) {
  const std::vector<int> h = {1, 2, 3, 4, 5};
  EXPECT_EQ(std::vector<int>(penalty_window(h, 2).begin(), penalty_window(h, 2).end()),
            (std::vector<int>{4, 5}));
  EXPECT_EQ(penalty_window(h, -1).size(), 5u);  // -1: all
  EXPECT_EQ(penalty_window(h, 0).size(), 0u);   // 0: none
  EXPECT_EQ(penalty_window(h, 10).size(), 5u);  // more than there is: all
}

TEST(SamplerPenalties, RepetitionDividesPositiveMultipliesNegative) {
  // repeat 2: id0 2 -> 2/2 = 1; id1 -1 -> -1*2 = -2; id2 not seen: 0.5; id3 3 -> 1.5; id4 0 -> 0*2 = 0.
  std::vector<float> l = {2.0f, -1.0f, 0.5f, 3.0f, 0.0f};
  std::vector<int> counts(l.size(), 0);
  const std::vector<int> recent = {0, 1, 0, 3, 4};
  apply_penalties(l, recent, 2.0f, 0.0f, 0.0f, counts);
  EXPECT_EQ(l, (std::vector<float>{1.0f, -2.0f, 0.5f, 1.5f, 0.0f}));
  // Penalised once per distinct token even though id0 occurs twice, and the scratch is left zero.
  EXPECT_EQ(counts, std::vector<int>(l.size(), 0));
}

TEST(SamplerPenalties, FrequencyAndPresence) {
  // freq 0.25, presence 0.5, no repetition penalty; counts: id0 x3, id1 x1, id3 x0.
  //   id0: 2 - (3 * 0.25 + 0.5) = 2 - 1.25 = 0.75
  //   id1: -1 - (1 * 0.25 + 0.5) = -1.75
  //   id2, id3: untouched
  std::vector<float> l = {2.0f, -1.0f, 0.5f, 3.0f};
  std::vector<int> counts(l.size(), 0);
  const std::vector<int> recent = {0, 1, 0, 0};
  apply_penalties(l, recent, 1.0f, 0.25f, 0.5f, counts);
  EXPECT_EQ(l, (std::vector<float>{0.75f, -1.75f, 0.5f, 3.0f}));
}

TEST(SamplerPenalties, AllThreeInOrder) {
  // Repetition first, then the subtraction. repeat 2, freq 0.25, presence 0.5; id0 x2, id1 x1, id3 x1:
  //   id0: 2 / 2 = 1,   1 - (2 * 0.25 + 0.5) = 0
  //   id1: -1 * 2 = -2, -2 - 0.75 = -2.75
  //   id3: 3 / 2 = 1.5, 1.5 - 0.75 = 0.75
  std::vector<float> l = {2.0f, -1.0f, 0.5f, 3.0f};
  std::vector<int> counts(l.size(), 0);
  const std::vector<int> recent = {0, 1, 0, 3};
  apply_penalties(l, recent, 2.0f, 0.25f, 0.5f, counts);
  EXPECT_EQ(l, (std::vector<float>{0.0f, -2.75f, 0.5f, 0.75f}));
}

TEST(SamplerPenalties, IdsOutsideTheVocabularyAreIgnored) {
  std::vector<float> l = {2.0f, 4.0f};
  std::vector<int> counts(l.size(), 0);
  const std::vector<int> recent = {-1, 2, 1000, 1};
  apply_penalties(l, recent, 2.0f, 0.0f, 0.0f, counts);
  EXPECT_EQ(l, (std::vector<float>{2.0f, 2.0f}));  // only id1: 4 / 2
}

TEST(SamplerPenalties, ChainUsesOnlyTheLastNTokens) {
  // Greedy so the penalised argmax is visible. logits (3, 2.5); history (0, 1), repeat 2:
  //   last_n 1: only id1 penalised: (3, 1.25) -> 0.     last_n 2: both: (1.5, 1.25) -> 0.
  //   history (1, 0), last_n 1: only id0: (1.5, 2.5) -> 1.
  SamplerParams p;
  p.temperature = 0;
  p.repeat_penalty = 2;
  p.penalty_last_n = 1;
  Sampler s(p, 2);
  std::vector<float> l = {3.0f, 2.5f};
  EXPECT_EQ(s.sample(l.data(), {0, 1}), 0);
  EXPECT_EQ(l, (std::vector<float>{3.0f, 1.25f}));
  l = {3.0f, 2.5f};
  EXPECT_EQ(s.sample(l.data(), {1, 0}), 1);
  EXPECT_EQ(l, (std::vector<float>{1.5f, 2.5f}));

  p.penalty_last_n = 0;  // none
  Sampler none(p, 2);
  l = {3.0f, 2.5f};
  EXPECT_EQ(none.sample(l.data(), {0, 0, 0}), 0);
  EXPECT_EQ(l, (std::vector<float>{3.0f, 2.5f}));
}

// ---------------------------------------------------------------- greedy and temperature

TEST(SamplerGreedy, ArgmaxTiesToLowestId) {
  EXPECT_EQ(argmax(std::vector<float>{1, 5, 5, 2}), 1);
  EXPECT_EQ(argmax(std::vector<float>{-3, -1, -2}), 1);
  EXPECT_EQ(argmax(std::vector<float>{7}), 0);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(argmax(std::vector<float>{nan, 1, nan, 2}), 3);  // NaN never wins
}

TEST(SamplerGreedy, TemperatureZeroIsArgmaxAndDrawsNothing) {
  SamplerParams p;
  p.temperature = 0;
  p.top_k = 2;  // ignored by greedy
  p.seed = 5;
  Sampler s(p, 4);
  for (int i = 0; i < 10; ++i) {
    std::vector<float> l = {0.1f, 2.0f, -1.0f, 2.0f};
    EXPECT_EQ(s.sample(l.data(), {}), 1);
  }
  EXPECT_TRUE(s.rng() == Rng(5));  // no random number consumed
  EXPECT_EQ(s.candidates().size, 0u);
}

TEST(SamplerTemperature, DividesLogits) {
  CandidateList c = make_list({2.0f, -1.0f, 0.0f});
  apply_temperature(c, 0.5f);  // (2, -1, 0) / 0.5 = (4, -2, 0)
  EXPECT_EQ(c.items[0].logit, 4.0f);
  EXPECT_EQ(c.items[1].logit, -2.0f);
  EXPECT_EQ(c.items[2].logit, 0.0f);
  apply_temperature(c, 2.0f);  // (4, -2, 0) / 2 = (2, -1, 0)
  EXPECT_EQ(c.items[0].logit, 2.0f);
  EXPECT_EQ(c.items[1].logit, -1.0f);
}

TEST(SamplerTemperature, SharpensAndFlattens) {
  // logits log(0.5, 0.3, 0.2) / T gives q_i^(1/T) normalised.
  //   T = 0.5: (0.25, 0.09, 0.04) / 0.38 = (25/38, 9/38, 4/38) = (0.657895, 0.236842, 0.105263)
  CandidateList c = make_list(log_of({0.5, 0.3, 0.2}));
  apply_temperature(c, 0.5f);
  softmax(c);
  expect_probs(c, {25.0 / 38, 9.0 / 38, 4.0 / 38});
  //   T = 2: sqrt(0.5, 0.3, 0.2) = (0.707107, 0.547723, 0.447214), sum 1.702044
  //   -> (0.415446, 0.321803, 0.262752)
  c = make_list(log_of({0.5, 0.3, 0.2}));
  apply_temperature(c, 2.0f);
  softmax(c);
  const double s = std::sqrt(0.5) + std::sqrt(0.3) + std::sqrt(0.2);
  expect_probs(c, {std::sqrt(0.5) / s, std::sqrt(0.3) / s, std::sqrt(0.2) / s});
  EXPECT_NEAR(c.items[0].prob, 0.415446, 1e-6);
}

// ---------------------------------------------------------------- softmax

TEST(SamplerSoftmax, RecoversTheDistribution) {
  CandidateList c = make_list(log_of({0.5, 0.3, 0.2}));
  softmax(c);
  expect_probs(c, {0.5, 0.3, 0.2});
}

TEST(SamplerSoftmax, StableForHugeLogits) {
  // (1000, 1001): exp(1000) overflows a float, but only the difference matters:
  // (1, e) / (1 + e) = (0.268941, 0.731059). (Both logits and their difference are exact in float.)
  const double e = std::exp(1.0);
  CandidateList c = make_list({1000.0f, 1001.0f});
  softmax(c);
  expect_probs(c, {1 / (1 + e), e / (1 + e)});
  c = make_list({-1000.0f, -999.0f});  // without the max subtracted: 0 / 0
  softmax(c);
  expect_probs(c, {1 / (1 + e), e / (1 + e)});
}

TEST(SamplerSoftmax, InfinitiesAndNaN) {
  CandidateList c = make_list({-kInf, 0.0f, -kInf});  // -inf gets exactly 0
  softmax(c);
  EXPECT_EQ(c.items[0].prob, 0.0f);
  EXPECT_EQ(c.items[1].prob, 1.0f);
  c = make_list({-kInf, -kInf});  // nothing possible: the limit shares the mass equally
  softmax(c);
  expect_probs(c, {0.5, 0.5});
  c = make_list({kInf, 3.0f, kInf});  // +inf: all mass on the +inf tokens
  softmax(c);
  expect_probs(c, {0.5, 0.0, 0.5});
  c = make_list({std::numeric_limits<float>::quiet_NaN(), 0.0f});  // NaN is read as -inf
  softmax(c);
  expect_probs(c, {0.0, 1.0});
}

// ---------------------------------------------------------------- top-k

TEST(SamplerTopK, KeepsTheKLargestSorted) {
  // kQ5 descending: 3 (0.5), 1 (0.3), 0 (0.1), 2 (0.05), 4 (0.05).
  CandidateList c = make_list(log_of(kQ5));
  top_k(c, 2);
  EXPECT_EQ(ids(c), (std::vector<int>{3, 1}));
  EXPECT_TRUE(c.sorted);
  softmax(c);  // (0.5, 0.3) / 0.8 = (0.625, 0.375)
  expect_probs(c, {0.625, 0.375});

  c = make_list(log_of(kQ5));
  top_k(c, 3);
  softmax(c);  // (0.5, 0.3, 0.1) / 0.9 = (5/9, 3/9, 1/9)
  EXPECT_EQ(ids(c), (std::vector<int>{3, 1, 0}));
  expect_probs(c, {5.0 / 9, 3.0 / 9, 1.0 / 9});
}

TEST(SamplerTopK, TiesGoToTheLowerId) {
  // ids 2 and 4 tie at 0.05 (identical logits); with k = 4 only one fits, and it is id 2.
  CandidateList c = make_list(log_of(kQ5));
  top_k(c, 4);
  EXPECT_EQ(ids(c), (std::vector<int>{3, 1, 0, 2}));
  // All equal: the k lowest ids.
  c = make_list({1.0f, 1.0f, 1.0f, 1.0f, 1.0f});
  top_k(c, 2);
  EXPECT_EQ(ids(c), (std::vector<int>{0, 1}));
}

TEST(SamplerTopK, OffWhenZeroOrAtLeastSize) {
  CandidateList c = make_list(log_of(kQ5));
  top_k(c, 0);
  EXPECT_EQ(ids(c), (std::vector<int>{0, 1, 2, 3, 4}));
  top_k(c, 5);
  EXPECT_EQ(ids(c), (std::vector<int>{0, 1, 2, 3, 4}));
  top_k(c, 1000);
  EXPECT_EQ(c.size, 5u);
  EXPECT_FALSE(c.sorted);
}

TEST(SamplerTopK, MatchesAFullSortOnManyTokens) {
  // Cross-check against the definition on 5000 logits with many exact ties (values on a 0.25 grid).
  Rng r(11);
  std::vector<float> l(5000);
  for (float& x : l) x = static_cast<float>(r.next_u32() % 64) * 0.25f;
  std::vector<int> order(l.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return l[a] > l[b]; });
  for (int k : {1, 7, 100, 4999}) {
    CandidateList c = make_list(l);
    top_k(c, k);
    EXPECT_EQ(ids(c), std::vector<int>(order.begin(), order.begin() + k)) << "k = " << k;
  }
}

// ---------------------------------------------------------------- top-p

TEST(SamplerTopP, SmallestPrefixReachingP) {
  // Cumulative mass in descending order: 3: 0.5, 1: 0.8, 0: 0.9, 2: 0.95, 4: 1.0. The list was not sorted,
  // so the kept tokens stay in id order.
  struct Case {
    float p;
    std::vector<int> kept;
    std::vector<double> renormalised;
  };
  const std::vector<Case> cases = {
      {0.4f, {3}, {1.0}},                               // 0.5 >= 0.4 already
      {0.6f, {1, 3}, {0.375, 0.625}},                   // 0.5 < 0.6 <= 0.8; (0.3, 0.5) / 0.8
      {0.85f, {0, 1, 3}, {1.0 / 9, 3.0 / 9, 5.0 / 9}},  // 0.8 < 0.85 <= 0.9; / 0.9
      {0.92f, {0, 1, 2, 3}, {0.1 / 0.95, 0.3 / 0.95, 0.05 / 0.95, 0.5 / 0.95}},  // tie: id 2 before id 4
      {0.99f, {0, 1, 2, 3, 4}, {0.1, 0.3, 0.05, 0.5, 0.05}},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE("p = " + std::to_string(k.p));
    CandidateList c = make_list(log_of(kQ5));
    softmax(c);
    top_p(c, k.p);
    EXPECT_EQ(ids(c), k.kept);
    renormalize(c);
    expect_probs(c, k.renormalised);
  }
}

TEST(SamplerTopP, OneIsOffAndAtLeastOneIsKept) {
  CandidateList c = make_list(log_of(kQ5));
  softmax(c);
  top_p(c, 1.0f);
  EXPECT_EQ(ids(c), (std::vector<int>{0, 1, 2, 3, 4}));  // untouched
  top_p(c, 1e-9f);
  EXPECT_EQ(ids(c), (std::vector<int>{3}));
}

TEST(SamplerTopP, FlatAndImpossibleTokens) {
  // Eight equal logits, 1/8 each: the descending order is by id, and 4 * 0.125 = 0.5 reaches p = 0.5
  // exactly (all exact in binary), so ids 0..3 are kept.
  CandidateList c = make_list(std::vector<float>(8, 0.0f));
  softmax(c);
  top_p(c, 0.5f);
  EXPECT_EQ(ids(c), (std::vector<int>{0, 1, 2, 3}));
  // -inf tokens have probability 0 and are never kept; the rest (0.75, 0.25) -> p 0.8 keeps both.
  c = make_list({-kInf, static_cast<float>(std::log(3.0)), -kInf, 0.0f});
  softmax(c);
  top_p(c, 0.8f);
  EXPECT_EQ(ids(c), (std::vector<int>{1, 3}));
}

TEST(SamplerTopP, AfterTopKUsesTheRenormalisedMass) {
  // top-k 3 -> (5/9, 3/9, 1/9) = (0.556, 0.333, 0.111); p = 0.6: 0.556 < 0.6 <= 0.889 -> {3, 1}.
  CandidateList c = make_list(log_of(kQ5));
  top_k(c, 3);
  softmax(c);
  top_p(c, 0.6f);
  EXPECT_EQ(ids(c), (std::vector<int>{3, 1}));
  renormalize(c);
  expect_probs(c, {0.625, 0.375});  // (5/9, 3/9) / (8/9)
}

// The definition, by brute force: sort everything by (logit desc, id asc) and take the smallest prefix with
// mass >= p * total. Returned as a sorted list of ids.
std::vector<int> top_p_by_definition(const std::vector<float>& logits, float p) {
  CandidateList ref = make_list(logits);
  softmax(ref);
  std::vector<Candidate> all(ref.items.begin(), ref.items.begin() + ref.size);
  std::sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) {
    return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
  });
  double total = 0, cum = 0;
  for (const Candidate& x : all) total += x.prob;
  std::vector<int> want;
  for (const Candidate& x : all) {
    want.push_back(x.id);
    cum += x.prob;
    if (cum >= p * total) break;
  }
  std::sort(want.begin(), want.end());
  return want;
}

TEST(SamplerTopP, BucketedCutMatchesAFullSort) {
  // The unsorted path finds the cut through logit buckets; check it against the definition on 20000 tokens
  // of three shapes: spread out (uniform logits in [-6, 6]), peaked (one token far ahead), and coarse (a
  // 0.5 grid, so whole buckets tie and the tie-break by id decides).
  Rng r(3);
  const size_t n = 20000;
  std::vector<std::vector<float>> shapes(3, std::vector<float>(n));
  for (size_t i = 0; i < n; ++i) {
    shapes[0][i] = 12.0f * r.uniform() - 6.0f;
    shapes[1][i] = 4.0f * r.uniform();
    shapes[2][i] = static_cast<float>(r.next_u32() % 16) * 0.5f;
  }
  shapes[1][1234] = 20.0f;  // e^(20 - 4) / 20000 ~ 444: prob ~0.997
  for (size_t s = 0; s < shapes.size(); ++s) {
    for (float p : {0.05f, 0.5f, 0.9f, 0.99f, 0.9999f}) {
      CandidateList c = make_list(shapes[s]);
      softmax(c);
      top_p(c, p);
      std::vector<int> got = ids(c);
      EXPECT_TRUE(std::is_sorted(got.begin(), got.end())) << "kept tokens stay in id order";
      EXPECT_EQ(got, top_p_by_definition(shapes[s], p)) << "shape " << s << ", p = " << p;
    }
  }
}

// ---------------------------------------------------------------- min-p

TEST(SamplerMinP, DropsBelowFractionOfMax) {
  // Max prob 0.5 (id 3).
  //   min_p 0.15: threshold 0.075 -> keep 0.1, 0.3, 0.5 (ids 0, 1, 3, id order kept); / 0.9
  //   min_p 0.5:  threshold 0.25  -> keep ids 1, 3; (0.3, 0.5) / 0.8 = (0.375, 0.625)
  //   min_p 1:    threshold 0.5   -> keep id 3 only
  CandidateList c = make_list(log_of(kQ5));
  softmax(c);
  min_p(c, 0.15f);
  EXPECT_EQ(ids(c), (std::vector<int>{0, 1, 3}));
  renormalize(c);
  expect_probs(c, {1.0 / 9, 3.0 / 9, 5.0 / 9});

  c = make_list(log_of(kQ5));
  softmax(c);
  min_p(c, 0.5f);
  EXPECT_EQ(ids(c), (std::vector<int>{1, 3}));
  renormalize(c);
  expect_probs(c, {0.375, 0.625});

  c = make_list(log_of(kQ5));
  softmax(c);
  min_p(c, 1.0f);
  EXPECT_EQ(ids(c), (std::vector<int>{3}));

  c = make_list(log_of(kQ5));
  softmax(c);
  min_p(c, 0.0f);  // off
  EXPECT_EQ(c.size, 5u);
}

TEST(SamplerMinP, KeepsSortedOrder) {
  CandidateList c = make_list(log_of(kQ5));
  top_k(c, 4);  // 3, 1, 0, 2
  softmax(c);   // (0.5, 0.3, 0.1, 0.05) / 0.95; max 0.526, threshold at 0.3: 0.158 -> 0.105 and 0.053 go
  min_p(c, 0.3f);
  EXPECT_EQ(ids(c), (std::vector<int>{3, 1}));
  EXPECT_TRUE(c.sorted);
}

// ---------------------------------------------------------------- draw

CandidateList with_probs(const std::vector<int>& id, const std::vector<float>& prob) {
  CandidateList c;
  for (size_t i = 0; i < id.size(); ++i) c.items.push_back({id[i], 0.0f, prob[i]});
  c.size = id.size();
  return c;
}

TEST(SamplerDraw, InverseCdf) {
  // Probabilities (0.5, 0.25, 0.25) are exact in binary; cumulative 0.5, 0.75, 1. The first candidate whose
  // cumulative mass exceeds u: u in [0, 0.5) -> 10, [0.5, 0.75) -> 11, [0.75, 1) -> 12.
  const CandidateList c = with_probs({10, 11, 12}, {0.5f, 0.25f, 0.25f});
  EXPECT_EQ(draw(c, 0.0f), 10);
  EXPECT_EQ(draw(c, 0.49f), 10);
  EXPECT_EQ(draw(c, 0.5f), 11);
  EXPECT_EQ(draw(c, 0.74f), 11);
  EXPECT_EQ(draw(c, 0.75f), 12);
  EXPECT_EQ(draw(c, 1.0f - 0x1p-24f), 12);  // the largest uniform() value
}

TEST(SamplerDraw, SkipsZeroMassAndScalesByTotal) {
  // (0.5, 0, 0.5): u = 0.5 reaches cumulative 0.5 at id 10 (not >), id 11 adds nothing, id 12 -> 1.0.
  EXPECT_EQ(draw(with_probs({10, 11, 12}, {0.5f, 0.0f, 0.5f}), 0.5f), 12);
  // Unnormalised (2, 1, 1), total 4: u = 0.5 -> target 2; cumulative 2, 3, 4 -> id 11.
  EXPECT_EQ(draw(with_probs({10, 11, 12}, {2.0f, 1.0f, 1.0f}), 0.5f), 11);
  EXPECT_EQ(draw(with_probs({10, 11, 12}, {2.0f, 1.0f, 1.0f}), 0.49f), 10);
  EXPECT_EQ(draw(with_probs({7}, {1.0f}), 0.999f), 7);
}

// ---------------------------------------------------------------- the chain

TEST(SamplerChain, TopPThenDrawWithSeed42) {
  // log(0.5, 0.3, 0.2), top-p 0.7 -> keep {0, 1}, renormalised (0.625, 0.375). Rng(42)'s first uniform()
  // is 0xd11dd5 * 2^-24 = 0.81686 (test_rng.cpp), >= 0.625 -> token 1.
  SamplerParams p;
  p.top_p = 0.7f;
  p.seed = 42;
  Sampler s(p, 3);
  std::vector<float> l = log_of({0.5, 0.3, 0.2});
  EXPECT_EQ(s.sample(l.data(), {}), 1);
  EXPECT_EQ(ids(s.candidates()), (std::vector<int>{0, 1}));
  expect_probs(s.candidates(), {0.625, 0.375});
  Rng r(42);
  r.uniform();
  EXPECT_TRUE(s.rng() == r);  // exactly one uniform per non-greedy token
}

// Draws n tokens from fresh copies of `logits` and compares the frequencies with `want` (by id). The count
// of token i is binomial(n, q_i): its frequency has standard error sqrt(q_i (1 - q_i) / n); the tolerance is
// 4.5 of those, so a correct sampler fails a given token with probability ~7e-6 whatever the seed.
void expect_frequencies(const SamplerParams& p, const std::vector<float>& logits,
                        const std::vector<double>& want, int n) {
  Sampler s(p, static_cast<int>(logits.size()));
  std::vector<int> count(logits.size(), 0);
  std::vector<float> l(logits.size());
  const std::vector<int> no_history;
  for (int i = 0; i < n; ++i) {
    l = logits;
    ++count[s.sample(l.data(), no_history)];
  }
  for (size_t i = 0; i < want.size(); ++i) {
    const double freq = count[i] / static_cast<double>(n);
    if (want[i] == 0.0) {
      EXPECT_EQ(count[i], 0) << "token " << i << " is outside the kept set";
    } else {
      const double se = std::sqrt(want[i] * (1.0 - want[i]) / n);
      EXPECT_NEAR(freq, want[i], 4.5 * se) << "token " << i;
    }
  }
}

TEST(SamplerChain, FrequenciesMatchTheDistribution) {
  // Plain sampling at T = 1 from (0.5, 0.3, 0.2); 200k draws: SE 0.00112, 0.00102, 0.00089.
  SamplerParams p;
  p.seed = 1234;
  expect_frequencies(p, log_of({0.5, 0.3, 0.2}), {0.5, 0.3, 0.2}, 200000);
}

TEST(SamplerChain, FrequenciesWithTemperatureAndTopK) {
  // kQ5 at T = 0.5 -> q^2 = (0.01, 0.09, 0.0025, 0.25, 0.0025); top-k 3 keeps ids 3, 1, 0:
  // (0.25, 0.09, 0.01) / 0.35 -> id0 1/35, id1 9/35, id3 25/35; ids 2 and 4 never.
  SamplerParams p;
  p.temperature = 0.5f;
  p.top_k = 3;
  p.seed = 77;
  expect_frequencies(p, log_of(kQ5), {1.0 / 35, 9.0 / 35, 0.0, 25.0 / 35, 0.0}, 200000);
}

TEST(SamplerChain, FrequenciesWithTopPAndMinP) {
  // kQ5, top-p 0.85 keeps 3, 1, 0 (mass 0.9); min-p 0.25 drops below 0.25 * 0.5 = 0.125, i.e. id 0;
  // left (0.5, 0.3) / 0.8 = id3 0.625, id1 0.375.
  SamplerParams p;
  p.top_p = 0.85f;
  p.min_p = 0.25f;
  p.seed = 9;
  expect_frequencies(p, log_of(kQ5), {0.0, 0.375, 0.0, 0.625, 0.0}, 200000);
}

TEST(SamplerChain, SameSeedSameTokensDifferentSeedsDiffer) {
  // Eight equally likely tokens: two seeds agree at a position with probability 1/8, so over 2000 tokens
  // about 250 agreements are expected (SE ~15); identical sequences would mean the seed is ignored.
  SamplerParams p;
  auto run = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p, 8);
    std::vector<int> out, history;
    for (int i = 0; i < 2000; ++i) {
      std::vector<float> l(8, 0.0f);
      out.push_back(s.sample(l.data(), history));
    }
    return out;
  };
  const std::vector<int> a = run(2024), b = run(2024), c = run(2025);
  EXPECT_EQ(a, b);
  int same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == c[i];
  EXPECT_GT(same, 150);
  EXPECT_LT(same, 350);
}

TEST(SamplerChain, ReseedRestartsTheSequence) {
  SamplerParams p;
  p.seed = 5;
  Sampler s(p, 16);
  std::vector<int> first, second;
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<int>& out = pass == 0 ? first : second;
    for (int i = 0; i < 50; ++i) {
      std::vector<float> l(16, 0.0f);
      out.push_back(s.sample(l.data(), {}));
    }
    s.reseed(5);
  }
  EXPECT_EQ(first, second);
}

TEST(SamplerChain, NoAllocationPerToken) {
  // The candidate buffer is sized once by the constructor; sampling reuses it.
  SamplerParams p;
  p.top_p = 0.9f;
  p.repeat_penalty = 1.1f;
  Sampler s(p, 1000);
  const Candidate* buf = s.candidates().items.data();
  std::vector<float> l(1000);
  std::vector<int> history;
  Rng r(1);
  for (int i = 0; i < 100; ++i) {
    for (float& x : l) x = r.uniform() * 4.0f;
    history.push_back(s.sample(l.data(), history));
    ASSERT_EQ(s.candidates().items.data(), buf);
  }
}

// ---------------------------------------------------------------- validate

TEST(SamplerValidate, DefaultsAndEdgesAreValid) {
  EXPECT_TRUE(validate(SamplerParams{}).ok());
  SamplerParams p;
  p.temperature = 0;
  p.top_p = 1;
  p.min_p = 1;
  p.penalty_last_n = -1;
  p.frequency_penalty = -2;  // negative penalties encourage repetition: allowed
  EXPECT_TRUE(validate(p).ok());
}

TEST(SamplerValidate, ErrorsNameTheFlagAndValue) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    void (*set)(SamplerParams&);
    std::string flag, value;
  };
  const std::vector<Case> cases = {
      {[](SamplerParams& p) { p.temperature = -1; }, "--temp", "-1"},
      {[](SamplerParams& p) { p.temperature = std::numeric_limits<float>::infinity(); }, "--temp", "inf"},
      {[](SamplerParams& p) { p.top_k = -3; }, "--top-k", "-3"},
      {[](SamplerParams& p) { p.top_p = 0; }, "--top-p", "0"},
      {[](SamplerParams& p) { p.top_p = 1.5f; }, "--top-p", "1.5"},
      {[](SamplerParams& p) { p.min_p = -0.5f; }, "--min-p", "-0.5"},
      {[](SamplerParams& p) { p.min_p = 2; }, "--min-p", "2"},
      {[](SamplerParams& p) { p.repeat_penalty = 0; }, "--repeat-penalty", "0"},
      {[](SamplerParams& p) { p.penalty_last_n = -2; }, "--penalty-last-n", "-2"},
      {[](SamplerParams& p) { p.frequency_penalty = std::numeric_limits<float>::infinity(); },
       "--frequency-penalty", "inf"},
      {[](SamplerParams& p) { p.presence_penalty = -std::numeric_limits<float>::infinity(); },
       "--presence-penalty", "-inf"},
  };
  for (const Case& k : cases) {
    SamplerParams p;
    k.set(p);
    const Status s = validate(p);
    ASSERT_FALSE(s.ok()) << k.flag;
    EXPECT_NE(s.message().find(k.flag), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("got " + k.value), std::string::npos) << s.message();
  }
  SamplerParams p;
  p.top_p = nan;  // NaN fails every range check
  EXPECT_FALSE(validate(p).ok());
  p = SamplerParams{};
  p.temperature = nan;
  EXPECT_FALSE(validate(p).ok());
}

}  // namespace
}  // namespace tern
