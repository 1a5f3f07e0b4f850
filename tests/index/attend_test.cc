#include "index/scan/attend.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/testing.h"
#include "gtest/gtest.h"
#include "tests/index/test_data.h"

namespace tqdb::index {
namespace {

using testing::Gaussian;

std::unique_ptr<CodeBlocks> Coded(const std::string& format, int dim, const std::vector<float>& x,
                                  std::vector<float> center = {}) {
  auto blocks = *CodeBlocks::Create(*Codec::Create(*ParseFormat(format, dim, 3)), std::move(center));
  EXPECT_OK(blocks->Append(x.data(), x.size() / dim));
  return blocks;
}

// Plain attention in double over the decoded keys and values.
std::vector<double> Reference(const CodeBlocks& k, const CodeBlocks& v, const std::vector<float>& q,
                              size_t begin, size_t end, const ExactTail& tail, double scale) {
  const int d = k.codec().dim();
  std::vector<std::vector<float>> keys, vals;
  std::vector<float> buf(d);
  auto decode = [&](const CodeBlocks& blocks, size_t t) {  // decoded + center
    blocks.codec().Decode(blocks.Code(t), 1, buf.data());
    for (size_t j = 0; j < blocks.center().size(); ++j) buf[j] += blocks.center()[j];
    return buf;
  };
  for (size_t t = begin; t < end; ++t) {
    keys.push_back(decode(k, t));
    vals.push_back(decode(v, t));
  }
  for (size_t t = 0; t < tail.n; ++t) {
    keys.emplace_back(tail.keys + t * d, tail.keys + (t + 1) * d);
    vals.emplace_back(tail.values + t * d, tail.values + (t + 1) * d);
  }
  const size_t nq = q.size() / d;
  std::vector<double> out(nq * d, 0.0);
  for (size_t g = 0; g < nq; ++g) {
    std::vector<double> logit(keys.size());
    double max = -1e300, sum = 0;
    for (size_t t = 0; t < keys.size(); ++t) {
      double dot = 0;
      for (int j = 0; j < d; ++j) dot += double{q[g * d + j]} * keys[t][j];
      logit[t] = scale * dot;
      max = std::max(max, logit[t]);
    }
    for (double& l : logit) sum += (l = std::exp(l - max));
    for (size_t t = 0; t < keys.size(); ++t) {
      for (int j = 0; j < d; ++j) out[g * d + j] += logit[t] / sum * vals[t][j];
    }
  }
  return out;
}

// ‖out − want‖ ≤ 1e-4·‖want‖ for each of the G queries.
void ExpectClose(const std::vector<float>& out, const std::vector<double>& want, int d,
                 const std::string& what) {
  for (size_t g = 0; g < want.size() / d; ++g) {
    double diff = 0, norm = 0;
    for (int j = 0; j < d; ++j) {
      diff += std::pow(out[g * d + j] - want[g * d + j], 2);
      norm += std::pow(want[g * d + j], 2);
    }
    EXPECT_LE(std::sqrt(diff), 1e-4 * std::sqrt(norm)) << what << " query " << g;
  }
}

// Every ISA, every value path (packed: tq4, tq2, tq1, tq4-f16, odd index
// bytes; rows: tq3, tq2.5, turbo2, turbo4, wide tq5…tq8 and tq4.5), wide keys
// (pair tables), ranges of 1, 31, 32, 33 and 1000
// tokens starting and ending mid-block, several 256-token softmax tiles.
TEST(AttendTest, MatchesFloatReferenceAttention) {
  struct Case {
    const char* k;
    const char* v;
    int dim;
  };
  const Case cases[] = {{"tq4", "tq4", 128},    {"tq4", "tq2", 128},      {"tq2", "tq2", 64},
                        {"tq3", "turbo2", 96},  {"turbo3", "tq2.5", 128}, {"tq4p", "tq4", 64},
                        {"tq3.5", "turbo4", 128}, {"tq1", "tq3", 33},     {"tq4", "tq1", 128},
                        {"tq2", "tq4", 33},     {"tq4", "tq2", 96},       {"tq4", "tq4-f16", 64},
                        {"tq8", "tq8", 64},     {"tq5", "tq4.5", 33},     {"tq6p", "tq7", 96},
                        {"tq4", "tq6-ls-b32", 128}};
  constexpr size_t kTokens = 1000, kGroup = 4, kTail = 5;
  const std::pair<size_t, size_t> ranges[] = {
      {0, kTokens}, {37, 250}, {5, 6}, {32, 63}, {64, 96}, {31, 64}, {999, 1000}, {3, 1003}};
  for (const Case& c : cases) {
    const int d = c.dim;
    // Keys with a few large coordinates make the softmax peaked, values small:
    // the shapes real KV caches have.
    std::vector<float> kx = Gaussian(kTokens * d, 1), vx = Gaussian(kTokens * d, 2, 0.3f);
    for (size_t t = 0; t < kTokens; ++t) kx[t * d + t % d] += 4.0f;
    auto k = Coded(c.k, d, kx), v = Coded(c.v, d, vx);
    const std::vector<float> q = Gaussian(kGroup * d, 3, 2.0f);
    const std::vector<float> tk = Gaussian(kTail * d, 4), tv = Gaussian(kTail * d, 5, 0.3f);
    for (bool with_tail : {false, true}) {
      for (auto [begin, end] : ranges) {
        ExactTail tail;
        if (with_tail) tail = {tk.data(), tv.data(), kTail};
        const std::vector<double> want = Reference(*k, *v, q, begin, std::min(end, kTokens), tail,
                                                   1.0 / std::sqrt(double(d)));
        for (Isa isa : SupportedIsas()) {
          AttendOptions options{.begin = begin, .end = end, .isa = isa};
          std::vector<float> out(kGroup * d);
          ASSERT_OK(Attend(*k, *v, q, options, tail, out.data()));
          ExpectClose(out, want, d,
                      std::string(c.k) + "/" + c.v + " d=" + std::to_string(d) + " " +
                          IsaName(isa) + " range " + std::to_string(begin) + "-" +
                          std::to_string(end) + " tail " + std::to_string(with_tail));
        }
      }
    }
  }
}

// Online softmax: logits that rise along the sequence move the running max in
// every tile (rescaling the accumulators each time); falling ones never do.
TEST(AttendTest, OnlineSoftmaxFollowsAMovingMax) {
  constexpr int d = 128;
  constexpr size_t kTokens = 2000;
  const std::vector<float> q = Gaussian(2 * d, 21);
  for (float slope : {12.0f, -12.0f}) {
    std::vector<float> kx = Gaussian(kTokens * d, 22), vx = Gaussian(kTokens * d, 23, 0.3f);
    for (size_t t = 0; t < kTokens; ++t) {
      // Along query 0: its logits drift by ~slope·√d/‖q‖ over the sequence.
      for (int j = 0; j < d; ++j) kx[t * d + j] += slope * (float(t) / kTokens) * q[j] / 11.3f;
    }
    auto k = Coded("tq4", d, kx), v = Coded("tq4", d, vx);
    const std::vector<double> want = Reference(*k, *v, q, 0, kTokens, {}, 1.0 / std::sqrt(double(d)));
    for (Isa isa : SupportedIsas()) {
      std::vector<float> out(2 * d);
      ASSERT_OK(Attend(*k, *v, q, {.isa = isa}, {}, out.data()));
      ExpectClose(out, want, d, std::string(IsaName(isa)) + " slope " + std::to_string(slope));
    }
  }
}

// Centered keys and values (a large per-channel key bias, as real heads have)
// give the reference attention over decoded + μ, exact tail included.
TEST(AttendTest, CenteredKeysAndValues) {
  constexpr int d = 64;
  constexpr size_t kTokens = 200;
  std::vector<float> kx = Gaussian(kTokens * d, 11), vx = Gaussian(kTokens * d, 12, 0.3f);
  std::vector<float> mu_k(d), mu_v(d);
  for (int j = 0; j < d; ++j) {
    mu_k[j] = 3.0f * std::sin(0.7f * j);
    mu_v[j] = 0.5f - 0.01f * j;
  }
  for (size_t t = 0; t < kTokens; ++t) {
    for (int j = 0; j < d; ++j) {
      kx[t * d + j] += mu_k[j];
      vx[t * d + j] += mu_v[j];
    }
  }
  auto k = Coded("tq4", d, kx, mu_k);
  const std::vector<float> q = Gaussian(2 * d, 13), tk = Gaussian(3 * d, 14), tv = Gaussian(3 * d, 15);
  const ExactTail tail{tk.data(), tv.data(), 3};
  for (const char* vf : {"tq2", "turbo2"}) {  // packed and row value paths
    auto v = Coded(vf, d, vx, mu_v);
    const std::vector<double> want =
        Reference(*k, *v, q, 10, 190, tail, 1.0 / std::sqrt(double(d)));
    for (Isa isa : SupportedIsas()) {
      std::vector<float> out(2 * d);
      ASSERT_OK(Attend(*k, *v, q, {.begin = 10, .end = 190, .isa = isa}, tail, out.data()));
      ExpectClose(out, want, d, std::string(IsaName(isa)) + " " + vf);
    }
  }
}

TEST(AttendTest, TailOnlyAndExplicitScale) {
  constexpr int d = 64;
  auto k = Coded("tq4", d, Gaussian(10 * d, 1)), v = Coded("tq4", d, Gaussian(10 * d, 2));
  const std::vector<float> q = Gaussian(d, 3), tk = Gaussian(3 * d, 4), tv = Gaussian(3 * d, 5);
  const ExactTail tail{tk.data(), tv.data(), 3};
  const std::vector<double> want = Reference(*k, *v, q, 10, 10, tail, 0.5);
  for (Isa isa : SupportedIsas()) {
    std::vector<float> out(d);
    ASSERT_OK(Attend(*k, *v, q, {.scale = 0.5f, .begin = 10, .end = 10, .isa = isa}, tail,
                     out.data()));
    for (int j = 0; j < d; ++j) EXPECT_NEAR(out[j], want[j], 1e-5) << IsaName(isa);
  }
}

// Keys may be kept without codes (Attend scans their nibbles) and values
// without what Attend does not read of them: the output is the same to the
// bit. Values kept without what it reads are InvalidArgument.
TEST(AttendTest, KeepModes) {
  constexpr int d = 96;
  constexpr size_t kTokens = 300, kGroup = 4;
  using Keep = CodeBlocks::Keep;
  const std::vector<float> kx = Gaussian(kTokens * d, 1), vx = Gaussian(kTokens * d, 2, 0.3f);
  const std::vector<float> q = Gaussian(kGroup * d, 3, 2.0f);
  auto key_codec = *Codec::Create(*ParseFormat("tq4", d, 3));
  auto k = *CodeBlocks::Create(key_codec);
  auto k_nibbles = *CodeBlocks::Create(key_codec, {}, Keep::kNibbles);
  ASSERT_OK(k->Append(kx.data(), kTokens));
  ASSERT_OK(k_nibbles->Append(kx.data(), kTokens));
  const std::pair<const char*, bool> formats[] = {  // and whether Attend reads their codes
      {"tq4", true},  {"tq2", true},    {"tq1", true},     {"tq4-f16", true}, {"tq4-ls-b32", false},
      {"tq3", false}, {"tq2.5", false}, {"turbo2", false}, {"tq8", false}};
  for (auto [format, from_codes] : formats) {
    SCOPED_TRACE(format);
    auto codec = *Codec::Create(*ParseFormat(format, d, 3));
    ASSERT_EQ(AttendReadsValueCodes(codec->format()), from_codes);
    auto both = *CodeBlocks::Create(codec);
    ASSERT_OK(both->Append(vx.data(), kTokens));
    for (Keep keep : {Keep::kCodes, Keep::kNibbles}) {
      auto created = CodeBlocks::Create(codec, {}, keep);
      if (!created.ok()) continue;  // a format that cannot rebuild its codes
      CodeBlocks& v = **created;
      ASSERT_OK(v.Append(vx.data(), kTokens));
      const bool reads_kept = from_codes ? keep == Keep::kCodes : keep == Keep::kNibbles;
      for (Isa isa : SupportedIsas()) {
        for (auto [begin, end] : {std::pair<size_t, size_t>{0, kTokens}, {33, 290}}) {
          const AttendOptions options{.begin = begin, .end = end, .isa = isa};
          std::vector<float> want(kGroup * d), got(kGroup * d, 42.0f);
          ASSERT_OK(Attend(*k, *both, q, options, {}, want.data()));
          const absl::Status s = Attend(*k_nibbles, v, q, options, {}, got.data());
          if (!reads_kept) {
            EXPECT_STATUS_CODE(s, absl::StatusCode::kInvalidArgument);
            for (float o : got) ASSERT_EQ(o, 42.0f);
            continue;
          }
          ASSERT_OK(s);
          ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
              << IsaName(isa) << " keep " << static_cast<int>(keep) << " range " << begin << "-"
              << end;
        }
      }
    }
  }
}

TEST(AttendTest, BadInputIsInvalidArgumentAndWritesNothing) {
  constexpr int d = 64;
  auto k = Coded("tq4", d, Gaussian(40 * d, 1)), v = Coded("tq4", d, Gaussian(40 * d, 2));
  auto v_short = Coded("tq4", d, Gaussian(39 * d, 2));
  auto v_wide = Coded("tq4", 96, Gaussian(40 * 96, 2));
  auto v_qjl = Coded("tq4p", d, Gaussian(40 * d, 2));
  std::vector<float> q = Gaussian(2 * d, 3), out(2 * d, 42.0f);
  auto bad = [&](const CodeBlocks& values, absl::Span<const float> queries, AttendOptions o) {
    EXPECT_STATUS_CODE(Attend(*k, values, queries, o, {}, out.data()),
                       absl::StatusCode::kInvalidArgument);
  };
  bad(*v_short, q, {});
  bad(*v_wide, q, {});
  bad(*v_qjl, q, {});
  bad(*v, {}, {});
  bad(*v, absl::MakeConstSpan(q.data(), d + 1), {});
  bad(*v, q, {.begin = 20, .end = 10});
  bad(*v, q, {.begin = 40});  // no token takes part
  std::vector<float> nan_q = q;
  nan_q[3] = std::nanf("");
  bad(*v, nan_q, {});
  std::vector<float> tk = Gaussian(2 * d, 6), tv = Gaussian(2 * d, 7);
  tv[d + 5] = std::numeric_limits<float>::infinity();
  EXPECT_STATUS_CODE(Attend(*k, *v, q, {}, {tk.data(), tv.data(), 2}, out.data()),
                     absl::StatusCode::kInvalidArgument);
  for (float o : out) ASSERT_EQ(o, 42.0f);
}

}  // namespace
}  // namespace tqdb::index
