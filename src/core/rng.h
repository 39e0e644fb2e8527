// tern's own random number generator: PCG32 (XSH-RR variant) seeded through splitmix64.
//
// Why our own: std::mt19937 is specified, but std::uniform_real_distribution and friends are not (libstdc++,
// libc++ and MSVC produce different floats from the same engine), and std::default_random_engine differs by
// vendor. A sampler must turn one --seed into the same tokens everywhere, so every bit here is specified:
// integer arithmetic modulo 2^64 and one exact float conversion.
//
// PCG32 XSH-RR (M. E. O'Neill, "PCG: A Family of Simple Fast Space-Efficient Statistically Good Algorithms
// for Random Number Generation", 2014; reference pcg-c-basic, pcg32_random_r / pcg32_srandom_r):
//   state' = state * 6364136223846793005 + inc                (64-bit LCG; inc is odd, picks the stream)
//   out    = rotr32(uint32(((state ^ (state >> 18)) >> 27)), state >> 59)   (computed from the old state)
//   seeding (initstate, initseq): state = 0; inc = (initseq << 1) | 1; step; state += initstate; step.
// Published check: initstate 42, initseq 54 gives 0xa15c02b7 0x7b47f409 0xba1d3330 ... (pcg32-demo).
//
// splitmix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number generators", 2014; Vigna's
// splitmix64.c) turns a user seed into the two PCG inputs, so that nearby seeds (0, 1, 2, ...) start far
// apart and seed 0 is as good as any other:
//   s += 0x9E3779B97F4A7C15; z = s;
//   z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB; return z ^ (z >> 31).
// Rng(seed): s = seed; initstate = splitmix64(s); initseq = splitmix64(s); then the PCG seeding above.
#pragma once

#include <cstdint>

namespace tern {

// One splitmix64 step: advances `state` and returns the next output.
inline uint64_t splitmix64(uint64_t& state) {
  state += 0x9E3779B97F4A7C15ull;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  // The generator tern uses everywhere: the seed is mixed by splitmix64 into PCG's state and stream.
  explicit Rng(uint64_t seed = 0) {
    uint64_t s = seed;
    const uint64_t initstate = splitmix64(s);
    const uint64_t initseq = splitmix64(s);
    seed_pcg(initstate, initseq);
  }

  // PCG32 seeded exactly as the reference pcg32_srandom_r(initstate, initseq); for checking against the
  // published outputs, not for general use.
  static Rng from_pcg(uint64_t initstate, uint64_t initseq) {
    Rng r;
    r.seed_pcg(initstate, initseq);
    return r;
  }

  uint32_t next_u32() {
    const uint64_t old = state_;
    state_ = old * 6364136223846793005ull + inc_;
    const uint32_t xorshifted = static_cast<uint32_t>(((old >> 18) ^ old) >> 27);
    const uint32_t rot = static_cast<uint32_t>(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
  }

  // Two consecutive 32-bit outputs, the first in the high half.
  uint64_t next_u64() {
    const uint64_t hi = next_u32();
    return (hi << 32) | next_u32();
  }

  // A float in [0, 1): the top 24 bits of one 32-bit output times 2^-24. A 24-bit integer is exact in a
  // float and scaling by a power of two is exact, so the result is bit-identical on every IEEE machine.
  // The values are the multiples of 2^-24 from 0 to 1 - 2^-24, each equally likely.
  float uniform() { return static_cast<float>(next_u32() >> 8) * 0x1p-24f; }

  // Same state and stream: the two will produce the same sequence from here on.
  bool operator==(const Rng&) const = default;

 private:
  void seed_pcg(uint64_t initstate, uint64_t initseq) {
    state_ = 0;
    inc_ = (initseq << 1) | 1u;
    next_u32();
    state_ += initstate;
    next_u32();
  }

  uint64_t state_ = 0;
  uint64_t inc_ = 1;
};

}  // namespace tern
