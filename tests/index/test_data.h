// Test data for the index tests: reproducible Gaussian vectors.
#ifndef TQDB_TESTS_INDEX_TEST_DATA_H_
#define TQDB_TESTS_INDEX_TEST_DATA_H_

#include <cstdint>
#include <random>
#include <vector>

namespace tqdb::index::testing {

// n floats drawn i.i.d. from N(0, sigma²) with a fixed seed.
inline std::vector<float> Gaussian(size_t n, uint64_t seed, float sigma = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

}  // namespace tqdb::index::testing

#endif  // TQDB_TESTS_INDEX_TEST_DATA_H_
