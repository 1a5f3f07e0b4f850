#include "index/codec/prng.h"

#include <cassert>
#include <cmath>

namespace tqdb::index {
namespace {

inline uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t DeriveSeed(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b) {
  uint64_t h = Mix64(seed);
  h = Mix64(h ^ stream);
  h = Mix64(h ^ a);
  return Mix64(h ^ b);
}

double DeterministicLog(double x) {
  assert(x > 0 && std::isfinite(x));
  // x = m · 2^e with m in [√½, √2); frexp is exact.
  int e = 0;
  double m = std::frexp(x, &e);  // m in [0.5, 1)
  if (m < 0.70710678118654752440) {
    m *= 2.0;  // exact
    e -= 1;
  }
  // log(m) = 2·atanh(z), z = (m − 1)/(m + 1), |z| ≤ 0.1716, z² ≤ 0.0295: the
  // series Σ z^(2k+1)/(2k+1) reaches 1e-19 relative by k = 12.
  const double z = (m - 1.0) / (m + 1.0);
  const double z2 = z * z;
  double sum = 0.0;
  for (int k = 12; k >= 1; --k) sum = (sum + 1.0 / (2 * k + 1)) * z2;
  const double log_m = 2.0 * (z + z * sum);
  // e·ln2 in two parts: ln2_hi has trailing zero bits, so e·ln2_hi is exact.
  constexpr double kLn2Hi = 6.93147180369123816490e-01;
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  return (e * kLn2Hi) + (log_m + e * kLn2Lo);
}

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& s : s_) {
    x += 0x9e3779b97f4a7c15ULL;
    s = Mix64(x - 0x9e3779b97f4a7c15ULL);
  }
  if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) s_[0] = 1;  // never the all-zero state
}

uint64_t Rng::Next() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

double Rng::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

double Rng::Gaussian() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u, v, s;
  do {
    u = 2.0 * Uniform() - 1.0;
    v = 2.0 * Uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  const double f = std::sqrt(-2.0 * DeterministicLog(s) / s);
  spare_ = v * f;
  has_spare_ = true;
  return u * f;
}

}  // namespace tqdb::index
