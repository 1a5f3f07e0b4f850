// The attention kernels (index/scan/internal/attend_kernels.h): every SIMD
// twin against the scalar one at every ISA this CPU has, on integer-valued
// inputs so float sums are exact and equality is exact; the scalar kernels
// against independent references (natural coordinate order, std::exp).
#include "index/scan/internal/attend_kernels.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "index/codec/isa.h"
#include "index/scan/internal/fastscan_kernels.h"

namespace tqdb::index {
namespace {

using internal::AttendKernels;
using internal::kBlockVectors;
using internal::kPairCodeBytes;

constexpr int kTokenCounts[] = {1, 31, 32, 33, 1000};

// Small integers as floats: products and sums of a few thousand stay exact.
std::vector<float> Integers(size_t n, int lo, int hi, std::mt19937* rng) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<float> x(n);
  for (float& v : x) v = static_cast<float>(dist(*rng));
  return x;
}

std::vector<uint8_t> Bytes(size_t n, std::mt19937* rng) {
  std::vector<uint8_t> b(n);
  for (uint8_t& v : b) v = static_cast<uint8_t>((*rng)());
  return b;
}

const AttendKernels& Scalar() { return *internal::GetAttendKernels(Isa::kScalar); }

TEST(AttendKernelsTest, EveryIsaHasKernels) {
  for (Isa isa : SupportedIsas()) ASSERT_NE(internal::GetAttendKernels(isa), nullptr) << IsaName(isa);
}

TEST(AttendKernelsTest, BlockLogitsScalarSumsTheTables) {
  std::mt19937 rng(1);
  constexpr int kPairs = 5, kQueries = 2;
  const std::vector<uint8_t> codes = Bytes(kPairs * kPairCodeBytes, &rng);
  const std::vector<float> tables = Integers(kQueries * 2 * kPairs * 16, -50, 50, &rng);
  const std::vector<float> w = Integers(kBlockVectors, -3, 3, &rng);
  std::vector<float> out(kQueries * kBlockVectors, 1.0f);
  Scalar().block_logits(codes.data(), tables.data(), 2 * kPairs * 16, kQueries, kPairs, w.data(),
                        out.data(), kBlockVectors);
  for (int q = 0; q < kQueries; ++q) {
    for (int v = 0; v < kBlockVectors; ++v) {
      float sum = 0;
      for (int g = 0; g < 2 * kPairs; ++g) {
        const uint8_t byte = codes[(g / 2) * kPairCodeBytes + v];
        const int nibble = g % 2 ? byte >> 4 : byte & 15;
        sum += tables[q * 2 * kPairs * 16 + g * 16 + nibble];
      }
      EXPECT_EQ(out[q * kBlockVectors + v], 1.0f + w[v] * sum) << q << " " << v;
    }
  }
}

TEST(AttendKernelsTest, BlockLogitsEveryIsaEqualsScalar) {
  std::mt19937 rng(2);
  for (int n_pairs : {0, 1, 2, 3, 31, 32, 33, 64, 128}) {
    for (int nq : {1, 2, 3, 4, 5, 8, 11}) {
      const size_t table_stride = 2 * n_pairs * 16 + 48;  // not a multiple of the run
      const std::vector<uint8_t> codes = Bytes(n_pairs * kPairCodeBytes, &rng);
      const std::vector<float> tables = Integers(nq * table_stride, -100, 100, &rng);
      const std::vector<float> w = Integers(kBlockVectors, -4, 4, &rng);
      const size_t out_stride = 40;
      const std::vector<float> init = Integers(nq * out_stride, -1000, 1000, &rng);
      std::vector<float> want = init;
      Scalar().block_logits(codes.data(), tables.data(), table_stride, nq, n_pairs, w.data(),
                            want.data(), out_stride);
      for (Isa isa : SupportedIsas()) {
        std::vector<float> got = init;
        internal::GetAttendKernels(isa)->block_logits(codes.data(), tables.data(), table_stride,
                                                      nq, n_pairs, w.data(), got.data(),
                                                      out_stride);
        EXPECT_EQ(got, want) << IsaName(isa) << " n_pairs=" << n_pairs << " nq=" << nq;
      }
    }
  }
}

TEST(AttendKernelsTest, BlockLogitsDotScalarDecodesTheNibbles) {
  std::mt19937 rng(3);
  constexpr int kPairs = 5, kQueries = 2;
  const std::vector<uint8_t> codes = Bytes(kPairs * kPairCodeBytes, &rng);
  const std::vector<float> centroids = Integers(16, -8, 8, &rng);
  const std::vector<float> values = Integers(kQueries * 2 * kPairs, -50, 50, &rng);
  const std::vector<float> w = Integers(kBlockVectors, -3, 3, &rng);
  std::vector<float> out(kQueries * kBlockVectors, 1.0f);
  Scalar().block_logits_dot(codes.data(), centroids.data(), values.data(), 2 * kPairs, kQueries,
                            kPairs, w.data(), out.data(), kBlockVectors);
  for (int q = 0; q < kQueries; ++q) {
    for (int v = 0; v < kBlockVectors; ++v) {
      float sum = 0;  // integers: exact in any order
      for (int g = 0; g < 2 * kPairs; ++g) {
        const uint8_t byte = codes[(g / 2) * kPairCodeBytes + v];
        sum += values[q * 2 * kPairs + g] * centroids[g % 2 ? byte >> 4 : byte & 15];
      }
      EXPECT_EQ(out[q * kBlockVectors + v], 1.0f + w[v] * sum) << q << " " << v;
    }
  }
}

// One fused multiply-add a term in the same order: equal for any floats.
TEST(AttendKernelsTest, BlockLogitsDotEveryIsaEqualsScalar) {
  std::mt19937 rng(4);
  std::normal_distribution<float> gauss;
  auto normal = [&](size_t n) {
    std::vector<float> x(n);
    for (float& v : x) v = gauss(rng);
    return x;
  };
  for (int n_pairs : {0, 1, 2, 3, 31, 32, 33, 64, 128}) {
    for (int nq : {1, 2, 3, 4, 5, 8, 11}) {
      const size_t value_stride = 2 * n_pairs + 6;  // not the run's length
      const std::vector<uint8_t> codes = Bytes(n_pairs * kPairCodeBytes, &rng);
      const std::vector<float> centroids = normal(16), values = normal(nq * value_stride),
                               w = normal(kBlockVectors);
      const size_t out_stride = 40;
      const std::vector<float> init = normal(nq * out_stride);
      std::vector<float> want = init;
      Scalar().block_logits_dot(codes.data(), centroids.data(), values.data(), value_stride, nq,
                                n_pairs, w.data(), want.data(), out_stride);
      for (Isa isa : SupportedIsas()) {
        std::vector<float> got = init;
        internal::GetAttendKernels(isa)->block_logits_dot(codes.data(), centroids.data(),
                                                          values.data(), value_stride, nq,
                                                          n_pairs, w.data(), got.data(),
                                                          out_stride);
        EXPECT_EQ(got, want) << IsaName(isa) << " n_pairs=" << n_pairs << " nq=" << nq;
      }
    }
  }
}

TEST(AttendKernelsTest, KernelPositionIsAPermutationOfEachChunk) {
  for (int bits : {1, 2, 4}) {
    for (int d : {1, 33, 64, 96, 128, 200}) {
      const int floats = internal::KernelOrderFloats(d, bits);
      ASSERT_GE(floats, d);
      ASSERT_EQ(floats % (internal::kValueChunkBytes * 8 / bits), 0);
      std::vector<int> seen(floats, 0);
      for (int j = 0; j < floats; ++j) {
        const int pos = internal::KernelPosition(j, bits);
        ASSERT_GE(pos, 0);
        ASSERT_LT(pos, floats);
        ++seen[pos];
      }
      for (int s : seen) ASSERT_EQ(s, 1) << "bits=" << bits << " d=" << d;
    }
  }
}

// The scalar kernel in natural coordinate order: field j of the little-endian
// b-bit stream, through KernelPosition.
TEST(AttendKernelsTest, ValuesPackedScalarMatchesNaturalOrder) {
  std::mt19937 rng(3);
  for (int bits : {1, 2, 4}) {
    const int d = 100, index_bytes = (d * bits + 7) / 8, n = 7, nq = 3;
    const size_t code_stride = index_bytes + 3;
    const std::vector<uint8_t> codes = Bytes(n * code_stride, &rng);
    std::vector<float> table(16);
    const std::vector<float> centroids = Integers(16, -8, 8, &rng);
    for (int i = 0; i < 16; ++i) table[i] = centroids[i & ((1 << bits) - 1)];
    const std::vector<float> w = Integers(nq * n, -3, 3, &rng);
    const size_t acc_stride = internal::KernelOrderFloats(d, bits);
    std::vector<float> acc(nq * acc_stride, 0.0f);
    Scalar().values_packed(codes.data(), code_stride, n, w.data(), n, nq, table.data(), bits,
                           index_bytes, acc.data(), acc_stride);
    for (int q = 0; q < nq; ++q) {
      for (int j = 0; j < d; ++j) {
        float want = 0;
        for (int t = 0; t < n; ++t) {
          const int bit = j * bits;
          const int field = (codes[t * code_stride + bit / 8] >> (bit % 8)) & ((1 << bits) - 1);
          want += w[q * n + t] * centroids[field];
        }
        EXPECT_EQ(acc[q * acc_stride + internal::KernelPosition(j, bits)], want)
            << "bits=" << bits << " q=" << q << " j=" << j;
      }
    }
  }
}

TEST(AttendKernelsTest, ValuesPackedEveryIsaEqualsScalar) {
  std::mt19937 rng(4);
  for (int bits : {1, 2, 4}) {
    for (int index_bytes : {1, 5, 8, 16, 17, 24, 64, 67}) {
      for (int n : kTokenCounts) {
        for (int nq : {1, 2, 3, 4, 5, 8, 9}) {
          const size_t code_stride = index_bytes + 4;  // tokens as in CodeBlocks: scales between
          const std::vector<uint8_t> codes = Bytes(n * code_stride, &rng);
          std::vector<float> table(16);
          const std::vector<float> centroids = Integers(16, -8, 8, &rng);
          for (int i = 0; i < 16; ++i) table[i] = centroids[i & ((1 << bits) - 1)];
          const size_t w_stride = n + 3;
          const std::vector<float> w = Integers(nq * w_stride, -3, 3, &rng);
          const size_t acc_stride = internal::KernelOrderFloats(8 * index_bytes / bits, bits) + 16;
          const std::vector<float> init = Integers(nq * acc_stride, -100, 100, &rng);
          std::vector<float> want = init;
          Scalar().values_packed(codes.data(), code_stride, n, w.data(), w_stride, nq,
                                 table.data(), bits, index_bytes, want.data(), acc_stride);
          for (Isa isa : SupportedIsas()) {
            std::vector<float> got = init;
            // An exact-size copy of the codes: reading past the last token's
            // index bytes would be out of bounds (ASan checks it).
            std::vector<uint8_t> exact(codes.begin(),
                                       codes.begin() + (n - 1) * code_stride + index_bytes);
            internal::GetAttendKernels(isa)->values_packed(exact.data(), code_stride, n, w.data(),
                                                           w_stride, nq, table.data(), bits,
                                                           index_bytes, got.data(), acc_stride);
            ASSERT_EQ(got, want) << IsaName(isa) << " bits=" << bits << " bytes=" << index_bytes
                                 << " n=" << n << " nq=" << nq;
          }
        }
      }
    }
  }
}

TEST(AttendKernelsTest, ValuesRowsEveryIsaEqualsScalar) {
  std::mt19937 rng(5);
  for (int d : {1, 15, 16, 17, 33, 64, 65, 128}) {
    for (int n : kTokenCounts) {
      for (int nq : {1, 2, 3, 4, 5}) {
        const std::vector<float> rows = Integers(static_cast<size_t>(n) * d, -8, 8, &rng);
        const size_t w_stride = n + 1;
        const std::vector<float> w = Integers(nq * w_stride, -3, 3, &rng);
        const size_t acc_stride = d + 5;
        const std::vector<float> init = Integers(nq * acc_stride, -100, 100, &rng);
        std::vector<float> want = init;
        Scalar().values_rows(rows.data(), n, d, w.data(), w_stride, nq, want.data(), acc_stride);
        for (int q = 0; q < nq; ++q) {  // the scalar kernel, by hand
          for (int j = 0; j < d; j += 7) {
            float sum = init[q * acc_stride + j];
            for (int t = 0; t < n; ++t) sum += w[q * w_stride + t] * rows[t * d + j];
            ASSERT_EQ(want[q * acc_stride + j], sum);
          }
          for (size_t j = d; j < acc_stride; ++j) ASSERT_EQ(want[q * acc_stride + j], init[q * acc_stride + j]);
        }
        for (Isa isa : SupportedIsas()) {
          std::vector<float> got = init;
          internal::GetAttendKernels(isa)->values_rows(rows.data(), n, d, w.data(), w_stride, nq,
                                                       got.data(), acc_stride);
          ASSERT_EQ(got, want) << IsaName(isa) << " d=" << d << " n=" << n << " nq=" << nq;
        }
      }
    }
  }
}

// ExpWeights against std::exp in double, within the header's 4e-7 relative,
// for every ISA: x − max over [−90, 0] (0 below −87, −∞ included).
TEST(AttendKernelsTest, ExpWeightsWithinBoundAtEveryIsa) {
  std::mt19937 rng(6);
  std::uniform_real_distribution<float> u(-90.0f, 0.0f);
  for (int n : kTokenCounts) {
    for (float max : {0.0f, 3.25f, -20.5f}) {
      std::vector<float> x(n), scale(n);
      for (int i = 0; i < n; ++i) {
        x[i] = max + (i % 3 == 0 ? -static_cast<float>(i % 7) / 8 : u(rng));
        scale[i] = 0.5f + (i % 5);
      }
      if (n > 2) x[1] = -std::numeric_limits<float>::infinity();
      x[n - 1] = max;  // e^0 = 1 exactly
      for (Isa isa : SupportedIsas()) {
        const AttendKernels& k = *internal::GetAttendKernels(isa);
        for (bool scaled : {false, true}) {
          std::vector<float> p(n, -1.0f);
          const float sum = k.exp_weights(x.data(), n, max, scaled ? scale.data() : nullptr, p.data());
          double want_sum = 0;
          for (int i = 0; i < n; ++i) {
            const float arg = x[i] - max;
            const double e = arg < -87.0f ? 0.0 : std::exp(double{arg});
            want_sum += e;
            const double want = scaled ? e * scale[i] : e;
            // The bound, plus one rounding of the product with the scale.
            ASSERT_LE(std::fabs(p[i] - want), (4e-7 + (scaled ? 6e-8 : 0)) * want)
                << IsaName(isa) << " x-max=" << arg << " n=" << n;
          }
          EXPECT_EQ(p[n - 1], scaled ? scale[n - 1] : 1.0f) << IsaName(isa);
          // The float sum of n terms ≤ 1: each within 4e-7, plus n roundings.
          EXPECT_NEAR(sum, want_sum, (4e-7 + n * 6e-8) * want_sum) << IsaName(isa) << " n=" << n;
        }
      }
    }
  }
  for (float x = -87.0f; x <= 0.0f; x += 0.01f) {
    ASSERT_LE(std::fabs(internal::ExpScalar(x) - std::exp(double{x})), 4e-7 * std::exp(double{x}))
        << x;
  }
  EXPECT_EQ(internal::ExpScalar(-87.5f), 0.0f);
  EXPECT_EQ(internal::ExpScalar(-std::numeric_limits<float>::infinity()), 0.0f);
}

TEST(AttendKernelsTest, MaxEveryIsaEqualsScalar) {
  std::mt19937 rng(7);
  for (int n : kTokenCounts) {
    std::vector<float> x = Integers(n, -1000, 1000, &rng);
    x[0] = -std::numeric_limits<float>::infinity();
    float want = -std::numeric_limits<float>::infinity();
    for (float v : x) want = std::max(want, v);
    for (int where : {0, n / 2, n - 1}) {  // the max in the first, middle, last lane
      std::vector<float> y = x;
      y[where] = 5000.0f + where;
      for (Isa isa : SupportedIsas()) {
        EXPECT_EQ(internal::GetAttendKernels(isa)->max(y.data(), n), 5000.0f + where)
            << IsaName(isa) << " n=" << n;
      }
    }
    for (Isa isa : SupportedIsas()) {
      EXPECT_EQ(internal::GetAttendKernels(isa)->max(x.data(), n), n == 1 ? x[0] : want);
    }
  }
  EXPECT_EQ(Scalar().max(nullptr, 0), -std::numeric_limits<float>::infinity());
}

}  // namespace
}  // namespace tqdb::index
