// SPDX-License-Identifier: Apache-2.0
// Prng: the one seam for randomness. A small, fast, seedable generator
// (xoshiro256**, seeded through splitmix64) so that tests and simulations
// replay exactly from a seed.
#pragma once

#include <cstdint>

namespace vellum {

// Not thread-safe: give each thread its own (fork()).
class Prng {
 public:
  explicit Prng(uint64_t seed) {
    for (auto& word : state_) word = splitmix(seed);
  }

  uint64_t next() {
    uint64_t result = rotl(state_[1] * 5, 7) * 9;
    uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, bound). REQUIRES: bound > 0.
  uint64_t uniform(uint64_t bound) { return next() % bound; }
  // True with probability percent/100.
  bool chance(uint32_t percent) { return uniform(100) < percent; }
  // A new generator whose sequence is independent of this one's.
  Prng fork() { return Prng(next()); }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t state_[4];
};

}  // namespace vellum
