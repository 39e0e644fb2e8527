// Rng: PCG32 XSH-RR seeded through splitmix64 (src/core/rng.h).
//
// Golden values: computed independently with a short Python transcription of the published algorithms
// (Vigna's splitmix64.c; O'Neill's pcg-c-basic pcg32_random_r / pcg32_srandom_r), all arithmetic on Python
// ints masked to 64 bits:
//   def splitmix64(s):
//       s = (s + 0x9E3779B97F4A7C15) & M; z = s
//       z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
//       z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
//       return s, z ^ (z >> 31)
//   class Pcg32:  # __init__(initstate, initseq): state = 0; inc = (initseq << 1) | 1; next();
//                 #                              state += initstate; next()
//       def next(self):
//           old = self.state; self.state = (old * 6364136223846793005 + self.inc) & M
//           x = (((old >> 18) ^ old) >> 27) & 0xFFFFFFFF; r = old >> 59
//           return ((x >> r) | (x << ((-r) & 31))) & 0xFFFFFFFF
//   def tern_rng(seed): s, a = splitmix64(seed); s, b = splitmix64(s); return Pcg32(a, b)
// The PCG (42, 54) sequence is also the one printed by the reference pcg32-demo, which checks the
// transcription itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/rng.h"

namespace tern {
namespace {

TEST(RngGolden, Pcg32MatchesPublishedDemo) {
  // pcg32_srandom_r(&rng, 42u, 54u) in pcg-c-basic's pcg32-demo.c.
  Rng r = Rng::from_pcg(42, 54);
  EXPECT_EQ(r.next_u32(), 0xa15c02b7u);
  EXPECT_EQ(r.next_u32(), 0x7b47f409u);
  EXPECT_EQ(r.next_u32(), 0xba1d3330u);
  EXPECT_EQ(r.next_u32(), 0x83d2f293u);
  EXPECT_EQ(r.next_u32(), 0xbfa4784bu);
  EXPECT_EQ(r.next_u32(), 0xcbed606eu);
}

TEST(RngGolden, Splitmix64) {
  uint64_t s = 0;
  EXPECT_EQ(splitmix64(s), 0xe220a8397b1dcdafull);
  EXPECT_EQ(splitmix64(s), 0x6e789e6aa1b965f4ull);
  EXPECT_EQ(splitmix64(s), 0x06c45d188009454full);
  s = 42;
  EXPECT_EQ(splitmix64(s), 0xbdd732262feb6e95ull);
  EXPECT_EQ(splitmix64(s), 0x28efe333b266f103ull);
  EXPECT_EQ(splitmix64(s), 0x47526757130f9f52ull);
}

TEST(RngGolden, Seed42U32) {
  // tern_rng(42): Pcg32(0xbdd732262feb6e95, 0x28efe333b266f103).
  Rng r(42);
  EXPECT_EQ(r.next_u32(), 0xd11dd51fu);
  EXPECT_EQ(r.next_u32(), 0xa9b04c45u);
  EXPECT_EQ(r.next_u32(), 0xb5d97aa9u);
  EXPECT_EQ(r.next_u32(), 0xa9eab6ceu);
  EXPECT_EQ(r.next_u32(), 0xf63fd201u);
  EXPECT_EQ(r.next_u32(), 0x9d8fefebu);
}

TEST(RngGolden, Seed42U64IsTwoU32HighFirst) {
  Rng r(42);
  EXPECT_EQ(r.next_u64(), 0xd11dd51fa9b04c45ull);
  EXPECT_EQ(r.next_u64(), 0xb5d97aa9a9eab6ceull);
  EXPECT_EQ(r.next_u64(), 0xf63fd2019d8fefebull);
}

TEST(RngGolden, Seed42Uniform) {
  // uniform() = (u32 >> 8) * 2^-24: 0xd11dd51f >> 8 = 0xd11dd5 -> 13704661 / 16777216 = 0.81686145...
  Rng r(42);
  EXPECT_EQ(r.uniform(), static_cast<float>(0xd11dd5) * 0x1p-24f);
  EXPECT_EQ(r.uniform(), static_cast<float>(0xa9b04c) * 0x1p-24f);  // 0.66284633
  EXPECT_EQ(r.uniform(), static_cast<float>(0xb5d97a) * 0x1p-24f);  // 0.71034968
  EXPECT_EQ(r.uniform(), static_cast<float>(0xa9eab6) * 0x1p-24f);  // 0.66373765
  Rng r2(42);
  EXPECT_FLOAT_EQ(r2.uniform(), 0.8168614506721497f);
}

TEST(RngGolden, SeedZeroWorks) {
  // Seed 0 is mixed by splitmix64 like any other: tern_rng(0) starts 0x90644221 0x4618e85f 0x8f5bd9cd.
  Rng r(0);
  EXPECT_EQ(r.next_u32(), 0x90644221u);
  EXPECT_EQ(r.next_u32(), 0x4618e85fu);
  EXPECT_EQ(r.next_u32(), 0x8f5bd9cdu);
}

TEST(RngDeterminism, SameSeedSameSequence) {
  Rng a(123456789), b(123456789);
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(a.next_u64(), b.next_u64()) << "at draw " << i;
  EXPECT_TRUE(a == b);
}

TEST(RngDeterminism, DifferentSeedsDiffer) {
  // Neighbouring seeds must give unrelated streams: count positions where 1000 outputs agree. For
  // independent 32-bit outputs the expected number of agreements is 1000 / 2^32, i.e. 0.
  for (uint64_t s = 0; s < 8; ++s) {
    Rng a(s), b(s + 1);
    int same = 0;
    for (int i = 0; i < 1000; ++i) same += a.next_u32() == b.next_u32();
    EXPECT_EQ(same, 0) << "seeds " << s << " and " << s + 1;
  }
}

TEST(RngUniform, RangeAndMoments) {
  // 10^6 draws: all in [0, 1) and distinct from 1. The mean of U[0,1) is 1/2 with variance 1/12, so the
  // standard error of the sample mean is sqrt(1/12 / 1e6) = 2.89e-4; the tolerance 1.5e-3 is ~5 SE.
  // The variance 1/12 = 0.083333 has standard error sqrt((1/80 - 1/144) / 1e6) = 7.45e-5 (the fourth
  // central moment of U[0,1) is 1/80); tolerance 4e-4 is ~5 SE.
  Rng r(7);
  const int n = 1000000;
  double sum = 0, sum2 = 0;
  float lo = 1, hi = 0;
  for (int i = 0; i < n; ++i) {
    const float u = r.uniform();
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    sum += u;
    sum2 += static_cast<double>(u) * u;
  }
  const double mean = sum / n;
  const double var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 1.5e-3);
  EXPECT_NEAR(var, 1.0 / 12.0, 4e-4);
  EXPECT_LT(lo, 1e-4f);  // P(min of 1e6 draws > 1e-4) = (1 - 1e-4)^1e6 ~ e^-100
  EXPECT_GT(hi, 1.0f - 1e-4f);
}

TEST(RngUniform, ExtremesAreExact) {
  // The largest value is (2^24 - 1) * 2^-24 = 1 - 2^-24 < 1: the float conversion can never round up to 1.
  EXPECT_LT(static_cast<float>(0xffffff) * 0x1p-24f, 1.0f);
  EXPECT_EQ(static_cast<float>(0xffffff) * 0x1p-24f, 1.0f - 0x1p-24f);
}

TEST(RngBits, EveryBitIsBalanced) {
  // Each of the 64 bits of next_u64 over 100k draws is set with frequency 1/2 +- 5 SE, SE = sqrt(.25/1e5)
  // = 1.58e-3 -> tolerance 8e-3. Catches a stuck or badly combined half.
  Rng r(99);
  const int n = 100000;
  int ones[64] = {};
  for (int i = 0; i < n; ++i) {
    const uint64_t x = r.next_u64();
    for (int b = 0; b < 64; ++b) ones[b] += (x >> b) & 1;
  }
  for (int b = 0; b < 64; ++b) EXPECT_NEAR(ones[b] / double(n), 0.5, 8e-3) << "bit " << b;
}

}  // namespace
}  // namespace tern
