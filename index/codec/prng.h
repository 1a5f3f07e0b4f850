// The project's own deterministic random numbers.
//
// Rotations, QJL matrices and Hadamard signs are pure functions of
// (dim, seed, format version): stored codes must decode identically forever,
// on any machine and with any standard library. std::normal_distribution (and
// every std:: distribution) is implementation-defined, so tqdb draws its own:
//   - Rng: xoshiro256** seeded through SplitMix64 (public-domain algorithms by
//     Blackman and Vigna), 64-bit integer arithmetic only.
//   - Gaussian(): Marsaglia's polar method. Its logarithm is tqdb's own
//     (DeterministicLog), built from IEEE +, −, ×, ÷ only, so the sample is
//     bit-identical everywhere (the build disables FMA contraction).
// Golden values in tests/index/prng_test.cc pin the streams; changing this file
// in a way that moves them breaks every stored code.
//
// Thread-safety: an Rng is a value type; use one per thread.
#ifndef TQDB_INDEX_CODEC_PRNG_H_
#define TQDB_INDEX_CODEC_PRNG_H_

#include <cstdint>

namespace tqdb::index {

// SplitMix64 finaliser: a bijective 64-bit mix.
uint64_t Mix64(uint64_t x);

// A seed for an independent stream: a pure function of (seed, stream, a, b).
// Used to give every (purpose, dim, …) its own generator.
uint64_t DeriveSeed(uint64_t seed, uint64_t stream, uint64_t a = 0, uint64_t b = 0);

// log(x) for finite x > 0, to within ~2 ulp, from IEEE basic operations only.
// REQUIRES: x > 0 and finite.
double DeterministicLog(double x);

class Rng {
 public:
  explicit Rng(uint64_t seed);

  // The next 64 uniformly random bits.
  uint64_t Next();
  // Uniform in [0, 1), 53 random bits.
  double Uniform();
  // A standard normal sample (polar method; samples come in cached pairs).
  double Gaussian();

 private:
  uint64_t s_[4];
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace tqdb::index

#endif  // TQDB_INDEX_CODEC_PRNG_H_
