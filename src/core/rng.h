// Seeded, reproducible random numbers. Counter-based (SplitMix64 of seed and index), so a value depends
// only on (seed, stream, index): parallel fills give the same result for any thread count.
#pragma once
#include <cmath>
#include <cstdint>

namespace dseek {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline uint64_t hash_index(uint64_t seed, uint64_t stream, uint64_t i) {
  return splitmix64(splitmix64(seed ^ splitmix64(stream)) + i);
}

// Uniform in [0, 1) with 53 bits.
inline double uniform_at(uint64_t seed, uint64_t stream, uint64_t i) {
  return double(hash_index(seed, stream, i) >> 11) * 0x1p-53;
}

// Standard normal (Box-Muller on two counter draws).
inline double normal_at(uint64_t seed, uint64_t stream, uint64_t i) {
  double u1 = uniform_at(seed, stream, 2 * i), u2 = uniform_at(seed, stream, 2 * i + 1);
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// Sequential generator (xoshiro256**) for samplers and data loaders; its state is serialisable.
struct Rng {
  uint64_t s[4];
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed) {
    uint64_t x = seed;
    for (auto& v : s) v = splitmix64(x += 0x9e3779b97f4a7c15ull);
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    const uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
  }
  double uniform() { return double(next() >> 11) * 0x1p-53; }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }  // modulo bias < n / 2^64
  double normal() {
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
};

}  // namespace dseek
