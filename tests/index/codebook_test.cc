#include "index/codec/codebook.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace tqdb::index {
namespace {

constexpr double kPi = 3.14159265358979323846;

double Sigma(int dim) { return 1.0 / std::sqrt(static_cast<double>(dim)); }

// d = 3 makes f uniform on [−1, 1], whose Lloyd-Max quantizer is the uniform
// one. The solver integrates the constant exactly, so only rounding (~1e-16)
// separates it from the closed form; 1e-12 leaves ample margin.
TEST(CodebookTest, UniformForDim3) {
  for (int bits = 1; bits <= 6; ++bits) {
    const Codebook& cb = GetCodebook(3, bits);
    const int levels = 1 << bits;
    ASSERT_EQ(cb.centroids.size(), static_cast<size_t>(levels));
    for (int k = 0; k < levels; ++k) {
      EXPECT_NEAR(cb.centroids[k], -1.0 + (2.0 * k + 1.0) / levels, 1e-12) << bits << " " << k;
    }
    const double step = 2.0 / levels;
    EXPECT_NEAR(cb.coord_distortion, step * step / 12.0, 1e-12 * step * step) << bits;
  }
}

// For d = 2 (arcsine density), the 1-bit centroid is E|x| = 2/π.
TEST(CodebookTest, ArcsineOneBit) {
  const Codebook& cb = GetCodebook(2, 1);
  EXPECT_NEAR(cb.centroids[1], 2.0 / kPi, 1e-12);
  EXPECT_EQ(cb.centroids[0], -cb.centroids[1]);
}

// The 1-bit centroid is E|x| = Γ(d/2) / (sqrt(π) Γ((d+1)/2)) for every d;
// a_2 = 2/π, a_3 = 1/2 and a_{d+2} = a_d · d/(d + 1) give it exactly up to
// rounding (long double keeps the recurrence's own error < 1e-16). The solver
// reaches ~2 ulp here; 1e-14 relative checks the quadrature across all scales.
TEST(CodebookTest, OneBitMatchesClosedForm) {
  long double mean_abs[2] = {2.0L / 3.14159265358979323846264338327950288L, 0.5L};
  for (int dim = 2; dim <= kMaxCodebookDim; ++dim) {
    long double& a = mean_abs[dim % 2];
    if (dim >= 4) a = a * (dim - 2) / (dim - 1);
    if (dim <= 40 || dim == 96 || dim == 128 || dim == 1536 || dim == 6400 || dim == 6401 ||
        dim == 40000 || dim == kMaxCodebookDim) {
      const double expected = static_cast<double>(a);
      EXPECT_NEAR(GetCodebook(dim, 1).centroids[1], expected, 1e-14 * expected) << dim;
    }
  }
}

// As d grows, sqrt(d)·x tends to a standard normal, so d·distortion tends to
// the Gaussian Lloyd-Max distortions (Max 1960). At d = 128 the finite-d
// correction is ~1-2% (the density has lighter tails), hence the 5% bound.
TEST(CodebookTest, ApproachesGaussianForLargeDim) {
  const double gaussian_distortion[] = {0.3634, 0.1175, 0.03454, 0.009497};
  for (int bits = 1; bits <= 4; ++bits) {
    const Codebook& cb = GetCodebook(128, bits);
    const double scaled = 128 * cb.coord_distortion;
    EXPECT_NEAR(scaled, gaussian_distortion[bits - 1], 0.05 * gaussian_distortion[bits - 1])
        << bits;
  }
  // At d = 65536 the O(1/d) correction is ~1e-5; the tabulated Gaussian
  // values carry 4 digits, so 1e-3 is the meaningful tolerance.
  const double scale = std::sqrt(65536.0);
  const Codebook& one = GetCodebook(65536, 1);
  EXPECT_NEAR(scale * one.centroids[1], std::sqrt(2.0 / kPi), 1e-3);
  const Codebook& two = GetCodebook(65536, 2);
  EXPECT_NEAR(scale * two.centroids[2], 0.4528, 1e-3);
  EXPECT_NEAR(scale * two.centroids[3], 1.510, 1e-3);
  EXPECT_NEAR(65536 * two.coord_distortion, 0.1175, 1e-3);
}

// Mean of f_d over [a, b] by composite Simpson in θ = asin x, where
// f dx ∝ cos^(d−2) θ dθ is smooth for every d ≥ 2 (no endpoint singularity).
// Deliberately unlike the module (libm, another variable, another rule), so
// the check is independent of its arithmetic.
double SimpsonMean(int dim, double a, double b) {
  constexpr int kSteps = 4000;  // Even.
  const double lo = std::asin(a);
  const double hi = std::asin(b);
  const double h = (hi - lo) / kSteps;
  double mass = 0.0;
  double first = 0.0;
  for (int i = 0; i <= kSteps; ++i) {
    const double theta = i == kSteps ? hi : lo + h * i;
    const double w = (i == 0 || i == kSteps) ? 1.0 : (i % 2 == 1 ? 4.0 : 2.0);
    const double g = std::pow(std::cos(theta), dim - 2);
    mass += w * g;
    first += w * std::sin(theta) * g;
  }
  return first / mass;
}

TEST(CodebookTest, Structure) {
  for (const int dim : {2, 3, 4, 16, 96, 128, 1536}) {
    double previous_distortion = 1.0;
    for (int bits = 1; bits <= 8; ++bits) {
      const Codebook& cb = GetCodebook(dim, bits);
      const size_t levels = size_t{1} << bits;
      EXPECT_EQ(cb.dim, dim);
      EXPECT_EQ(cb.bits, bits);
      ASSERT_EQ(cb.centroids.size(), levels);
      ASSERT_EQ(cb.boundaries.size(), levels - 1);
      ASSERT_EQ(cb.centroids_f.size(), levels);
      ASSERT_EQ(cb.boundaries_f.size(), levels - 1);
      EXPECT_GT(cb.centroids.front(), -1.0);
      EXPECT_LT(cb.centroids.back(), 1.0);
      for (size_t k = 0; k < levels; ++k) {
        EXPECT_EQ(cb.centroids[k], -cb.centroids[levels - 1 - k]) << dim << " " << bits;
        EXPECT_EQ(cb.centroids_f[k], static_cast<float>(cb.centroids[k]));
        if (k + 1 == levels) continue;
        EXPECT_LT(cb.centroids[k], cb.centroids[k + 1]) << dim << " " << bits << " " << k;
        EXPECT_LT(cb.centroids_f[k], cb.centroids_f[k + 1]) << dim << " " << bits << " " << k;
        EXPECT_EQ(cb.boundaries[k], (cb.centroids[k] + cb.centroids[k + 1]) / 2);
        EXPECT_EQ(cb.boundaries[k], -cb.boundaries[levels - 2 - k]);
        EXPECT_EQ(cb.boundaries_f[k], static_cast<float>(cb.boundaries[k]));
      }
      EXPECT_EQ(cb.boundaries[levels / 2 - 1], 0.0);
      EXPECT_GT(cb.coord_distortion, 0.0);
      EXPECT_LT(cb.coord_distortion, previous_distortion) << dim << " " << bits;
      previous_distortion = cb.coord_distortion;

      // Each centroid is its cell's mean, re-integrated independently.
      // Beyond 12σ the mass is < e^−70, so the last cell is cut there.
      // Simpson's own error is < 3e-10 σ (in the long last cell; ~2e-14 σ in
      // the others, which is the solver's accuracy), so 1e-8 σ is safe.
      const double end = std::min(1.0, 12.0 * Sigma(dim));
      for (size_t k = levels / 2; k < levels; ++k) {
        const double a = k == levels / 2 ? 0.0 : cb.boundaries[k - 1];
        const double b = k + 1 == levels ? end : cb.boundaries[k];
        EXPECT_NEAR(cb.centroids[k], SimpsonMean(dim, a, b), 1e-8 * Sigma(dim))
            << dim << " " << bits << " " << k;
      }
    }
  }
}

TEST(CodebookTest, CachedOnce) {
  const Codebook& first = GetCodebook(200, 5);
  EXPECT_EQ(&first, &GetCodebook(200, 5));
  EXPECT_NE(&first, &GetCodebook(200, 4));
  EXPECT_NE(&first, &GetCodebook(201, 5));

  // Threads racing on a codebook nobody has asked for yet all get one object.
  constexpr int kThreads = 8;
  std::vector<const Codebook*> seen(kThreads, nullptr);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&seen, i] { seen[i] = &GetCodebook(777, 8); });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(seen[i], seen[0]);
  EXPECT_EQ(seen[0], &GetCodebook(777, 8));
  EXPECT_EQ(seen[0]->dim, 777);
}

// Stored codes index these centroids forever: these bit patterns must never
// change. If this test fails, the solver's arithmetic changed and every
// stored index decodes differently; fix the solver, never the constants.
// (Printed with %a from the solver as first committed; identical at -O0/-O3,
// with g++ 12 and clang 14, with and without -march=native.)
TEST(CodebookTest, GoldenValues) {
  const Codebook& d128b4 = GetCodebook(128, 4);
  EXPECT_EQ(d128b4.centroids[8], 0x1.725c369c2df2ep-7);
  EXPECT_EQ(d128b4.centroids[11], 0x1.5343eeb4fefe9p-4);
  EXPECT_EQ(d128b4.centroids[15], 0x1.e6bc4adb304fp-3);
  const Codebook& d128b2 = GetCodebook(128, 2);
  EXPECT_EQ(d128b2.centroids[2], 0x1.479c742fa1a7cp-5);
  EXPECT_EQ(d128b2.centroids[3], 0x1.10781293db00cp-3);
  const Codebook& d96b3 = GetCodebook(96, 3);
  EXPECT_EQ(d96b3.centroids[4], 0x1.985987fd09ec9p-6);
  EXPECT_EQ(d96b3.centroids[5], 0x1.3a8de9c9a917bp-4);
  EXPECT_EQ(d96b3.centroids[6], 0x1.16df8d553f892p-3);
  EXPECT_EQ(d96b3.centroids[7], 0x1.bc1d6424070f1p-3);
  const Codebook& d1536b1 = GetCodebook(1536, 1);
  EXPECT_EQ(d1536b1.centroids[1], 0x1.4d9b6088233a2p-6);
  const Codebook& d2b8 = GetCodebook(2, 8);
  EXPECT_EQ(d2b8.centroids[128], 0x1.1f07240cc556ep-8);
  EXPECT_EQ(d2b8.centroids[200], 0x1.3d3c6c1b06507p-1);
  EXPECT_EQ(d2b8.centroids[255], 0x1.ff86e6bdcf3bdp-1);
}

}  // namespace
}  // namespace tqdb::index
