#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/testing.h"
#include "gtest/gtest.h"
#include "index/scan/code_blocks.h"
#include "index/scan/internal/fastscan_kernels.h"
#include "index/scan/scorer.h"
#include "tests/index/test_data.h"

namespace tqdb::index {
namespace {

using internal::kBlockVectors;
using internal::kPairCodeBytes;

using testing::Gaussian;

// Integer sums are exact, so every ISA must give the scalar result exactly,
// including the worst case of 128 pairs of 255s (65280, just below 2^16), for
// one query and for several sharing the codes (chunks of 8 and a remainder),
// and fused with the dequantizing step.
TEST(FastScanKernelTest, EveryIsaEqualsScalar) {
  std::mt19937 rng(1);
  for (int n_pairs : {0, 1, 2, 3, 31, 32, 33, 64, 127, 128}) {
    for (bool saturate : {false, true}) {
      constexpr int kMaxQueries = 11;
      std::vector<uint8_t> codes(n_pairs * kPairCodeBytes + 64);
      for (uint8_t& c : codes) c = static_cast<uint8_t>(rng());
      std::vector<std::vector<uint8_t>> luts(kMaxQueries,
                                             std::vector<uint8_t>(internal::LutBytes(n_pairs) + 64));
      for (auto& lut : luts) {
        for (int p = 0; p < n_pairs; ++p) {  // each table stored twice, as PrepareQuery does
          for (bool hi : {false, true}) {
            uint8_t* t = &lut[internal::LutOffset(p, hi)];
            for (int n = 0; n < 16; ++n) t[n] = t[16 + n] = saturate ? 255 : static_cast<uint8_t>(rng());
          }
        }
      }
      std::vector<const uint8_t*> ptrs;
      for (const auto& lut : luts) ptrs.push_back(lut.data());
      std::vector<uint16_t> want(kMaxQueries * kBlockVectors);
      for (int q = 0; q < kMaxQueries; ++q) {
        internal::AccumulateScalar(codes.data(), ptrs[q], n_pairs, &want[q * kBlockVectors]);
      }
      if (saturate) {
        for (uint16_t sum : want) ASSERT_EQ(sum, 2 * 255 * n_pairs);
      }
      std::normal_distribution<float> gauss;
      std::vector<float> w(kBlockVectors), start(kBlockVectors);
      for (int v = 0; v < kBlockVectors; ++v) {
        w[v] = gauss(rng);
        start[v] = gauss(rng);
      }
      const float delta = std::fabs(gauss(rng)) * 1e-3f, bias = gauss(rng);
      for (Isa isa : SupportedIsas()) {
        const internal::FastScanKernels* k = internal::GetFastScanKernels(isa);
        std::vector<uint16_t> got(kBlockVectors);
        k->accumulate(codes.data(), ptrs[0], n_pairs, got.data());
        EXPECT_EQ(0, std::memcmp(got.data(), want.data(), kBlockVectors * 2))
            << IsaName(isa) << " n_pairs=" << n_pairs << " saturate=" << saturate;
        // Fused with the dequantizing step: the same floats as the scalar
        // sums dequantized by the scalar step.
        std::vector<float> fused = start, unfused = start;
        k->accumulate_scaled(codes.data(), ptrs[0], n_pairs, w.data(), delta, bias, fused.data());
        internal::AddScaledScalar(want.data(), w.data(), delta, bias, unfused.data());
        EXPECT_EQ(fused, unfused) << IsaName(isa) << " n_pairs=" << n_pairs;
        for (int nq : {1, 2, 5, 8, 11}) {
          std::vector<uint16_t> multi(nq * kBlockVectors);
          k->accumulate_multi(codes.data(), ptrs.data(), nq, n_pairs, multi.data());
          EXPECT_EQ(0, std::memcmp(multi.data(), want.data(), multi.size() * 2))
              << IsaName(isa) << " nq=" << nq << " n_pairs=" << n_pairs;
        }
      }
    }
  }
}

// Int8 dot sums are exact integers: with w = delta = 1 and bias = 0 every ISA
// adds exactly the sums a direct count gives, for odd and even pair counts,
// chunks of queries and the extremes (levels of 255 against −128 and 127 over
// 128 pairs: |sum| = 8,355,840, inside int32 and exact as a float); with real
// scales every ISA equals the scalar twin bit for bit.
TEST(FastScanKernelTest, DotEveryIsaEqualsScalar) {
  std::mt19937 rng(3);
  std::normal_distribution<float> gauss;
  constexpr int kMaxQueries = 11;
  constexpr size_t kStride = 40;  // rows of the score matrix, wider than a block
  for (int n_pairs : {0, 1, 2, 3, 31, 32, 33, 64, 127, 128}) {
    for (int extreme : {0, -128, 127}) {
      std::vector<uint8_t> codes(n_pairs * kPairCodeBytes);
      for (uint8_t& c : codes) c = static_cast<uint8_t>(rng());
      uint8_t levels[16];
      for (uint8_t& l : levels) l = extreme ? 255 : static_cast<uint8_t>(rng());
      // 2·n_pairs values, zero-padded to exactly DotValueBytes, so a read past
      // them shows under ASan.
      std::vector<std::vector<int8_t>> values(kMaxQueries);
      std::vector<const int8_t*> ptrs;
      for (auto& v : values) {
        v.assign(internal::DotValueBytes(n_pairs), 0);
        for (int i = 0; i < 2 * n_pairs; ++i) {
          v[i] = static_cast<int8_t>(extreme ? extreme : static_cast<int>(rng()));
        }
        ptrs.push_back(v.data());
      }
      std::vector<float> exact(kMaxQueries * kStride, 0.0f);
      for (int q = 0; q < kMaxQueries; ++q) {
        for (int v = 0; v < kBlockVectors; ++v) {
          int64_t sum = 0;
          for (int p = 0; p < n_pairs; ++p) {
            const uint8_t byte = codes[p * kPairCodeBytes + v];
            sum += levels[byte & 15] * values[q][2 * p] + levels[byte >> 4] * values[q][2 * p + 1];
          }
          if (extreme) {
            ASSERT_EQ(sum, 2 * 255 * extreme * n_pairs);
          }
          exact[q * kStride + v] = static_cast<float>(sum);
        }
      }
      const std::vector<float> ones(kBlockVectors, 1.0f), unit(kMaxQueries, 1.0f),
          zeros(kMaxQueries, 0.0f);
      std::vector<float> w(kBlockVectors), delta(kMaxQueries), bias(kMaxQueries),
          start(kMaxQueries * kStride);
      for (float& x : w) x = gauss(rng);
      for (float& x : delta) x = std::fabs(gauss(rng)) * 1e-4f;
      for (float& x : bias) x = gauss(rng);
      for (float& x : start) x = gauss(rng);
      std::vector<float> want = start;
      internal::DotScalar(codes.data(), levels, ptrs.data(), kMaxQueries, n_pairs, w.data(),
                          delta.data(), bias.data(), want.data(), kStride);
      for (Isa isa : SupportedIsas()) {
        const internal::FastScanKernels* k = internal::GetFastScanKernels(isa);
        for (int nq : {1, 2, 3, 5, 8, 11}) {
          SCOPED_TRACE(::testing::Message() << IsaName(isa) << " nq=" << nq
                                            << " n_pairs=" << n_pairs << " extreme=" << extreme);
          const size_t n = nq * kStride;
          std::vector<float> sums(n, 0.0f);
          k->dot(codes.data(), levels, ptrs.data(), nq, n_pairs, ones.data(), unit.data(),
                 zeros.data(), sums.data(), kStride);
          EXPECT_TRUE(std::equal(sums.begin(), sums.end(), exact.begin()));
          std::vector<float> got(start.begin(), start.begin() + n);
          k->dot(codes.data(), levels, ptrs.data(), nq, n_pairs, w.data(), delta.data(),
                 bias.data(), got.data(), kStride);
          EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin()));
        }
      }
    }
  }
}

// Pair-table sums (wide layouts): every ISA adds the same floats in the same
// order, so results are bit-identical; integer-valued tables make the sums
// exact, checked against a direct count.
TEST(FastScanKernelTest, PairTableSumsEveryIsaEqualsScalar) {
  std::mt19937 rng(2);
  for (int n_pairs : {0, 1, 2, 31, 32, 33, 128}) {
    std::vector<uint8_t> codes(n_pairs * kPairCodeBytes + 64);
    for (uint8_t& c : codes) c = static_cast<uint8_t>(rng());
    for (bool integer : {true, false}) {
      std::vector<float> tables(n_pairs * internal::kPairTableSize + 64);
      std::normal_distribution<float> gauss;
      for (float& t : tables) t = integer ? static_cast<float>(rng() % 2001) - 1000.0f : gauss(rng);
      std::vector<float> want(kBlockVectors);
      internal::PairTableSumsScalar(codes.data(), tables.data(), n_pairs, want.data());
      if (integer) {
        for (int v = 0; v < kBlockVectors; ++v) {
          int64_t exact = 0;
          for (int p = 0; p < n_pairs; ++p) {
            exact += static_cast<int64_t>(
                tables[p * internal::kPairTableSize + codes[p * kPairCodeBytes + v]]);
          }
          ASSERT_EQ(want[v], static_cast<float>(exact)) << "n_pairs=" << n_pairs << " v=" << v;
        }
      }
      for (Isa isa : SupportedIsas()) {
        std::vector<float> got(kBlockVectors);
        internal::GetFastScanKernels(isa)->pair_table_sums(codes.data(), tables.data(), n_pairs,
                                                           got.data());
        EXPECT_EQ(got, want) << IsaName(isa) << " n_pairs=" << n_pairs << " integer=" << integer;
      }
    }
  }
}

// The dequantizing step every ISA must do in the same float operations.
TEST(FastScanKernelTest, AddScaledEveryIsaEqualsScalar) {
  std::mt19937 rng(3);
  std::normal_distribution<float> gauss;
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<uint16_t> acc(kBlockVectors);
    std::vector<float> w(kBlockVectors), start(kBlockVectors);
    for (int v = 0; v < kBlockVectors; ++v) {
      acc[v] = static_cast<uint16_t>(rng());
      w[v] = gauss(rng);
      start[v] = gauss(rng);
    }
    const float delta = std::fabs(gauss(rng)) * 1e-3f, bias = gauss(rng);
    std::vector<float> want = start;
    internal::AddScaledScalar(acc.data(), w.data(), delta, bias, want.data());
    for (Isa isa : SupportedIsas()) {
      std::vector<float> got = start;
      internal::GetFastScanKernels(isa)->add_scaled(acc.data(), w.data(), delta, bias, got.data());
      EXPECT_EQ(got, want) << IsaName(isa) << " trial " << trial;
    }
  }
}

TEST(ScanLayoutTest, ShapesOfPresets) {
  struct Case {
    const char* name;
    int dim, pairs, runs;
    bool wide = false;  // has 5–8-bit coordinates: not fast-scannable
  };
  const Case cases[] = {
      {"tq4", 128, 64, 1},   {"tq2", 128, 32, 1},  {"tq1", 128, 16, 1},
      {"tq3", 128, 64, 1},   {"tq3.5", 128, 64, 1}, {"tq2.5", 128, 48, 1},  // 64 + 32 nibbles
      {"turbo3", 128, 64, 4}, {"turbo4", 128, 64, 2},
      {"tq4p", 128, 64 + 16, 2},  // 3-bit MSE (one coordinate a nibble) + 128 signs / 4
      {"tq4", 384, 192, 2},  // split at kMaxPairsPerRun = 128
      {"tq2", 33, 9, 1},     // 17 nibbles, padded to 18
      // Wide coordinates take a whole pair each:
      {"tq8", 33, 33, 1, true},    {"tq5", 128, 128, 1, true},
      {"tq4.5", 128, 64 + 32, 1, true},   // 64 wide outliers + 64 coordinates a nibble
      {"tq6p", 128, 128 + 16, 2, true},   // 5-bit MSE + 128 signs / 8
      {"tq4.5-b3-ls", 8, 3 + 2 + 1, 3, true},  // blocks of 3: [3 wide] [1 wide, 2] [2]
  };
  for (const Case& c : cases) {
    auto layout = ScanLayout::Create(*ParseFormat(c.name, c.dim));
    ASSERT_OK(layout);
    EXPECT_EQ(layout->n_pairs(), c.pairs) << c.name;
    EXPECT_EQ(static_cast<int>(layout->runs().size()), c.runs) << c.name;
    EXPECT_EQ(layout->fast_scan(), !c.wide) << c.name;
    for (int p = 0; p < layout->n_pairs(); ++p) {  // wide coordinates fill whole pairs
      const ScanLayout::Group& lo = layout->groups()[2 * p];
      const ScanLayout::Group& hi = layout->groups()[2 * p + 1];
      EXPECT_EQ(hi.kind == ScanLayout::GroupKind::kWideHigh,
                lo.kind == ScanLayout::GroupKind::kWideLow) << c.name << " pair " << p;
      if (lo.kind == ScanLayout::GroupKind::kWideLow) {
        EXPECT_EQ(lo.first, hi.first) << c.name;
      }
    }
  }
}

// Fast scores agree with the codec's exact estimator within the bound the
// rounding implies (plus float slack), and are bit-identical per ISA and
// whatever the batch a query is scored in.
TEST(ScorerTest, MatchesExactEstimateWithinRoundingBound) {
  const std::vector<std::string> names = {"tq1",    "tq2",    "tq3",    "tq4",  "tq2.5",
                                          "tq3.5",  "turbo2", "turbo3", "turbo4", "tq3p",
                                          "tq4p",   "tq4-ipc", "tq5",  "tq8",   "tq4.5",
                                          "tq6p",   "tq6-ls-b32"};
  constexpr size_t kN = 1000;  // not a multiple of 32: a partial last block
  constexpr int kNq = 3;
  for (int dim : {33, 96, 128, 384}) {
    const std::vector<float> x = Gaussian(kN * dim, dim);
    const std::vector<float> y = Gaussian(kNq * dim, dim + 1);
    for (const std::string& name : names) {
      auto codec = *Codec::Create(*ParseFormat(name, dim, 5));
      auto blocks = *CodeBlocks::Create(codec);
      ASSERT_OK(blocks->Append(x.data(), kN));
      ASSERT_EQ(blocks->size(), kN);
      std::vector<PreparedQuery> queries(kNq);
      for (int q = 0; q < kNq; ++q) PrepareQuery(*codec, blocks->layout(), &y[q * dim], &queries[q]);

      std::vector<float> batch(kNq * kN), single(kNq * kN);
      ScoreBlocks(*blocks, queries.data(), kNq, 0, blocks->num_blocks(), batch.data(), kN,
                  Isa::kScalar);
      for (int q = 0; q < kNq; ++q) {
        ScoreBlocks(*blocks, &queries[q], 1, 0, blocks->num_blocks(), &single[q * kN], kN,
                    Isa::kScalar);
      }
      for (Isa isa : SupportedIsas()) {
        std::vector<float> got(kNq * kN);
        ScoreBlocks(*blocks, queries.data(), kNq, 0, blocks->num_blocks(), got.data(), kN, isa);
        EXPECT_EQ(got, batch) << name << " d=" << dim << " " << IsaName(isa);
        for (int q = 0; q < kNq; ++q) {
          ScoreBlocks(*blocks, &queries[q], 1, 0, blocks->num_blocks(), &got[q * kN], kN, isa);
        }
        EXPECT_EQ(got, single) << name << " d=" << dim << " " << IsaName(isa) << " one at a time";
      }
      EXPECT_EQ(batch, single) << name << " d=" << dim;
      for (int q = 0; q < kNq; ++q) {
        Codec::Query exact_query;
        codec->PrepareQuery(&y[q * dim], &exact_query);
        double ynorm = 0;
        for (int j = 0; j < dim; ++j) ynorm += double{y[q * dim + j]} * y[q * dim + j];
        for (size_t i = 0; i < kN; i += 7) {
          const float exact = codec->EstimateInnerProduct(exact_query, blocks->Code(i));
          double xnorm = 0;
          for (int j = 0; j < dim; ++j) xnorm += double{x[i * dim + j]} * x[i * dim + j];
          // Float slack: both sides sum O(dim) float terms of size ≤ ‖x‖·‖y‖.
          const double slack = 1e-5 * dim * std::sqrt(xnorm * ynorm);
          EXPECT_LE(std::fabs(batch[q * kN + i] - exact), ErrorBound(*blocks, queries[q], i) + slack)
              << name << " d=" << dim << " vector " << i;
        }
      }
    }
  }
}

TEST(ScorerTest, PlantedNeighbourScoresHighest) {
  constexpr int kDim = 128;
  constexpr size_t kN = 5000, kPlanted = 1234;
  std::vector<float> x = Gaussian(kN * kDim, 9);
  const std::vector<float> y = Gaussian(kDim, 10);
  for (int j = 0; j < kDim; ++j) x[kPlanted * kDim + j] = y[j] * 1.5f;
  for (const char* name : {"tq2", "tq4", "turbo3"}) {
    auto codec = *Codec::Create(*ParseFormat(name, kDim));
    auto blocks = *CodeBlocks::Create(codec);
    ASSERT_OK(blocks->Append(x.data(), kN));
    PreparedQuery q;
    PrepareQuery(*codec, blocks->layout(), y.data(), &q);
    std::vector<float> scores(kN);
    ScoreBlocks(*blocks, &q, 1, 0, blocks->num_blocks(), scores.data(), kN);
    EXPECT_EQ(std::max_element(scores.begin(), scores.end()) - scores.begin(),
              static_cast<long>(kPlanted))
        << name;
  }
}

TEST(CodeBlocksTest, RejectsNonFiniteInput) {
  auto blocks = *CodeBlocks::Create(*Codec::Create(*ParseFormat("tq4", 64)));
  std::vector<float> x = Gaussian(2 * 64, 3);
  x[70] = std::nanf("");
  EXPECT_STATUS_CODE(blocks->Append(x.data(), 2), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(blocks->size(), 0u);
}

// The nibble pairs of vector v, per ScanLayout::ToNibbles (the definition).
std::vector<uint8_t> DefinedPairs(const CodeBlocks& blocks, size_t v) {
  const Codec& codec = blocks.codec();
  std::vector<uint8_t> idx(codec.dim()), nib(2 * blocks.layout().n_pairs());
  codec.UnpackIndices(blocks.Code(v), idx.data());
  const bool prod = codec.format().mode == QuantMode::kProd;
  blocks.layout().ToNibbles(idx.data(), prod ? codec.QjlSigns(blocks.Code(v)) : nullptr,
                            nib.data());
  std::vector<uint8_t> pairs(blocks.layout().n_pairs());
  for (size_t p = 0; p < pairs.size(); ++p) pairs[p] = nib[2 * p] | nib[2 * p + 1] << 4;
  return pairs;
}

TEST(CodeBlocksTest, StoredNibblesFollowTheLayoutForEveryFormat) {
  // Some formats copy packed index bytes directly (tq1/tq2/tq4 without
  // outliers): the result must equal the general path's.
  for (int d : {33, 64, 96, 128}) {
    for (const char* format : {"tq1", "tq2", "tq3", "tq4", "tq4-f16", "turbo2", "turbo4",
                               "tq2.5", "tq3p", "tq4-b32", "tq8", "tq4.5", "tq6p"}) {
      SCOPED_TRACE(::testing::Message() << format << " d=" << d);
      auto parsed = ParseFormat(format, d, 9);
      if (!parsed.ok()) continue;  // e.g. a block size that d does not allow
      auto blocks = *CodeBlocks::Create(*Codec::Create(*parsed));
      const std::vector<float> x = Gaussian(40 * d, 10);
      ASSERT_OK(blocks->Append(x.data(), 40));
      std::vector<uint8_t> scratch;
      for (size_t v = 0; v < 40; ++v) {
        const std::vector<uint8_t> want = DefinedPairs(*blocks, v);
        const uint8_t* got = blocks->BlockNibbles(v / kBlockVectors, &scratch);
        for (size_t p = 0; p < want.size(); ++p) {
          ASSERT_EQ(got[p * kPairCodeBytes + v % kBlockVectors], want[p]) << "vector " << v
                                                                          << " pair " << p;
        }
      }
    }
  }
}

// A store appends one vector at a time: after every append, each vector's
// nibbles — from a full block's storage, or made from the open block's codes —
// are its pairs as the layout defines them (DefinedPairs, independent of
// CodeBlocks), and the open block's unfilled lanes read as zeros whatever the
// scratch buffer held.
TEST(CodeBlocksTest, OneVectorAtATimeKeepsEveryBlocksNibbles) {
  constexpr int d = 40;
  for (const char* format : {"tq4", "tq3", "tq4p", "tq2.5"}) {
    SCOPED_TRACE(format);
    auto codec = *Codec::Create(*ParseFormat(format, d, 3));
    const std::vector<float> x = Gaussian(70 * d, 4);
    std::vector<uint8_t> codes(70 * codec->code_bytes());
    ASSERT_OK(codec->Encode(x.data(), 70, codes.data()));
    auto blocks = *CodeBlocks::Create(codec);
    const int n_pairs = blocks->layout().n_pairs();
    std::vector<uint8_t> scratch;
    for (size_t n = 1; n <= 70; ++n) {
      blocks->AppendCodes(&codes[(n - 1) * codec->code_bytes()], 1);
      for (size_t b = 0; b < blocks->num_blocks(); ++b) {
        scratch.assign(static_cast<size_t>(n_pairs) * kPairCodeBytes, 0xff);
        const uint8_t* got = blocks->BlockNibbles(b, &scratch);
        for (size_t lane = 0; lane < kBlockVectors; ++lane) {
          const size_t v = b * kBlockVectors + lane;
          const std::vector<uint8_t> want =
              v < n ? DefinedPairs(*blocks, v) : std::vector<uint8_t>(n_pairs, 0);
          for (int p = 0; p < n_pairs; ++p) {
            ASSERT_EQ(got[p * kPairCodeBytes + lane], want[p])
                << n << " vectors, vector " << v << " pair " << p;
          }
        }
      }
    }
  }
}

// A run of full blocks from FullBlocksFrom addresses the same memory as the
// per-block accessors, up to its chunk's end or the last full block.
TEST(CodeBlocksTest, FullBlockRunsAgreeWithTheBlockAccessors) {
  constexpr int d = 64;
  auto codec = *Codec::Create(*ParseFormat("tq4p", d, 2));
  auto blocks = *CodeBlocks::Create(codec);
  const std::vector<float> x = Gaussian(5000 * d, 8);
  ASSERT_OK(blocks->Append(x.data(), 5000));  // 156 full blocks and an open one
  const size_t nibble_bytes = blocks->layout().n_pairs() * kPairCodeBytes;
  const size_t weights = blocks->layout().n_weights() * kBlockVectors;
  size_t covered = 0;
  for (size_t b = 0; b < blocks->full_blocks(); ++b) {
    const CodeBlocks::FullBlockRun run = blocks->FullBlocksFrom(b);
    ASSERT_GE(run.count, 1u);
    ASSERT_LE(b + run.count, blocks->full_blocks());
    for (size_t k = 0; k < run.count; ++k) {
      ASSERT_EQ(run.nibbles + k * nibble_bytes, blocks->FullBlockNibbles(b + k)) << b << "+" << k;
      ASSERT_EQ(run.weights + k * weights, blocks->BlockWeights(b + k)) << b << "+" << k;
    }
    covered = std::max(covered, b + run.count);
  }
  EXPECT_EQ(covered, blocks->full_blocks());
}

// Each way of keeping blocks holds the same codes (CopyCode), weights, norms
// and, where kept, nibbles, in the memory of what it keeps.
TEST(CodeBlocksTest, KeepModesHoldTheSameVectors) {
  constexpr int d = 64;
  using Keep = CodeBlocks::Keep;
  for (const char* format : {"tq4", "tq2", "tq1", "tq4-f16", "tq4-ls-b32", "tq3", "tq4p"}) {
    SCOPED_TRACE(format);
    auto codec = *Codec::Create(*ParseFormat(format, d, 5));
    const size_t cb = codec->code_bytes();
    const std::vector<float> x = Gaussian(1100 * d, 6);  // two chunks and an open block
    std::vector<uint8_t> codes(1100 * cb);
    ASSERT_OK(codec->Encode(x.data(), 1100, codes.data()));
    auto both = *CodeBlocks::Create(codec);
    both->AppendCodes(codes.data(), 1100);
    EXPECT_EQ(both->keep(), Keep::kBoth);
    const bool rebuildable = CodeBlocks::CanRebuildCodes(codec->format());
    EXPECT_EQ(rebuildable, std::string(format) != "tq3" && std::string(format) != "tq4p");
    for (Keep keep : {Keep::kCodes, Keep::kNibbles}) {
      auto created = CodeBlocks::Create(codec, {}, keep);
      if (keep == Keep::kNibbles && !rebuildable) {
        EXPECT_STATUS_CODE(created.status(), absl::StatusCode::kInvalidArgument);
        continue;
      }
      ASSERT_OK(created);
      CodeBlocks& other = **created;
      EXPECT_EQ(other.keep(), keep);
      // One at a time, as a store appends.
      std::vector<uint8_t> code(cb), want(cb);
      for (size_t i = 0; i < 1100; ++i) other.AppendCodes(&codes[i * cb], 1);
      ASSERT_EQ(other.size(), both->size());
      const size_t weights = both->layout().n_weights() * kBlockVectors;
      const size_t nibble_bytes = both->layout().n_pairs() * kPairCodeBytes;
      std::vector<uint8_t> scratch_o, scratch_b;
      for (size_t b = 0; b < both->num_blocks(); ++b) {
        ASSERT_EQ(0, std::memcmp(other.BlockWeights(b), both->BlockWeights(b),
                                 weights * sizeof(float)));
        if (keep == Keep::kNibbles) {
          ASSERT_EQ(0, std::memcmp(other.BlockNibbles(b, &scratch_o),
                                   both->BlockNibbles(b, &scratch_b), nibble_bytes));
        }
      }
      for (size_t i = 0; i < both->size(); ++i) {
        other.CopyCode(i, code.data());
        both->CopyCode(i, want.data());
        ASSERT_EQ(0, std::memcmp(code.data(), want.data(), cb)) << i;
        ASSERT_EQ(0, std::memcmp(want.data(), both->Code(i), cb)) << i;
        ASSERT_EQ(other.SquaredNorm(i), both->SquaredNorm(i)) << i;
      }
      // 1100 vectors allocate chunks of 1, 2, …, 32 blocks: 63 blocks.
      const size_t dropped = keep == Keep::kCodes ? 63 * nibble_bytes
                                                  : 63 * kBlockVectors * cb - kBlockVectors * cb;
      EXPECT_EQ(both->MemoryBytes() - other.MemoryBytes(), dropped);
    }
  }
}

TEST(CodeBlocksTest, TruncateThenAppendEqualsBuildingTheResult) {
  constexpr int d = 64;
  using Keep = CodeBlocks::Keep;
  for (auto [format, keep] : {std::pair{"tq4", Keep::kBoth}, std::pair{"tq2", Keep::kBoth},
                              std::pair{"tq4p", Keep::kBoth}, std::pair{"tq7", Keep::kBoth},
                              std::pair{"tq4", Keep::kNibbles}, std::pair{"tq2", Keep::kNibbles},
                              std::pair{"tq4", Keep::kCodes}}) {
    SCOPED_TRACE(::testing::Message() << format << " keep " << static_cast<int>(keep));
    auto codec = *Codec::Create(*ParseFormat(format, d, 5));
    const std::vector<float> x = Gaussian(1100 * d, 6), y = Gaussian(50 * d, 7);
    // 1100 vectors span two chunks; keep 40 (cutting a full block: with
    // kNibbles its codes are rebuilt), then append 50 others.
    auto truncated = *CodeBlocks::Create(codec, {}, keep);
    ASSERT_OK(truncated->Append(x.data(), 1100));
    truncated->Truncate(2000);  // beyond the end: nothing happens
    EXPECT_EQ(truncated->size(), 1100u);
    truncated->Truncate(40);
    EXPECT_EQ(truncated->size(), 40u);
    ASSERT_OK(truncated->Append(y.data(), 50));
    auto built = *CodeBlocks::Create(codec, {}, keep);
    ASSERT_OK(built->Append(x.data(), 40));
    ASSERT_OK(built->Append(y.data(), 50));
    ASSERT_EQ(truncated->size(), built->size());
    EXPECT_EQ(truncated->MemoryBytes(), built->MemoryBytes());  // the second chunk is gone
    const size_t nibble_bytes = truncated->layout().n_pairs() * kPairCodeBytes;
    const size_t weights = truncated->layout().n_weights() * kBlockVectors;
    std::vector<uint8_t> scratch_t, scratch_b;
    for (size_t b = 0; b < built->num_blocks(); ++b) {  // freed slots are zero again
      if (keep != Keep::kCodes) {
        ASSERT_EQ(0, std::memcmp(truncated->BlockNibbles(b, &scratch_t),
                                 built->BlockNibbles(b, &scratch_b), nibble_bytes));
      }
      ASSERT_EQ(0, std::memcmp(truncated->BlockWeights(b), built->BlockWeights(b),
                               weights * sizeof(float)));
    }
    std::vector<uint8_t> code_t(codec->code_bytes()), code_b(codec->code_bytes());
    for (size_t i = 0; i < built->size(); ++i) {
      truncated->CopyCode(i, code_t.data());
      built->CopyCode(i, code_b.data());
      ASSERT_EQ(0, std::memcmp(code_t.data(), code_b.data(), code_t.size())) << i;
      ASSERT_EQ(truncated->SquaredNorm(i), built->SquaredNorm(i));
    }
  }
}

}  // namespace
}  // namespace tqdb::index
