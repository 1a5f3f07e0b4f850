#include "index/codec/rotation.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "index/codec/format.h"
#include "index/codec/isa.h"

namespace tqdb::index {
namespace {

constexpr uint64_t kSeed = 0x5eed;
// Powers of two, non-powers just above (3, 5, 96, 100, 200, 384) and 1536.
constexpr int kHadamardDims[] = {2, 3, 5, 8, 16, 64, 96, 100, 128, 200, 384, 1536};
constexpr int kHaarDims[] = {2, 3, 16, 96, 128};
// Above this the d × d matrix check is O(d³) and too slow; use vectors instead.
constexpr int kMaxDenseDim = 512;

// Orthogonality tolerance, elementwise on QᵀQ − I (computed in double).
// Hadamard: each entry of Q passes through ≤ 4 rounds × 2 blocks × (≤ 9 add
// stages + 1 scale), each rounding by ≤ 2^-24 relative, so |ΔQ| ≲ 80 · 2^-24
// ≈ 5e-6 of |Q| in the worst case; the errors have random signs and (QᵀQ)ij
// sums d of them (max observed 3.3e-7, d = 200, 4 rounds; exactly 0 when
// 1/√n is a power of two). Haar: Q is the float rounding of an orthonormal
// double matrix, so |QᵀQ − I| ≲ 2 · 2^-24 ≈ 1.2e-7. 1e-5 leaves ≥ 30× margin.
constexpr double kOrthoTol = 1e-5;
// Relative (L2) error of Inverse(Forward(x)) and of ‖Forward(x)‖: the same
// rounding through two transforms (max observed 3.5e-7); same margin.
constexpr double kRelTol = 1e-5;

struct Config {
  RotationKind kind;
  int dim;
  int rounds;
};

std::vector<Config> AllConfigs() {
  std::vector<Config> out;
  for (int rounds = 1; rounds <= 4; ++rounds) {
    for (int d : kHadamardDims) out.push_back({RotationKind::kHadamard, d, rounds});
  }
  for (int d : kHaarDims) out.push_back({RotationKind::kHaar, d, 1});
  return out;
}

::testing::Message Describe(const Config& c) {
  return ::testing::Message() << (c.kind == RotationKind::kHaar ? "haar" : "hadamard")
                              << " dim=" << c.dim << " rounds=" << c.rounds;
}

std::vector<float> RandomVector(std::mt19937& rng, int d) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(d);
  for (float& x : v) x = g(rng);
  return v;
}

double Norm(const std::vector<float>& v) {
  double s = 0.0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

double DiffNorm(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    s += d * d;
  }
  return std::sqrt(s);
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) return false;
  }
  return true;
}

// Q column-major: column j = Forward(e_j).
std::vector<float> ForwardMatrix(const Rotation& rot) {
  const int d = rot.dim();
  std::vector<float> q(static_cast<size_t>(d) * d);
  std::vector<float> e(d, 0.0f);
  for (int j = 0; j < d; ++j) {
    e[j] = 1.0f;
    rot.Forward(e.data(), &q[static_cast<size_t>(j) * d]);
    e[j] = 0.0f;
  }
  return q;
}

TEST(RotationTest, GetIsCachedAndReportsItsShape) {
  for (const Config& c : AllConfigs()) {
    SCOPED_TRACE(Describe(c));
    const std::shared_ptr<const Rotation> a = Rotation::Get(c.kind, c.dim, c.rounds, kSeed);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a.get(), Rotation::Get(c.kind, c.dim, c.rounds, kSeed).get());
    EXPECT_EQ(a->dim(), c.dim);
    EXPECT_EQ(a->kind(), c.kind);
  }
}

TEST(RotationTest, Orthogonal) {
  for (const Config& c : AllConfigs()) {
    if (c.dim > kMaxDenseDim) continue;  // see NormPreservedInHighDimension
    SCOPED_TRACE(Describe(c));
    const int d = c.dim;
    const std::vector<float> q = ForwardMatrix(*Rotation::Get(c.kind, d, c.rounds, kSeed));
    double worst = 0.0;
    for (int i = 0; i < d; ++i) {
      const float* qi = &q[static_cast<size_t>(i) * d];
      for (int j = i; j < d; ++j) {
        const float* qj = &q[static_cast<size_t>(j) * d];
        double s = 0.0;
        for (int k = 0; k < d; ++k) s += static_cast<double>(qi[k]) * qj[k];
        worst = std::max(worst, std::abs(s - (i == j ? 1.0 : 0.0)));
      }
    }
    EXPECT_LE(worst, kOrthoTol);
  }
}

TEST(RotationTest, NormPreservedInHighDimension) {
  std::mt19937 rng(11);
  for (int rounds = 1; rounds <= 4; ++rounds) {
    const std::shared_ptr<const Rotation> rot =
        Rotation::Get(RotationKind::kHadamard, 1536, rounds, kSeed);
    for (int trial = 0; trial < 20; ++trial) {
      const std::vector<float> x = RandomVector(rng, 1536);
      std::vector<float> y(1536);
      rot->Forward(x.data(), y.data());
      EXPECT_NEAR(Norm(y), Norm(x), kRelTol * Norm(x)) << "rounds=" << rounds;
    }
  }
}

TEST(RotationTest, InverseUndoesForward) {
  std::mt19937 rng(12);
  for (const Config& c : AllConfigs()) {
    SCOPED_TRACE(Describe(c));
    const std::shared_ptr<const Rotation> rot = Rotation::Get(c.kind, c.dim, c.rounds, kSeed);
    for (int trial = 0; trial < 20; ++trial) {
      const std::vector<float> x = RandomVector(rng, c.dim);
      std::vector<float> y(c.dim), back(c.dim);
      rot->Forward(x.data(), y.data());
      rot->Inverse(y.data(), back.data());
      EXPECT_LE(DiffNorm(back, x), kRelTol * Norm(x));
      // And the other way round: Forward(Inverse(y)) = y.
      rot->Inverse(x.data(), y.data());
      rot->Forward(y.data(), back.data());
      EXPECT_LE(DiffNorm(back, x), kRelTol * Norm(x));
    }
  }
}

TEST(RotationTest, InPlaceMatchesOutOfPlace) {
  std::mt19937 rng(13);
  for (const Config& c : AllConfigs()) {
    SCOPED_TRACE(Describe(c));
    const std::shared_ptr<const Rotation> rot = Rotation::Get(c.kind, c.dim, c.rounds, kSeed);
    const std::vector<float> x = RandomVector(rng, c.dim);
    std::vector<float> y(c.dim), inplace = x;
    rot->Forward(x.data(), y.data());
    rot->Forward(inplace.data(), inplace.data());
    EXPECT_TRUE(SameBits(inplace, y));
    rot->Inverse(x.data(), y.data());
    inplace = x;
    rot->Inverse(inplace.data(), inplace.data());
    EXPECT_TRUE(SameBits(inplace, y));
  }
}

TEST(RotationTest, DeterministicInSeed) {
  std::mt19937 rng(14);
  for (const Config& c : AllConfigs()) {
    SCOPED_TRACE(Describe(c));
    const std::vector<float> x = RandomVector(rng, c.dim);
    std::vector<float> cached(c.dim), fresh(c.dim), other(c.dim);
    Rotation::Get(c.kind, c.dim, c.rounds, kSeed)->Forward(x.data(), cached.data());
    // A freshly built rotation (no cache) is the same map, bit for bit.
    Rotation(c.kind, c.dim, c.rounds, kSeed).Forward(x.data(), fresh.data());
    EXPECT_TRUE(SameBits(cached, fresh));
    const std::shared_ptr<const Rotation> reseeded =
        Rotation::Get(c.kind, c.dim, c.rounds, kSeed + 1);
    EXPECT_NE(reseeded.get(), Rotation::Get(c.kind, c.dim, c.rounds, kSeed).get());
    reseeded->Forward(x.data(), other.data());
    EXPECT_FALSE(SameBits(cached, other));
  }
}

TEST(RotationTest, EveryIsaMatchesScalar) {
  std::mt19937 rng(15);
  for (const Config& c : AllConfigs()) {
    SCOPED_TRACE(Describe(c));
    const std::shared_ptr<const Rotation> rot = Rotation::Get(c.kind, c.dim, c.rounds, kSeed);
    for (int trial = 0; trial < 3; ++trial) {
      const std::vector<float> x = RandomVector(rng, c.dim);
      std::vector<float> fwd(c.dim), inv(c.dim);
      rot->Forward(x.data(), fwd.data(), Isa::kScalar);
      rot->Inverse(x.data(), inv.data(), Isa::kScalar);
      for (Isa isa : SupportedIsas()) {
        std::vector<float> got(c.dim);
        rot->Forward(x.data(), got.data(), isa);
        EXPECT_TRUE(SameBits(got, fwd)) << "Forward " << IsaName(isa);
        rot->Inverse(x.data(), got.data(), isa);
        EXPECT_TRUE(SameBits(got, inv)) << "Inverse " << IsaName(isa);
      }
    }
  }
}

// For d not a power of two the two overlapping blocks must mix everything:
// every output coordinate depends on every input, i.e. Q has no entry that is
// zero for every seed. A single seed is not enough: entries are signed sums of
// equal-magnitude terms (products of ±1 signs and 1/√n) and cancel to exactly
// 0 by chance (seed 0x5eed, 2 rounds: 566 of 96² and 332 of 100² entries are
// exactly 0; ≤ 9% of entries for any seed tried). A structural zero is 0 for
// every seed, a chance one for all 8 independent seeds with p ≲ 0.09^8 ≈ 5e-9.
constexpr uint64_t kMixingSeeds = 8;

// is_zero[i·d + j]: Q[i][j] == 0 for every seed in [0, kMixingSeeds).
std::vector<bool> ZeroForEverySeed(int d, int rounds) {
  std::vector<bool> is_zero(static_cast<size_t>(d) * d, true);
  for (uint64_t seed = 0; seed < kMixingSeeds; ++seed) {
    const std::vector<float> q =
        ForwardMatrix(*Rotation::Get(RotationKind::kHadamard, d, rounds, seed));
    for (int j = 0; j < d; ++j) {
      for (int i = 0; i < d; ++i) {
        if (q[static_cast<size_t>(j) * d + i] != 0.0f) {
          is_zero[static_cast<size_t>(i) * d + j] = false;
        }
      }
    }
  }
  return is_zero;
}

TEST(RotationTest, NonPowerOfTwoMixesEveryCoordinate) {
  for (int d : {96, 100, 200}) {
    const std::vector<bool> is_zero = ZeroForEverySeed(d, /*rounds=*/2);
    EXPECT_EQ(std::count(is_zero.begin(), is_zero.end(), true), 0) << "d=" << d;
  }
}

// The check above has teeth: one round leaves outputs [0, d − n) (head block
// only) independent of inputs [n, d) (tail block only), exactly that block.
TEST(RotationTest, OneRoundLeavesTheDocumentedBlockUnmixed) {
  for (int d : {96, 100, 200}) {
    const int n = d >= 128 ? 128 : 64;  // 2^floor(log2 d)
    const std::vector<bool> is_zero = ZeroForEverySeed(d, /*rounds=*/1);
    for (int i = 0; i < d; ++i) {
      for (int j = 0; j < d; ++j) {
        const bool unmixed = i < d - n && j >= n;
        ASSERT_EQ(is_zero[static_cast<size_t>(i) * d + j], unmixed)
            << "d=" << d << " Q[" << i << "][" << j << "]";
      }
    }
  }
}

}  // namespace
}  // namespace tqdb::index
