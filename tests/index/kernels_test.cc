// Every SIMD kernel table against the scalar reference (kernels_scalar.cc).
//
// The kernels fix their operation order (kernels.h), so the SIMD twins must
// give BIT-IDENTICAL results, even for random floats whose sums round
// differently under any other order. Nothing here has a tolerance.
//
// Inputs end exactly at an inaccessible page (GuardedBuffer), so a kernel that
// reads past its stated input size faults; outputs are followed by a canary,
// so a kernel that writes past its stated output size fails.
#include "index/codec/internal/kernels.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "index/codec/isa.h"

namespace tqdb::index {
namespace {

using internal::Kernels;
using internal::kTableSize;

// Tails around the 8- and 16-lane widths and the 32/64-element unrolled loops.
constexpr int kSizes[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000};

constexpr int kCanaryBytes = 64;  // checked past every byte output
// Byte outputs start with different fills for scalar and SIMD, so a byte that
// one of them leaves unwritten cannot match by accident.
constexpr uint8_t kScalarFill = 0x5a;
constexpr uint8_t kSimdFill = 0xa5;
constexpr uint32_t kCanaryFloat = 0x7fa5a5a5u;  // a NaN no kernel produces
constexpr int kCanaryFloats = 16;

// The SIMD tables this binary and CPU support (empty on a scalar-only build).
std::vector<const Kernels*> SimdKernels() {
  std::vector<const Kernels*> out;
  for (Isa isa : SupportedIsas()) {
    if (isa == Isa::kScalar) continue;
    const Kernels* k = internal::GetKernels(isa);
    if (k != nullptr) out.push_back(k);
  }
  return out;
}

#define TQDB_SIMD_KERNELS_OR_SKIP(var)                   \
  const std::vector<const Kernels*> var = SimdKernels(); \
  if (var.empty()) GTEST_SKIP() << "no SIMD kernels on this build/CPU"

// n elements ending exactly at a PROT_NONE page: reading past the end faults.
template <typename T>
class GuardedBuffer {
 public:
  explicit GuardedBuffer(const std::vector<T>& v) : n_(v.size()) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t bytes = n_ * sizeof(T);
    size_ = (bytes + page - 1) / page * page + page;
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    base_ = static_cast<char*>(p);
    if (mprotect(base_ + size_ - page, page, PROT_NONE) != 0) std::abort();
    data_ = reinterpret_cast<T*>(base_ + size_ - page - bytes);
    if (n_ > 0) std::memcpy(data_, v.data(), bytes);
  }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;
  ~GuardedBuffer() { munmap(base_, size_); }

  const T* data() const { return data_; }

 private:
  size_t n_;
  size_t size_;
  char* base_;
  T* data_;
};

uint32_t Bits(float f) { return std::bit_cast<uint32_t>(f); }

// want[0, n) and got[0, n) have the same bit patterns.
::testing::AssertionResult SameFloats(const float* want, const float* got, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (Bits(want[i]) != Bits(got[i])) {
      char msg[160];
      std::snprintf(msg, sizeof(msg),
                    "first difference at [%zu]: want %a (0x%08x), got %a (0x%08x)", i, want[i],
                    Bits(want[i]), got[i], Bits(got[i]));
      return ::testing::AssertionFailure() << msg;
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult SameBytes(const uint8_t* want, const uint8_t* got, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (want[i] != got[i]) {
      return ::testing::AssertionFailure() << "first difference at byte " << i << " of " << n
                                           << ": want " << int{want[i]} << ", got " << int{got[i]};
    }
  }
  return ::testing::AssertionSuccess();
}

// buf[size, size + kCanaryBytes) still holds `fill`.
::testing::AssertionResult CanaryIntact(const std::vector<uint8_t>& buf, size_t size,
                                        uint8_t fill) {
  for (size_t i = size; i < buf.size(); ++i) {
    if (buf[i] != fill) {
      return ::testing::AssertionFailure()
             << "wrote byte " << i - size << " past the end of a " << size << "-byte output";
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult CanaryIntact(const std::vector<float>& buf, size_t size) {
  for (size_t i = size; i < buf.size(); ++i) {
    if (Bits(buf[i]) != kCanaryFloat) {
      return ::testing::AssertionFailure()
             << "wrote float " << i - size << " past the end of a " << size << "-float output";
    }
  }
  return ::testing::AssertionSuccess();
}

std::vector<float> FloatOutput(size_t n) {
  return std::vector<float>(n + kCanaryFloats, std::bit_cast<float>(kCanaryFloat));
}

enum class Data { kIntegers, kRandomFloats };
constexpr Data kData[] = {Data::kIntegers, Data::kRandomFloats};
const char* DataName(Data d) { return d == Data::kIntegers ? "integers" : "random floats"; }

// Integers in [-8, 8] (sums and products exact, so only the order-free parts
// are tested) or normal samples times 2^[-12, 12] (mixed magnitudes, so any
// reordering of a sum changes its rounding), with a few exact ±0.
std::vector<float> MakeFloats(std::mt19937& rng, size_t n, Data data) {
  std::vector<float> v(n);
  if (data == Data::kIntegers) {
    std::uniform_int_distribution<int> d(-8, 8);
    for (float& x : v) x = static_cast<float>(d(rng));
    return v;
  }
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_int_distribution<int> e(-12, 12);
  std::uniform_int_distribution<int> special(0, 31);
  for (float& x : v) {
    const int s = special(rng);
    x = s == 0 ? 0.0f : s == 1 ? -0.0f : std::ldexp(g(rng), e(rng));
  }
  return v;
}

std::vector<uint8_t> MakeIndices(std::mt19937& rng, size_t n, int bits) {
  std::uniform_int_distribution<int> d(0, (1 << bits) - 1);
  std::vector<uint8_t> v(n);
  for (uint8_t& x : v) x = static_cast<uint8_t>(d(rng));
  return v;
}

// `count` random ±1 signs.
std::vector<float> RandomSigns(std::mt19937& rng, size_t count) {
  std::vector<float> signs(count);
  for (float& s : signs) s = (rng() & 1) ? -1.0f : 1.0f;
  return signs;
}

TEST(KernelsTest, TablesReportTheirIsa) {
  EXPECT_EQ(internal::ScalarKernels().isa, Isa::kScalar);
  EXPECT_EQ(internal::GetKernels(Isa::kScalar), &internal::ScalarKernels());
  ASSERT_NE(internal::GetKernels(Isa::kBest), nullptr);
  EXPECT_EQ(internal::GetKernels(Isa::kBest)->isa, ResolveIsa(Isa::kBest));
  for (Isa isa : SupportedIsas()) {
    ASSERT_NE(internal::GetKernels(isa), nullptr) << IsaName(isa);
    EXPECT_EQ(internal::GetKernels(isa)->isa, isa) << IsaName(isa);
  }
}

// ---------------------------------------------------------------------------
// The scalar reference against its documented definitions.

// kernels.h, literally: 16 lanes from +0, zero padding to a multiple of 16,
// acc[i % 16] = fma(a[i], b[i], acc[i % 16]) ascending, then the tree 8, 4, 2, 1.
float CanonicalDot(const float* a, const float* b, int n) {
  const int padded = (n + 15) / 16 * 16;
  std::vector<float> pa(padded, 0.0f), pb(padded, 0.0f);
  std::copy(a, a + n, pa.begin());
  std::copy(b, b + n, pb.begin());
  float acc[16];
  std::fill(acc, acc + 16, 0.0f);
  for (int i = 0; i < padded; ++i) acc[i % 16] = std::fma(pa[i], pb[i], acc[i % 16]);
  for (int w = 8; w >= 1; w /= 2) {
    for (int l = 0; l < w; ++l) acc[l] = acc[l] + acc[l + w];
  }
  return acc[0];
}

TEST(KernelsScalarTest, DotIsTheCanonicalOrder) {
  std::mt19937 rng(101);
  for (int n : kSizes) {
    for (Data data : kData) {
      for (int trial = 0; trial < 4; ++trial) {
        const std::vector<float> a = MakeFloats(rng, n, data), b = MakeFloats(rng, n, data);
        EXPECT_EQ(Bits(internal::ScalarKernels().dot(a.data(), b.data(), n)),
                  Bits(CanonicalDot(a.data(), b.data(), n)))
            << "n=" << n << " " << DataName(data);
      }
    }
  }
}

// kernels.h, literally: round r uses signs + r·stride; forward rounds go
// 0 … R−1 as x ← scale · H · (s ⊙ x), inverse rounds R−1 … 0 as
// x ← s ⊙ (scale · H · x); H by stages h = 1, 2, …, n/2 of (a + b, a − b).
void CanonicalHadamard(float* x, int log2n, const float* signs, size_t stride, int rounds,
                       float scale, bool inverse) {
  const int n = 1 << log2n;
  for (int k = 0; k < rounds; ++k) {
    const float* s = signs + (inverse ? rounds - 1 - k : k) * stride;
    if (!inverse) {
      for (int i = 0; i < n; ++i) x[i] = s[i] * x[i];
    }
    for (int h = 1; h < n; h *= 2) {
      for (int i = 0; i < n; ++i) {
        if ((i & h) != 0) continue;
        const float a = x[i], b = x[i + h];
        x[i] = a + b;
        x[i + h] = a - b;
      }
    }
    for (int i = 0; i < n; ++i) x[i] = scale * x[i];
    if (inverse) {
      for (int i = 0; i < n; ++i) x[i] = s[i] * x[i];
    }
  }
}

TEST(KernelsScalarTest, HadamardIsTheDocumentedRounds) {
  std::mt19937 rng(103);
  for (int log2n = 0; log2n <= 10; ++log2n) {
    const size_t n = size_t{1} << log2n;
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
    for (int rounds = 1; rounds <= 4; ++rounds) {
      const std::vector<float> signs = RandomSigns(rng, (rounds - 1) * 2 * n + n);
      for (bool inverse : {false, true}) {
        const std::vector<float> x = MakeFloats(rng, n, Data::kRandomFloats);
        std::vector<float> got = x, want = x;
        internal::ScalarKernels().hadamard(got.data(), log2n, signs.data(), 2 * n, rounds, scale,
                                           inverse);
        CanonicalHadamard(want.data(), log2n, signs.data(), 2 * n, rounds, scale, inverse);
        EXPECT_TRUE(SameFloats(want.data(), got.data(), n))
            << "log2n=" << log2n << " rounds=" << rounds << " inverse=" << inverse;
      }
    }
  }
}

// A sorted table of 2^bits − 1 boundaries padded with +inf; some boundaries
// are exactly y[j]·inv for inputs y[j], so inputs land exactly on them.
std::vector<float> MakeBounds(std::mt19937& rng, int bits, const std::vector<float>& y, float inv) {
  const int count = (1 << bits) - 1;
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> bounds(kTableSize, std::numeric_limits<float>::infinity());
  for (int k = 0; k < count; ++k) bounds[k] = g(rng);
  if (!y.empty()) {
    std::uniform_int_distribution<size_t> pick(0, y.size() - 1);
    for (int k = 0; k < count; k += 2) {
      const float u = y[pick(rng)] * inv;
      if (std::isfinite(u)) bounds[k] = u;
    }
  }
  std::sort(bounds.begin(), bounds.begin() + count);
  return bounds;
}

// Inputs for quantize: normal samples, the boundaries themselves (exact hits
// when inv = 1), ±0, values beyond the table and ±inf.
std::vector<float> MakeQuantizeInputs(std::mt19937& rng, size_t n) {
  std::normal_distribution<float> g(0.0f, 1.5f);
  std::vector<float> y(n);
  for (float& v : y) v = g(rng);
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float specials[] = {0.0f, -0.0f, 1e30f, -1e30f, kInf, -kInf};
  for (size_t i = 0; i < n; i += 13) y[i] = specials[(i / 13) % 6];
  return y;
}

// Overwrites every third input with a boundary value from the table.
void PutBoundariesIn(std::mt19937& rng, int bits, const std::vector<float>& bounds,
                     std::vector<float>& y) {
  std::uniform_int_distribution<int> pick(0, (1 << bits) - 2);
  for (size_t i = 1; i < y.size(); i += 3) y[i] = bounds[pick(rng)];
}

constexpr float kInvs[] = {1.0f, 0.37f, 0.0f};

TEST(KernelsScalarTest, QuantizeIsALinearCount) {
  std::mt19937 rng(102);
  const Kernels& scalar = internal::ScalarKernels();
  for (int bits = 1; bits <= 8; ++bits) {
    for (float inv : kInvs) {
      for (int n : kSizes) {
        std::vector<float> y = MakeQuantizeInputs(rng, n);
        const std::vector<float> bounds = MakeBounds(rng, bits, y, inv);
        PutBoundariesIn(rng, bits, bounds, y);
        std::vector<uint8_t> idx(n);
        scalar.quantize(y.data(), n, inv, bounds.data(), bits, idx.data());
        for (int i = 0; i < n; ++i) {
          const float u = y[i] * inv;
          int count = 0;
          for (int k = 0; k < kTableSize; ++k) count += bounds[k] < u ? 1 : 0;
          ASSERT_EQ(int{idx[i]}, count)
              << "bits=" << bits << " inv=" << inv << " n=" << n << " y[" << i << "]=" << y[i];
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// SIMD against scalar.

TEST(KernelsTest, DotMatchesScalar) {
  TQDB_SIMD_KERNELS_OR_SKIP(simd);
  std::mt19937 rng(1);
  const Kernels& scalar = internal::ScalarKernels();
  for (int n : kSizes) {
    for (Data data : kData) {
      for (int trial = 0; trial < 4; ++trial) {
        const GuardedBuffer<float> a(MakeFloats(rng, n, data)), b(MakeFloats(rng, n, data));
        const float want = scalar.dot(a.data(), b.data(), n);
        for (const Kernels* k : simd) {
          EXPECT_EQ(Bits(k->dot(a.data(), b.data(), n)), Bits(want))
              << IsaName(k->isa) << " n=" << n << " " << DataName(data) << " want=" << want;
        }
      }
    }
  }
}

TEST(KernelsTest, HadamardMatchesScalar) {
  TQDB_SIMD_KERNELS_OR_SKIP(simd);
  std::mt19937 rng(2);
  const Kernels& scalar = internal::ScalarKernels();
  for (int log2n = 0; log2n <= 14; ++log2n) {  // 14 is the documented maximum
    const size_t n = size_t{1} << log2n;
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
    for (int rounds = 1; rounds <= 4; ++rounds) {
      // Stride n (packed rounds) and 2n (rotation.cc: head and tail signs interleaved).
      for (size_t stride : {n, 2 * n}) {
        // Ends at the last sign used, so reading past round `rounds` − 1 faults.
        const GuardedBuffer<float> signs(RandomSigns(rng, (rounds - 1) * stride + n));
        for (bool inverse : {false, true}) {
          for (Data data : kData) {
            const std::vector<float> x = MakeFloats(rng, n, data);
            std::vector<float> want = FloatOutput(n);
            std::copy(x.begin(), x.end(), want.begin());
            scalar.hadamard(want.data(), log2n, signs.data(), stride, rounds, scale, inverse);
            ASSERT_TRUE(CanaryIntact(want, n));
            for (const Kernels* k : simd) {
              std::vector<float> got = FloatOutput(n);
              std::copy(x.begin(), x.end(), got.begin());
              k->hadamard(got.data(), log2n, signs.data(), stride, rounds, scale, inverse);
              EXPECT_TRUE(SameFloats(want.data(), got.data(), n))
                  << IsaName(k->isa) << " log2n=" << log2n << " rounds=" << rounds
                  << " stride=" << stride << " inverse=" << inverse << " " << DataName(data);
              EXPECT_TRUE(CanaryIntact(got, n)) << IsaName(k->isa) << " log2n=" << log2n;
            }
          }
        }
      }
    }
  }
}

TEST(KernelsTest, MatVecMatchesScalar) {
  TQDB_SIMD_KERNELS_OR_SKIP(simd);
  std::mt19937 rng(3);
  const Kernels& scalar = internal::ScalarKernels();
  for (int rows : {1, 31, 32, 33, 64, 65, 100}) {
    for (int cols : {0, 1, 7, 33, 128}) {
      for (Data data : kData) {
        const GuardedBuffer<float> m(MakeFloats(rng, static_cast<size_t>(rows) * cols, data));
        const GuardedBuffer<float> x(MakeFloats(rng, cols, data));
        std::vector<float> want = FloatOutput(rows);
        scalar.matvec(m.data(), rows, cols, x.data(), want.data());
        for (const Kernels* k : simd) {
          std::vector<float> got = FloatOutput(rows);
          k->matvec(m.data(), rows, cols, x.data(), got.data());
          EXPECT_TRUE(SameFloats(want.data(), got.data(), rows))
              << IsaName(k->isa) << " rows=" << rows << " cols=" << cols << " " << DataName(data);
          EXPECT_TRUE(CanaryIntact(got, rows)) << IsaName(k->isa) << " rows=" << rows;
        }
      }
    }
  }
}

TEST(KernelsTest, QuantizeMatchesScalar) {
  TQDB_SIMD_KERNELS_OR_SKIP(simd);
  std::mt19937 rng(4);
  const Kernels& scalar = internal::ScalarKernels();
  for (int bits = 1; bits <= 8; ++bits) {
    for (float inv : kInvs) {
      for (int n : kSizes) {
        std::vector<float> y_values = MakeQuantizeInputs(rng, n);
        const GuardedBuffer<float> bounds(MakeBounds(rng, bits, y_values, inv));
        std::vector<float> bound_values(bounds.data(), bounds.data() + kTableSize);
        PutBoundariesIn(rng, bits, bound_values, y_values);
        const GuardedBuffer<float> y(y_values);
        std::vector<uint8_t> want(n + kCanaryBytes, kScalarFill);
        scalar.quantize(y.data(), n, inv, bounds.data(), bits, want.data());
        for (const Kernels* k : simd) {
          std::vector<uint8_t> got(n + kCanaryBytes, kSimdFill);
          k->quantize(y.data(), n, inv, bounds.data(), bits, got.data());
          EXPECT_TRUE(SameBytes(want.data(), got.data(), n))
              << IsaName(k->isa) << " bits=" << bits << " inv=" << inv << " n=" << n;
          EXPECT_TRUE(CanaryIntact(got, n, kSimdFill)) << IsaName(k->isa) << " n=" << n;
        }
      }
    }
  }
}

// Random indices, all zeros and all 2^bits − 1 (every bit of the stream set).
std::vector<std::vector<uint8_t>> IndexPatterns(std::mt19937& rng, int n, int bits) {
  return {MakeIndices(rng, n, bits), std::vector<uint8_t>(n, 0),
          std::vector<uint8_t>(n, static_cast<uint8_t>((1 << bits) - 1))};
}

TEST(KernelsTest, PackMatchesScalarAndUnpackInvertsIt) {
  TQDB_SIMD_KERNELS_OR_SKIP(simd);
  std::mt19937 rng(5);
  const Kernels& scalar = internal::ScalarKernels();
  for (int bits = 1; bits <= 8; ++bits) {
    for (int n : kSizes) {
      const size_t bytes = (static_cast<size_t>(n) * bits + 7) / 8;
      for (const std::vector<uint8_t>& idx_values : IndexPatterns(rng, n, bits)) {
        const GuardedBuffer<uint8_t> idx(idx_values);
        std::vector<uint8_t> want(bytes + kCanaryBytes, kScalarFill);
        scalar.pack(idx.data(), n, bits, want.data());
        ASSERT_TRUE(CanaryIntact(want, bytes, kScalarFill));
        std::vector<uint8_t> scalar_back(n);
        scalar.unpack(want.data(), n, bits, scalar_back.data());
        ASSERT_TRUE(SameBytes(idx_values.data(), scalar_back.data(), n)) << "scalar bits=" << bits;
        for (const Kernels* k : simd) {
          SCOPED_TRACE(::testing::Message() << IsaName(k->isa) << " bits=" << bits << " n=" << n);
          std::vector<uint8_t> got(bytes + kCanaryBytes, kSimdFill);
          k->pack(idx.data(), n, bits, got.data());
          EXPECT_TRUE(SameBytes(want.data(), got.data(), bytes));
          EXPECT_TRUE(CanaryIntact(got, bytes, kSimdFill));

          // unpack(pack(x)) == x, reading exactly `bytes` bytes.
          const GuardedBuffer<uint8_t> packed(
              std::vector<uint8_t>(got.begin(), got.begin() + bytes));
          std::vector<uint8_t> back(n + kCanaryBytes, kSimdFill);
          k->unpack(packed.data(), n, bits, back.data());
          EXPECT_TRUE(SameBytes(idx_values.data(), back.data(), n));
          EXPECT_TRUE(CanaryIntact(back, n, kSimdFill));
        }
      }
    }
  }
}

// Unpack of arbitrary bytes (including nonzero padding bits) matches scalar.
TEST(KernelsTest, UnpackMatchesScalar) {
  TQDB_SIMD_KERNELS_OR_SKIP(simd);
  std::mt19937 rng(6);
  const Kernels& scalar = internal::ScalarKernels();
  for (int bits = 1; bits <= 8; ++bits) {
    for (int n : kSizes) {
      const size_t bytes = (static_cast<size_t>(n) * bits + 7) / 8;
      const GuardedBuffer<uint8_t> in(MakeIndices(rng, bytes, 8));
      std::vector<uint8_t> want(n + kCanaryBytes, kScalarFill);
      scalar.unpack(in.data(), n, bits, want.data());
      for (const Kernels* k : simd) {
        std::vector<uint8_t> got(n + kCanaryBytes, kSimdFill);
        k->unpack(in.data(), n, bits, got.data());
        EXPECT_TRUE(SameBytes(want.data(), got.data(), n))
            << IsaName(k->isa) << " bits=" << bits << " n=" << n;
        EXPECT_TRUE(CanaryIntact(got, n, kSimdFill)) << IsaName(k->isa) << " n=" << n;
      }
    }
  }
}

TEST(KernelsTest, LookupMatchesScalar) {
  TQDB_SIMD_KERNELS_OR_SKIP(simd);
  std::mt19937 rng(7);
  const Kernels& scalar = internal::ScalarKernels();
  for (int bits = 1; bits <= 8; ++bits) {
    // 2^bits centroids (random floats, some ±0) padded with 0, as kernels.h requires.
    std::vector<float> table_values = MakeFloats(rng, kTableSize, Data::kRandomFloats);
    std::fill(table_values.begin() + (1 << bits), table_values.end(), 0.0f);
    const GuardedBuffer<float> table(table_values);
    for (float scale : {1.0f, 0.73f}) {
      for (int n : kSizes) {
        for (const std::vector<uint8_t>& idx_values : IndexPatterns(rng, n, bits)) {
          const GuardedBuffer<uint8_t> idx(idx_values);
          std::vector<float> want = FloatOutput(n);
          scalar.lookup(idx.data(), n, table.data(), bits, scale, want.data());
          for (const Kernels* k : simd) {
            std::vector<float> got = FloatOutput(n);
            k->lookup(idx.data(), n, table.data(), bits, scale, got.data());
            EXPECT_TRUE(SameFloats(want.data(), got.data(), n))
                << IsaName(k->isa) << " bits=" << bits << " scale=" << scale << " n=" << n;
            EXPECT_TRUE(CanaryIntact(got, n)) << IsaName(k->isa) << " n=" << n;
          }
        }
      }
    }
  }
}

TEST(KernelsTest, SignPackMatchesScalar) {
  TQDB_SIMD_KERNELS_OR_SKIP(simd);
  std::mt19937 rng(8);
  const Kernels& scalar = internal::ScalarKernels();
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_int_distribution<int> kind(0, 3);
  for (int n : kSizes) {
    for (int trial = 0; trial < 4; ++trial) {
      // A quarter each +0 and −0; the rest normal samples, a quarter of all
      // (last trial) ±denormals instead.
      std::vector<float> v_values(n);
      for (float& v : v_values) {
        const int k = kind(rng);
        if (k == 0) {
          v = 0.0f;
        } else if (k == 1) {
          v = -0.0f;
        } else if (k == 2 && trial == 3) {
          v = std::copysign(1e-40f, g(rng));
        } else {
          v = g(rng);
        }
      }
      const GuardedBuffer<float> v(v_values);
      const size_t bytes = (static_cast<size_t>(n) + 7) / 8;
      std::vector<uint8_t> want(bytes + kCanaryBytes, kScalarFill);
      scalar.sign_pack(v.data(), n, want.data());
      for (const Kernels* k : simd) {
        std::vector<uint8_t> got(bytes + kCanaryBytes, kSimdFill);
        k->sign_pack(v.data(), n, got.data());
        EXPECT_TRUE(SameBytes(want.data(), got.data(), bytes))
            << IsaName(k->isa) << " n=" << n << " trial=" << trial;
        EXPECT_TRUE(CanaryIntact(got, bytes, kSimdFill)) << IsaName(k->isa) << " n=" << n;
      }
    }
  }
}

}  // namespace
}  // namespace tqdb::index
