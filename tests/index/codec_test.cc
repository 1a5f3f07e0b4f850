#include "index/codec/codec.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/testing.h"
#include "gtest/gtest.h"
#include "index/codec/codebook.h"

namespace tqdb::index {
namespace {

std::shared_ptr<const Codec> MakeCodec(const std::string& name, int dim, uint64_t seed = 0,
                                       Isa isa = Isa::kBest) {
  absl::StatusOr<Format> format = ParseFormat(name, dim, seed);
  EXPECT_OK(format);
  absl::StatusOr<std::shared_ptr<const Codec>> codec = Codec::Create(*format, isa);
  EXPECT_OK(codec);
  return *codec;
}

// n vectors with i.i.d. N(0, 1) coordinates, optionally normalised to unit length
// (a normalised Gaussian vector is uniform on the sphere).
std::vector<float> RandomVectors(size_t n, int dim, uint64_t seed, bool unit) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<float> x(n * dim);
  for (size_t v = 0; v < n; ++v) {
    double norm2 = 0;
    std::vector<double> g(dim);
    for (double& c : g) {
      c = normal(rng);
      norm2 += c * c;
    }
    const double s = unit ? 1.0 / std::sqrt(norm2) : 1.0;
    for (int i = 0; i < dim; ++i) x[v * dim + i] = static_cast<float>(g[i] * s);
  }
  return x;
}

struct MeanAndSe {
  double mean, se;
};
MeanAndSe Stats(const std::vector<double>& v) {
  double sum = 0, sum2 = 0;
  for (double e : v) sum += e;
  const double mean = sum / v.size();
  for (double e : v) sum2 += (e - mean) * (e - mean);
  return {mean, std::sqrt(sum2 / (v.size() - 1) / v.size())};
}

// Per-vector squared error ‖x − x̂‖² / ‖x‖².
std::vector<double> RelativeErrors(const Codec& codec, const std::vector<float>& x) {
  const int d = codec.dim();
  const size_t n = x.size() / d;
  std::vector<uint8_t> codes(n * codec.code_bytes());
  EXPECT_OK(codec.Encode(x.data(), n, codes.data()));
  std::vector<float> y(x.size());
  codec.Decode(codes.data(), n, y.data());
  std::vector<double> err(n);
  for (size_t v = 0; v < n; ++v) {
    double e = 0, norm2 = 0;
    for (int i = 0; i < d; ++i) {
      const double xi = x[v * d + i];
      e += (xi - y[v * d + i]) * (xi - y[v * d + i]);
      norm2 += xi * xi;
    }
    err[v] = e / norm2;
  }
  return err;
}

// The expected ‖u − û‖² of a unit vector under `f` when the scale is the norm:
// the sum of the codebook's per-coordinate distortions (each rotated coordinate
// has the exact marginal the codebook was solved for). For QJL formats the
// decoded residual adds γ²·(π·d/(2m) − 1/m) in expectation (E‖Sᵀz‖² =
// m·d + m(m−1)·2/π for z = sign(S·r)), so the total is D_mse·(π·d/(2m) − 1/m).
double PredictedDistortion(const Format& f) {
  const double hi = f.outlier_channels > 0 ? GetCodebook(f.dim, f.bits + 1).coord_distortion : 0;
  const double d_mse = f.outlier_channels * hi +
                       (f.dim - f.outlier_channels) * GetCodebook(f.dim, f.bits).coord_distortion;
  if (f.mode == QuantMode::kMse) return d_mse;
  const double m = f.QjlRows();
  return d_mse * (M_PI * f.dim / (2 * m) - 1 / m);
}

// Algorithm 1: over 20k uniformly random unit vectors, the mean squared error
// matches the codebook's predicted distortion within 3 standard errors.
TEST(CodecTest, MseDistortionMatchesCodebookPrediction) {
  for (int dim : {16, 128}) {
    const std::vector<float> x = RandomVectors(20000, dim, 1000 + dim, /*unit=*/true);
    for (int bits = 1; bits <= 4; ++bits) {
      auto codec = MakeCodec("tq" + std::to_string(bits), dim, 5);
      const MeanAndSe s = Stats(RelativeErrors(*codec, x));
      const double predicted = PredictedDistortion(codec->format());
      EXPECT_NEAR(s.mean, predicted, 3 * s.se) << "d=" << dim << " b=" << bits;
    }
  }
}

// Algorithm 2: ⟨y, x⟩ estimates from QJL codes are unbiased and their variance
// is within the paper's bound √3·π²·‖y‖²/(d·4^b) (Theorem 2). The expectation
// is over the random S, so the 50k pairs are spread over 50 seeds. The MSE
// format at the same bits is visibly biased by −ρ·D, showing the test's power.
TEST(CodecTest, InnerProductQuantizerIsUnbiasedWithinPaperVariance) {
  constexpr int kDim = 128, kSeeds = 50, kPairsPerSeed = 1000;
  constexpr double kRho = 0.8;
  for (int bits : {3, 4}) {
    std::vector<double> err_prod, err_mse;
    for (int seed = 0; seed < kSeeds; ++seed) {
      auto prod = MakeCodec("tq" + std::to_string(bits) + "p", kDim, seed);
      auto mse = MakeCodec("tq" + std::to_string(bits), kDim, seed);
      const std::vector<float> x = RandomVectors(kPairsPerSeed, kDim, 7 * seed + 1, true);
      const std::vector<float> z = RandomVectors(kPairsPerSeed, kDim, 7 * seed + 2, true);
      std::vector<uint8_t> pc(prod->code_bytes()), mc(mse->code_bytes());
      Codec::Query pq, mq;
      for (int p = 0; p < kPairsPerSeed; ++p) {
        const float* xp = &x[p * kDim];
        std::vector<float> y(kDim);
        double norm2 = 0, truth = 0;
        for (int i = 0; i < kDim; ++i) {
          y[i] = static_cast<float>(kRho * xp[i] + std::sqrt(1 - kRho * kRho) * z[p * kDim + i]);
          norm2 += double{y[i]} * y[i];
        }
        for (int i = 0; i < kDim; ++i) {
          y[i] = static_cast<float>(y[i] / std::sqrt(norm2));
          truth += double{y[i]} * xp[i];
        }
        ASSERT_OK(prod->Encode(xp, 1, pc.data()));
        ASSERT_OK(mse->Encode(xp, 1, mc.data()));
        prod->PrepareQuery(y.data(), &pq);
        mse->PrepareQuery(y.data(), &mq);
        err_prod.push_back(prod->EstimateInnerProduct(pq, pc.data()) - truth);
        err_mse.push_back(mse->EstimateInnerProduct(mq, mc.data()) - truth);
      }
    }
    const MeanAndSe prod_stats = Stats(err_prod);
    EXPECT_NEAR(prod_stats.mean, 0.0, 3 * prod_stats.se) << "tq" << bits << "p";
    double sq = 0;
    for (double e : err_prod) sq += e * e;
    const double bound = std::sqrt(3.0) * M_PI * M_PI / (kDim * std::pow(4.0, bits));
    EXPECT_LT(sq / err_prod.size(), bound) << "tq" << bits << "p";
    const MeanAndSe mse_stats = Stats(err_mse);
    EXPECT_LT(mse_stats.mean, -5 * mse_stats.se) << "tq" << bits << " should be biased low";
  }
}

// The inner-product correction makes ⟨x, x⟩'s estimate exact (up to float
// rounding of the stored scale); plain norms underestimate it by ≈ D.
TEST(CodecTest, UnbiasedIpScaleMakesSelfInnerProductExact) {
  constexpr int kDim = 96;
  const std::vector<float> x = RandomVectors(50, kDim, 3, /*unit=*/false);
  for (const auto& [name, tol] : std::map<std::string, double>{
           {"tq4-ipc", 1e-5}, {"tq2-ipc", 1e-5}, {"turbo4-ipc", 1.5e-3}}) {
    auto codec = MakeCodec(name, kDim);
    std::vector<uint8_t> code(codec->code_bytes());
    Codec::Query q;
    for (int v = 0; v < 50; ++v) {
      const float* xv = &x[v * kDim];
      double norm2 = 0;
      for (int i = 0; i < kDim; ++i) norm2 += double{xv[i]} * xv[i];
      ASSERT_OK(codec->Encode(xv, 1, code.data()));
      codec->PrepareQuery(xv, &q);
      EXPECT_NEAR(codec->EstimateInnerProduct(q, code.data()) / norm2, 1.0, tol) << name;
    }
  }
}

// Round trips for every preset and the dimensions users have (powers of two
// and not): the relative error agrees with the prediction within 4 standard
// errors (two-sided where the prediction is exact, an upper bound for
// least-squares / fp16 block scales, which can only do better than ‖x‖).
TEST(CodecTest, RoundTripErrorMatchesPredictionForEveryPreset) {
  for (int dim : {64, 96, 128, 256, 1536}) {
    const std::vector<float> x = RandomVectors(dim >= 1024 ? 48 : 160, dim, dim, false);
    for (const std::string& name : PresetNames()) {
      auto codec = MakeCodec(name, dim, 11);
      const MeanAndSe s = Stats(RelativeErrors(*codec, x));
      const Format& f = codec->format();
      const double predicted = PredictedDistortion(f);
      if (f.scale_rule == ScaleRule::kNorm && f.scale_type == ScalarType::kF32) {
        EXPECT_NEAR(s.mean, predicted, 4 * s.se) << name << " d=" << dim;
      } else {
        EXPECT_LT(s.mean, predicted + 4 * s.se) << name << " d=" << dim;
      }
    }
  }
}

// Every SIMD path writes the scalar reference's bytes, and decodes to within
// 1e-6 relative, on tail dimensions and counts.
TEST(CodecTest, SimdCodesAreBitIdenticalToScalar) {
  const std::vector<std::string> names = {"tq1", "tq2", "tq3", "tq4", "tq5", "tq6", "tq7",
                                          "tq8", "tq2.5", "tq3.5", "tq7.5", "tq3p", "tq4p",
                                          "turbo2", "turbo3", "turbo4", "tq4-ipc", "tq3-ls-b7",
                                          "tq4-haar", "tq2-f16-r3", "tq4p-m37"};
  for (int dim : {2, 3, 8, 17, 31, 32, 33, 100, 128, 1000}) {
    const std::vector<float> x = RandomVectors(33, dim, 500 + dim, false);
    for (const std::string& name : names) {
      absl::StatusOr<Format> f = ParseFormat(name, dim, 3);
      if (!f.ok()) continue;  // e.g. b7 blocks at d = 3
      auto reference = *Codec::Create(*f, Isa::kScalar);
      std::vector<uint8_t> want(33 * reference->code_bytes());
      ASSERT_OK(reference->Encode(x.data(), 33, want.data()));
      std::vector<float> want_x(x.size());
      reference->Decode(want.data(), 33, want_x.data());
      for (Isa isa : SupportedIsas()) {
        auto codec = *Codec::Create(*f, isa);
        std::vector<uint8_t> got(want.size());
        ASSERT_OK(codec->Encode(x.data(), 33, got.data()));
        EXPECT_EQ(got, want) << name << " d=" << dim << " isa=" << IsaName(isa);
        std::vector<float> got_x(x.size());
        codec->Decode(want.data(), 33, got_x.data());
        for (size_t v = 0; v < 33; ++v) {
          double diff = 0, norm = 0;
          for (int i = 0; i < dim; ++i) {
            diff += std::pow(double{got_x[v * dim + i]} - want_x[v * dim + i], 2);
            norm += std::pow(double{want_x[v * dim + i]}, 2);
          }
          EXPECT_LE(std::sqrt(diff), 1e-6 * std::sqrt(norm) + 1e-30)
              << name << " d=" << dim << " isa=" << IsaName(isa);
        }
      }
    }
  }
}

std::string Hex(const std::vector<uint8_t>& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (uint8_t b : bytes) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

// Golden bytes: a fixed (format, seed, input) encodes to fixed bytes. These
// are stored data; a change here breaks every existing database.
TEST(CodecTest, GoldenCodes) {
  constexpr int kDim = 48;
  std::vector<float> x(kDim);
  for (int i = 0; i < kDim; ++i) x[i] = static_cast<float>((i * 37) % 23 - 11);
  const std::map<std::string, std::string> golden = {
#include "tests/index/golden_codes.inc"
  };
  for (const std::string& name : PresetNames()) {
    auto codec = MakeCodec(name, kDim, /*seed=*/7);
    std::vector<uint8_t> code(codec->code_bytes());
    ASSERT_OK(codec->Encode(x.data(), 1, code.data()));
    auto it = golden.find(name);
    if (it == golden.end()) {
      ADD_FAILURE() << "no golden code; the line would be {\"" << name << "\", \"" << Hex(code)
                    << "\"},";
      continue;
    }
    EXPECT_EQ(Hex(code), it->second) << name;
  }
}

TEST(CodecTest, ZeroVectorDecodesToZero) {
  for (const std::string& name : PresetNames()) {
    auto codec = MakeCodec(name, 64);
    std::vector<float> zero(64, 0.0f), out(64, 1.0f);
    std::vector<uint8_t> code(codec->code_bytes());
    ASSERT_OK(codec->Encode(zero.data(), 1, code.data()));
    codec->Decode(code.data(), 1, out.data());
    for (float v : out) EXPECT_EQ(v, 0.0f) << name;
  }
}

TEST(CodecTest, BadInputIsInvalidArgumentAndWritesNothing) {
  Format f;
  f.dim = 0;
  EXPECT_STATUS_CODE(Codec::Create(f), absl::StatusCode::kInvalidArgument);
  f.dim = 64;
  f.bits = 9;
  EXPECT_STATUS_CODE(Codec::Create(f), absl::StatusCode::kInvalidArgument);

  auto codec = MakeCodec("tq4", 64);
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    std::vector<float> x = RandomVectors(3, 64, 1, false);
    x[64 + 17] = bad;
    std::vector<uint8_t> codes(3 * codec->code_bytes(), 0xab);
    EXPECT_STATUS_CODE(codec->Encode(x.data(), 3, codes.data()), absl::StatusCode::kInvalidArgument);
    for (uint8_t b : codes) ASSERT_EQ(b, 0xab);
  }
}

TEST(CodecTest, AnyBytesDecodeWithoutCrashing) {
  std::mt19937 rng(5);
  for (const std::string& name : PresetNames()) {
    auto codec = MakeCodec(name, 100);
    std::vector<uint8_t> code(codec->code_bytes());
    std::vector<float> out(100);
    for (int t = 0; t < 20; ++t) {
      for (uint8_t& b : code) b = static_cast<uint8_t>(rng());
      codec->Decode(code.data(), 1, out.data());
    }
  }
}

}  // namespace
}  // namespace tqdb::index
