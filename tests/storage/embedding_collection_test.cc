// EmbeddingCollection against the index layer it is built on: a collection
// must search exactly like index::Search over a CodeBlocks holding the same
// codes (the same codec, the same vectors in the same order), with labels
// mapped from positions to ids. Scores come from the codes alone, so equal
// codes give bit-equal distances and the comparisons below are exact.
#include "storage/embedding_collection.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "index/codec/codec.h"
#include "index/codec/format.h"
#include "common/fp16.h"
#include "index/scan/code_blocks.h"
#include "index/scan/searcher.h"
#include "storage/store.h"
#include "tests/index/test_data.h"

namespace tqdb::storage {
namespace {

using index::Metric;
using index::testing::Gaussian;

constexpr size_t kN = 2000;
constexpr uint64_t kCodecSeed = 3;  // not the default, so the seed must reach the codec
constexpr size_t kQueries = 16;

// Ids unequal to positions: 1000, 1007, 1014, …
std::vector<uint64_t> Ids(size_t n, uint64_t first = 1000) {
  std::vector<uint64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = first + 7 * i;
  return ids;
}

std::shared_ptr<const index::Codec> MakeCodec(int dim, const std::string& name = "tq4") {
  absl::StatusOr<index::Format> format = index::ParseFormat(name, dim, kCodecSeed);
  EXPECT_OK(format);
  absl::StatusOr<std::shared_ptr<const index::Codec>> codec = index::Codec::Create(*format);
  EXPECT_OK(codec);
  return *codec;
}

EmbeddingCollectionConfig Config(int dim, Metric metric, RawType keep_raw = RawType::kNone,
                                 std::vector<float> center = {}, const std::string& format = "tq4") {
  EmbeddingCollectionConfig c;
  c.dim = dim;
  c.metric = metric;
  c.format = format;
  c.keep_raw = keep_raw;
  c.center = std::move(center);
  c.seed = kCodecSeed;
  return c;
}

// Rows of a row-major n × dim array.
std::vector<float> Rows(const std::vector<float>& x, int dim, size_t begin, size_t end) {
  return std::vector<float>(x.begin() + begin * dim, x.begin() + end * dim);
}

// Unit vectors, normalized the way a cosine collection stores them: the norm
// accumulated in double, one float reciprocal multiplied in.
std::vector<float> Normalized(std::vector<float> x, int dim) {
  for (size_t i = 0; i < x.size() / dim; ++i) {
    double norm = 0;
    for (int j = 0; j < dim; ++j) norm += double{x[i * dim + j]} * x[i * dim + j];
    const float inv = static_cast<float>(1 / std::sqrt(norm));
    for (int j = 0; j < dim; ++j) x[i * dim + j] *= inv;
  }
  return x;
}

std::vector<float> Fp16Rounded(std::vector<float> x) {
  for (float& v : x) v = HalfToFloat(FloatToHalf(v));
  return x;
}

struct Hits {
  std::vector<int64_t> labels;
  std::vector<float> distances;
};

// The reference: a CodeBlocks with positions mapped to ids, optional raw
// vectors (row = position) and skip flags.
struct Reference {
  std::unique_ptr<index::CodeBlocks> blocks;
  std::vector<uint64_t> ids;
  std::vector<float> raw;
  std::vector<uint8_t> skip;

  Reference(int dim, std::vector<float> center = {}, const std::string& format = "tq4") {
    auto created = index::CodeBlocks::Create(MakeCodec(dim, format), std::move(center));
    EXPECT_OK(created);
    blocks = *std::move(created);
  }

  // Appends vectors with CodeBlocks::Append (codes of x − μ, exact ‖x − μ‖²).
  void Append(const std::vector<uint64_t>& new_ids, const std::vector<float>& x) {
    EXPECT_OK(blocks->Append(x.data(), new_ids.size()));
    Track(new_ids, x);
  }

  // Appends the codes of x − μ with AppendCodes, whose ‖x − μ‖² comes from the
  // code (its stored norm), as for codes read back from disk.
  void AppendAsCodes(const std::vector<uint64_t>& new_ids, const std::vector<float>& x) {
    const int d = blocks->codec().dim();
    std::vector<float> centered = x;
    if (!blocks->center().empty()) {
      for (size_t i = 0; i < new_ids.size(); ++i) {
        for (int j = 0; j < d; ++j) centered[i * d + j] -= blocks->center()[j];
      }
    }
    std::vector<uint8_t> codes(new_ids.size() * blocks->codec().code_bytes());
    EXPECT_OK(blocks->codec().Encode(centered.data(), new_ids.size(), codes.data()));
    blocks->AppendCodes(codes.data(), new_ids.size());
    Track(new_ids, x);
  }

  void Track(const std::vector<uint64_t>& new_ids, const std::vector<float>& x) {
    ids.insert(ids.end(), new_ids.begin(), new_ids.end());
    raw.insert(raw.end(), x.begin(), x.end());
    skip.resize(ids.size(), 0);
  }

  // Marks the position holding `id` (its latest copy) as skipped.
  void Kill(uint64_t id) {
    for (size_t i = ids.size(); i-- > 0;) {
      if (ids[i] == id && !skip[i]) {
        skip[i] = 1;
        return;
      }
    }
    ADD_FAILURE() << "no live position holds id " << id;
  }

  Hits Search(const std::vector<float>& queries, Metric metric, int k, int oversample = 0,
              const std::vector<float>* raw_override = nullptr) const {
    const size_t nq = queries.size() / blocks->codec().dim();
    index::SearchOptions o;
    o.k = k;
    o.oversample = oversample;
    o.metric = metric;
    const bool any_skip = std::find(skip.begin(), skip.end(), 1) != skip.end();
    o.skip = any_skip ? skip.data() : nullptr;
    const float* r = oversample == 0 ? nullptr : (raw_override ? raw_override : &raw)->data();
    Hits h{std::vector<int64_t>(nq * k), std::vector<float>(nq * k)};
    EXPECT_OK(index::Search(*blocks, queries, o, r, h.labels.data(), h.distances.data()));
    for (int64_t& label : h.labels) {
      if (label >= 0) label = static_cast<int64_t>(ids[label]);
    }
    return h;
  }
};

Hits SearchCollection(EmbeddingCollection& c, const std::vector<float>& queries, int k,
                      int oversample = 0) {
  Hits h;
  EXPECT_OK(c.Search(queries, {.k = k, .oversample = oversample}, &h.labels, &h.distances));
  return h;
}

// Every result is a real id, best first.
void ExpectWellFormed(const Hits& h, int k, Metric metric, const std::set<int64_t>& live) {
  ASSERT_EQ(h.labels.size(), h.distances.size());
  for (size_t q = 0; q < h.labels.size() / k; ++q) {
    for (int i = 0; i < k; ++i) {
      EXPECT_TRUE(live.count(h.labels[q * k + i])) << h.labels[q * k + i];
      if (i == 0) continue;
      const float prev = h.distances[q * k + i - 1], cur = h.distances[q * k + i];
      if (metric == Metric::kL2) {
        EXPECT_LE(prev, cur);
      } else {
        EXPECT_GE(prev, cur);
      }
    }
  }
}

class EmbeddingCollectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::path(::testing::TempDir()) / "tqdb_embedding_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    ASSERT_NO_FATAL_FAILURE(Reopen());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // (Re)opens the store; collection handles taken before are closed.
  void Reopen() {
    store_.reset();
    StoreOptions options;
    options.sync = SyncPolicy::kNone;  // durability is not what these tests check
    auto opened = Store::Open(options, dir_);
    ASSERT_OK(opened);
    store_ = *std::move(opened);
  }

  std::shared_ptr<EmbeddingCollection> Create(const std::string& name,
                                              const EmbeddingCollectionConfig& config) {
    auto c = store_->CreateEmbeddingCollection(name, config);
    EXPECT_OK(c);
    return c.ok() ? *c : nullptr;
  }

  std::shared_ptr<EmbeddingCollection> Get(const std::string& name) {
    auto c = store_->GetEmbeddingCollection(name);
    EXPECT_OK(c);
    return c.ok() ? *c : nullptr;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

// --- Search equals index::Search ---------------------------------------------

// Parameters: dim, metric and format (tq4 takes the fast-scan kernels, tq8
// the float pair tables).
class EmbeddingSearchTest
    : public EmbeddingCollectionTest,
      public ::testing::WithParamInterface<std::tuple<int, Metric, std::string>> {
 protected:
  int dim() const { return std::get<0>(GetParam()); }
  Metric metric() const { return std::get<1>(GetParam()); }
  const std::string& format() const { return std::get<2>(GetParam()); }
  // What the collection stores for x: unit vectors for cosine.
  std::vector<float> Stored(const std::vector<float>& x) const {
    return metric() == Metric::kCosine ? Normalized(x, dim()) : x;
  }
  // The reference for x. Inner products over codes depend on the codes
  // alone; L2 also uses ‖x‖², which a collection (like anything rebuilt from
  // disk) takes from the code, so its reference appends codes too.
  void Fill(Reference* ref, const std::vector<uint64_t>& ids, const std::vector<float>& x) const {
    if (metric() == Metric::kL2) {
      ref->AppendAsCodes(ids, Stored(x));
    } else {
      ref->Append(ids, Stored(x));
    }
  }
};

TEST_P(EmbeddingSearchTest, CodeScoresEqualIndexSearch) {
  const std::vector<float> x = Gaussian(kN * dim(), 1);
  const std::vector<uint64_t> ids = Ids(kN);
  auto c = Create("e", Config(dim(), metric(), RawType::kNone, {}, format()));
  ASSERT_NE(c, nullptr);
  // Several upserts: positions continue across calls.
  for (size_t begin = 0; begin < kN; begin += 500) {
    const std::vector<uint64_t> part(ids.begin() + begin, ids.begin() + begin + 500);
    ASSERT_OK(c->Upsert(part, Rows(x, dim(), begin, begin + 500)));
  }
  EXPECT_EQ(c->Count(), kN);
  auto stats = c->Stats();
  ASSERT_OK(stats);
  EXPECT_EQ(stats->count, kN);
  EXPECT_EQ(stats->code_bytes, kN * MakeCodec(dim(), format())->code_bytes());

  Reference ref(dim(), {}, format());
  Fill(&ref, ids, x);
  const std::vector<float> queries = Gaussian(kQueries * dim(), 2);
  const std::set<int64_t> live(ids.begin(), ids.end());
  for (int k : {1, 10, 37}) {
    SCOPED_TRACE(k);
    const Hits got = SearchCollection(*c, queries, k);
    const Hits want = ref.Search(queries, metric(), k);
    EXPECT_EQ(got.labels, want.labels);
    EXPECT_EQ(got.distances, want.distances);
    ExpectWellFormed(got, k, metric(), live);
  }

  if (metric() != Metric::kL2) return;
  // Against a CodeBlocks filled by Append (exact ‖x‖²), L2 distances differ
  // only by the norm the code stores: ‖x‖ is a float sum of dim squares
  // (relative error ≤ dim·ε) squared again (2ε more), plus the rounding of
  // 2·⟨q, x̂⟩ − ‖x‖² and of ‖q‖² minus that (ε of each magnitude).
  Reference exact(dim(), {}, format());
  exact.Append(ids, x);
  const Hits got = SearchCollection(*c, queries, 10);
  const Hits want = exact.Search(queries, metric(), 10);
  constexpr double kEps = std::numeric_limits<float>::epsilon();
  for (size_t i = 0; i < got.labels.size(); ++i) {
    if (got.labels[i] != want.labels[i]) continue;  // a near tie may swap
    const size_t p = (static_cast<uint64_t>(got.labels[i]) - 1000) / 7;
    double xx = 0, qq = 0;
    for (int j = 0; j < dim(); ++j) {
      xx += double{x[p * dim() + j]} * x[p * dim() + j];
      qq += double{queries[i / 10 * dim() + j]} * queries[i / 10 * dim() + j];
    }
    const double tol = (dim() + 2) * kEps * xx + 2 * kEps * (qq + xx + 2 * want.distances[i]);
    EXPECT_NEAR(got.distances[i], want.distances[i], tol) << "result " << i;
  }
}

TEST_P(EmbeddingSearchTest, RerankWithF32RawEqualsIndexSearch) {
  const std::vector<float> x = Gaussian(kN * dim(), 3);
  const std::vector<uint64_t> ids = Ids(kN);
  auto c = Create("e", Config(dim(), metric(), RawType::kF32, {}, format()));
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->Upsert(ids, x));

  // Get returns the stored vectors bit for bit.
  std::vector<float> got_x;
  std::vector<bool> found;
  ASSERT_OK(c->Get(ids, &got_x, &found));
  EXPECT_EQ(found, std::vector<bool>(kN, true));
  EXPECT_EQ(got_x, Stored(x));

  Reference ref(dim(), {}, format());
  Fill(&ref, ids, x);
  const std::vector<float> queries = Gaussian(kQueries * dim(), 4);
  const Hits got = SearchCollection(*c, queries, 10, 10);
  const Hits want = ref.Search(queries, metric(), 10, 10);
  EXPECT_EQ(got.labels, want.labels);
  EXPECT_EQ(got.distances, want.distances);
  ExpectWellFormed(got, 10, metric(), std::set<int64_t>(ids.begin(), ids.end()));
  // Oversample 0 still ranks by code scores.
  const Hits codes_only = SearchCollection(*c, queries, 10, 0);
  EXPECT_EQ(codes_only.labels, ref.Search(queries, metric(), 10).labels);
}

std::string ParamName(
    const ::testing::TestParamInfo<std::tuple<int, Metric, std::string>>& info) {
  const Metric m = std::get<1>(info.param);
  const char* metric = m == Metric::kInnerProduct ? "IP" : m == Metric::kCosine ? "Cosine" : "L2";
  return std::string(metric) + "Dim" + std::to_string(std::get<0>(info.param)) +
         std::get<2>(info.param);
}

INSTANTIATE_TEST_SUITE_P(Embedding, EmbeddingSearchTest,
                         ::testing::Combine(::testing::Values(64, 96),
                                            ::testing::Values(Metric::kInnerProduct,
                                                              Metric::kCosine, Metric::kL2),
                                            ::testing::Values("tq4", "tq8")),
                         ParamName);

// --- Raw vectors and Get -----------------------------------------------------

TEST_F(EmbeddingCollectionTest, F16RawIsRoundedAndRerankUsesIt) {
  constexpr int kDim = 96;
  const std::vector<float> x = Gaussian(kN * kDim, 5);
  const std::vector<uint64_t> ids = Ids(kN);
  auto c = Create("e", Config(kDim, Metric::kL2, RawType::kF16));
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->Upsert(ids, x));

  const std::vector<float> rounded = Fp16Rounded(x);
  ASSERT_NE(rounded, x);  // the test would prove nothing otherwise
  std::vector<float> got;
  std::vector<bool> found;
  ASSERT_OK(c->Get(ids, &got, &found));
  EXPECT_EQ(got, rounded);

  // Codes are of the full-precision vectors; reranking reads the fp16 ones.
  Reference ref(kDim);
  ref.AppendAsCodes(ids, x);
  const std::vector<float> queries = Gaussian(kQueries * kDim, 6);
  const Hits h = SearchCollection(*c, queries, 10, 10);
  const Hits want = ref.Search(queries, Metric::kL2, 10, 10, &rounded);
  EXPECT_EQ(h.labels, want.labels);
  EXPECT_EQ(h.distances, want.distances);

  // fp16 raw vectors are read back from disk the same.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  c = Get("e");
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->Get(ids, &got, &found));
  EXPECT_EQ(got, rounded);
  const Hits again = SearchCollection(*c, queries, 10, 10);
  EXPECT_EQ(again.labels, want.labels);
  EXPECT_EQ(again.distances, want.distances);
}

TEST_F(EmbeddingCollectionTest, GetWithoutRawDecodesCodes) {
  constexpr int kDim = 96, kCount = 300;
  const std::vector<float> x = Gaussian(kCount * kDim, 7);
  const std::vector<uint64_t> ids = Ids(kCount);
  const std::shared_ptr<const index::Codec> codec = MakeCodec(kDim);
  std::vector<float> center = Gaussian(kDim, 8, 0.5f);
  for (bool centered : {false, true}) {
    SCOPED_TRACE(centered ? "centered" : "no center");
    const std::vector<float> mu = centered ? center : std::vector<float>();
    auto c = Create(centered ? "centered" : "plain", Config(kDim, Metric::kInnerProduct,
                                                            RawType::kNone, mu));
    ASSERT_NE(c, nullptr);
    ASSERT_OK(c->Upsert(ids, x));

    // Decode(Encode(x − μ)) + μ.
    std::vector<float> shifted = x;
    for (size_t i = 0; i < kCount && centered; ++i) {
      for (int j = 0; j < kDim; ++j) shifted[i * kDim + j] -= mu[j];
    }
    std::vector<uint8_t> codes(kCount * codec->code_bytes());
    ASSERT_OK(codec->Encode(shifted.data(), kCount, codes.data()));
    std::vector<float> want(kCount * kDim);
    codec->Decode(codes.data(), kCount, want.data());
    for (size_t i = 0; i < kCount && centered; ++i) {
      for (int j = 0; j < kDim; ++j) want[i * kDim + j] += mu[j];
    }

    // Existing and missing ids interleaved.
    const std::vector<uint64_t> ask = {ids[5], 1, ids[0], ids[kCount - 1], ids[5] + 1, ids[77]};
    std::vector<float> got;
    std::vector<bool> found;
    ASSERT_OK(c->Get(ask, &got, &found));
    EXPECT_EQ(found, (std::vector<bool>{true, false, true, true, false, true}));
    ASSERT_EQ(got.size(), ask.size() * kDim);
    const std::vector<std::vector<float>> rows = {
        Rows(want, kDim, 5, 6), std::vector<float>(kDim, 0.0f), Rows(want, kDim, 0, 1),
        Rows(want, kDim, kCount - 1, kCount), std::vector<float>(kDim, 0.0f),
        Rows(want, kDim, 77, 78)};
    for (size_t r = 0; r < rows.size(); ++r) {
      EXPECT_EQ(Rows(got, kDim, r, r + 1), rows[r]) << "row " << r;
    }
    // The decoded vectors are not the inputs (the test tells them apart).
    EXPECT_NE(Rows(got, kDim, 0, 1), Rows(x, kDim, 5, 6));

    ASSERT_OK(c->Get({}, &got, &found));
    EXPECT_TRUE(got.empty());
    EXPECT_TRUE(found.empty());
  }
}

// --- Upsert and Delete -------------------------------------------------------

TEST_F(EmbeddingCollectionTest, UpsertReplacesWithoutStaleCopies) {
  constexpr int kDim = 64;
  for (Metric metric : {Metric::kInnerProduct, Metric::kL2}) {
    SCOPED_TRACE(metric == Metric::kL2 ? "L2" : "IP");
    const std::string name = metric == Metric::kL2 ? "l2" : "ip";
    const std::vector<float> x = Gaussian(kN * kDim, 9);
    const std::vector<uint64_t> ids = Ids(kN);
    auto c = Create(name, Config(kDim, metric, RawType::kF32));
    ASSERT_NE(c, nullptr);
    ASSERT_OK(c->Upsert(ids, x));

    // Replace some vectors by their negation.
    const std::vector<size_t> positions = {0, 3, 31, 32, 500, 1024, 1999};
    std::vector<uint64_t> replaced_ids;
    std::vector<float> old_x, new_x;
    for (size_t p : positions) {
      replaced_ids.push_back(ids[p]);
      const std::vector<float> row = Rows(x, kDim, p, p + 1);
      old_x.insert(old_x.end(), row.begin(), row.end());
      for (float v : row) new_x.push_back(-v);
    }
    ASSERT_OK(c->Upsert(replaced_ids, new_x));
    EXPECT_EQ(c->Count(), kN);
    std::vector<float> got;
    std::vector<bool> found;
    ASSERT_OK(c->Get(replaced_ids, &got, &found));
    EXPECT_EQ(got, new_x);

    // The store appends the new copies and skips the old ones.
    Reference ref(kDim);
    ref.AppendAsCodes(ids, x);
    for (uint64_t id : replaced_ids) ref.Kill(id);
    ref.AppendAsCodes(replaced_ids, new_x);

    // Every vector ranked: each id exactly once, at its new score.
    const int k = static_cast<int>(kN);
    const Hits all = SearchCollection(*c, old_x, k);
    const Hits want = ref.Search(old_x, metric, k);
    EXPECT_EQ(all.labels, want.labels);
    EXPECT_EQ(all.distances, want.distances);
    for (size_t q = 0; q < positions.size(); ++q) {
      const std::vector<int64_t> row(all.labels.begin() + q * k, all.labels.begin() + (q + 1) * k);
      EXPECT_EQ(std::set<int64_t>(row.begin(), row.end()).size(), kN) << "query " << q;
      // The replaced id ranks where −x ranks against x: last, since the
      // stale copy (x itself) would be first.
      const auto at = std::find(row.begin(), row.end(), static_cast<int64_t>(replaced_ids[q]));
      ASSERT_NE(at, row.end());
      EXPECT_EQ(at - row.begin(), k - 1) << "query " << q;
    }
    // With exact reranking, the replaced id's distance is that of −x.
    const Hits reranked = SearchCollection(*c, new_x, 1, 10);
    for (size_t q = 0; q < positions.size(); ++q) {
      EXPECT_EQ(reranked.labels[q], static_cast<int64_t>(replaced_ids[q]));
      double ip = 0;
      for (int j = 0; j < kDim; ++j) ip += double{new_x[q * kDim + j]} * new_x[q * kDim + j];
      // Self-distance: ‖x‖² (IP) or 0 (L2), up to float summation error
      // (≤ dim·ε·‖x‖², standard bound for a float dot product).
      const double tol = kDim * std::numeric_limits<float>::epsilon() * ip;
      EXPECT_NEAR(reranked.distances[q], metric == Metric::kL2 ? 0.0 : ip, tol);
    }
  }
}

TEST_F(EmbeddingCollectionTest, DeleteHidesIdsAndCountsWhatExisted) {
  constexpr int kDim = 64;
  const std::vector<float> x = Gaussian(kN * kDim, 10);
  const std::vector<uint64_t> ids = Ids(kN);
  auto c = Create("e", Config(kDim, Metric::kInnerProduct));
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->Upsert(ids, x));
  Reference ref(kDim);
  ref.Append(ids, x);

  // 200 existing ids (one repeated), and ids that never existed.
  std::vector<uint64_t> doomed;
  for (size_t p = 0; p < kN; p += 10) doomed.push_back(ids[p]);
  std::vector<uint64_t> request = doomed;
  request.push_back(doomed[3]);
  request.push_back(1);
  request.push_back(ids[1] + 1);
  auto deleted = c->Delete(request);
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, doomed.size());
  EXPECT_EQ(c->Count(), kN - doomed.size());
  for (uint64_t id : doomed) ref.Kill(id);

  // Deleting again finds nothing.
  deleted = c->Delete(doomed);
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, 0u);
  deleted = c->Delete({});
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, 0u);
  EXPECT_EQ(c->Count(), kN - doomed.size());

  std::vector<float> got;
  std::vector<bool> found;
  ASSERT_OK(c->Get({doomed[0], ids[1], doomed[7]}, &got, &found));
  EXPECT_EQ(found, (std::vector<bool>{false, true, false}));

  // Queries equal to deleted vectors: their ids would rank first.
  std::vector<float> queries;
  for (size_t q = 0; q < kQueries; ++q) {
    const std::vector<float> row = Rows(x, kDim, 10 * q, 10 * q + 1);
    queries.insert(queries.end(), row.begin(), row.end());
  }
  const int k = static_cast<int>(kN);  // all survivors, then −1 padding
  const Hits h = SearchCollection(*c, queries, k);
  const Hits want = ref.Search(queries, Metric::kInnerProduct, k);
  EXPECT_EQ(h.labels, want.labels);
  EXPECT_EQ(h.distances, want.distances);
  const std::set<int64_t> gone(doomed.begin(), doomed.end());
  const size_t live = kN - doomed.size();
  for (size_t q = 0; q < kQueries; ++q) {
    for (size_t i = 0; i < kN; ++i) {
      const int64_t label = h.labels[q * kN + i];
      EXPECT_EQ(gone.count(label), 0u) << "deleted id " << label << " returned";
      EXPECT_EQ(label == -1, i >= live);
    }
  }

  // An id above the largest is a bad request, not a miss.
  EXPECT_STATUS_CODE(c->Delete({kMaxEmbeddingId + 1}), absl::StatusCode::kInvalidArgument);
  // Deleted ids can come back.
  ASSERT_OK(c->Upsert({doomed[0]}, Rows(x, kDim, 0, 1)));
  EXPECT_EQ(c->Count(), live + 1);
}

TEST_F(EmbeddingCollectionTest, CompactionAfterManyDeletesMatchesAFreshCollection) {
  constexpr int kDim = 64;
  constexpr size_t kTotal = 3000;
  const std::vector<float> x = Gaussian(kTotal * kDim, 11);
  const std::vector<uint64_t> ids = Ids(kTotal);
  auto c = Create("e", Config(kDim, Metric::kL2, RawType::kF32));
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->Upsert(ids, x));
  auto full = c->Stats();
  ASSERT_OK(full);

  // Delete the odd positions: first 1000 (below the 1024 that compaction
  // needs), then 500 more (1500 dead ≥ 1024 and ≥ a quarter of 3000).
  std::vector<uint64_t> odd, survivors;
  std::vector<float> survivor_x;
  for (size_t p = 0; p < kTotal; ++p) {
    if (p % 2) {
      odd.push_back(ids[p]);
    } else {
      survivors.push_back(ids[p]);
      const std::vector<float> row = Rows(x, kDim, p, p + 1);
      survivor_x.insert(survivor_x.end(), row.begin(), row.end());
    }
  }
  const std::vector<float> queries = Gaussian(kQueries * kDim, 12);
  auto deleted = c->Delete(std::vector<uint64_t>(odd.begin(), odd.begin() + 1000));
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, 1000u);
  auto partial = c->Stats();
  ASSERT_OK(partial);
  EXPECT_EQ(partial->memory_bytes, full->memory_bytes);  // dead slots still held
  Reference ref(kDim);
  ref.AppendAsCodes(ids, x);
  for (size_t i = 0; i < 1000; ++i) ref.Kill(odd[i]);
  Hits h = SearchCollection(*c, queries, 10);
  Hits want = ref.Search(queries, Metric::kL2, 10);
  EXPECT_EQ(h.labels, want.labels);
  EXPECT_EQ(h.distances, want.distances);

  deleted = c->Delete(std::vector<uint64_t>(odd.begin() + 1000, odd.end()));
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, 500u);
  EXPECT_EQ(c->Count(), 1500u);

  auto fresh = Create("fresh", Config(kDim, Metric::kL2, RawType::kF32));
  ASSERT_NE(fresh, nullptr);
  ASSERT_OK(fresh->Upsert(survivors, survivor_x));
  // Compacted: the memory of 1500 slots, as the fresh collection holds.
  auto compacted = c->Stats();
  auto fresh_stats = fresh->Stats();
  ASSERT_OK(compacted);
  ASSERT_OK(fresh_stats);
  EXPECT_EQ(compacted->memory_bytes, fresh_stats->memory_bytes);
  EXPECT_LT(compacted->memory_bytes, full->memory_bytes);

  for (int oversample : {0, 4}) {
    SCOPED_TRACE(oversample);
    for (int k : {10, 1500, 1600}) {
      h = SearchCollection(*c, queries, k, oversample);
      want = SearchCollection(*fresh, queries, k, oversample);
      EXPECT_EQ(h.labels, want.labels) << "k " << k;
      EXPECT_EQ(h.distances, want.distances) << "k " << k;
    }
  }
  std::vector<float> got, fresh_got;
  std::vector<bool> found, fresh_found;
  ASSERT_OK(c->Get(ids, &got, &found));
  ASSERT_OK(fresh->Get(ids, &fresh_got, &fresh_found));
  EXPECT_EQ(found, fresh_found);
  EXPECT_EQ(got, fresh_got);

  // The id → slot map was rebuilt: replacing and deleting still hit the
  // right vectors.
  const std::vector<float> v = Gaussian(kDim, 13);
  ASSERT_OK(c->Upsert({survivors[700]}, v));
  ASSERT_OK(fresh->Upsert({survivors[700]}, v));
  deleted = c->Delete({survivors[3], odd[5]});
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, 1u);
  ASSERT_OK(fresh->Delete({survivors[3]}));
  ASSERT_OK(c->Get({survivors[700], survivors[3], survivors[4]}, &got, &found));
  EXPECT_EQ(found, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(Rows(got, kDim, 0, 1), v);
  EXPECT_EQ(Rows(got, kDim, 2, 3), Rows(x, kDim, 8, 9));
  h = SearchCollection(*c, queries, 1500);
  want = SearchCollection(*fresh, queries, 1500);
  EXPECT_EQ(h.labels, want.labels);
  EXPECT_EQ(h.distances, want.distances);
}

// Exact ties (equal codes) rank by the lower id, as searcher.h ranks them by
// the lower label, whatever order the ids were written in: otherwise results
// would depend on write history and change when a reopen reloads the
// collection in id order.
TEST_F(EmbeddingCollectionTest, TiesRankByLowerIdInAnyWriteOrder) {
  constexpr int kDim = 64;
  const std::vector<float> v = Gaussian(kDim, 30);
  const std::vector<float> others = Gaussian(20 * kDim, 31, 0.1f);  // far below v·v
  auto c = Create("e", Config(kDim, Metric::kInnerProduct));
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->Upsert(Ids(20, 100), others));
  ASSERT_OK(c->Upsert({9}, v));  // the higher id first
  ASSERT_OK(c->Upsert({3}, v));
  Hits h = SearchCollection(*c, v, 2);
  ASSERT_EQ(h.distances[0], h.distances[1]);  // the same vector: a real tie
  EXPECT_EQ(h.labels, (std::vector<int64_t>{3, 9}));

  ASSERT_NO_FATAL_FAILURE(Reopen());
  c = Get("e");
  ASSERT_NE(c, nullptr);
  const Hits reopened = SearchCollection(*c, v, 2);
  EXPECT_EQ(reopened.labels, (std::vector<int64_t>{3, 9}));
  EXPECT_EQ(reopened.distances, h.distances);
}

// --- Persistence ---------------------------------------------------------------

TEST_F(EmbeddingCollectionTest, ReopenGivesIdenticalResults) {
  constexpr int kDim = 96;
  const std::vector<float> x = Gaussian(kN * kDim, 14);
  const std::vector<uint64_t> ids = Ids(kN);
  const std::vector<float> center = Gaussian(kDim, 15, 0.25f);
  auto plain = Create("plain", Config(kDim, Metric::kInnerProduct));
  auto raw = Create("raw", Config(kDim, Metric::kL2, RawType::kF16, center));
  auto cosine = Create("cosine", Config(kDim, Metric::kCosine, RawType::kF32));
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(raw, nullptr);
  ASSERT_NE(cosine, nullptr);
  // Writes that leave dead slots in memory: replacements and deletes.
  const std::vector<uint64_t> changed = {ids[1], ids[100], ids[1500]};
  const std::vector<float> changed_x = Gaussian(changed.size() * kDim, 16);
  const std::vector<uint64_t> removed = {ids[2], ids[3], ids[1999]};
  for (EmbeddingCollection* c : {plain.get(), raw.get(), cosine.get()}) {
    ASSERT_OK(c->Upsert(ids, x));
    ASSERT_OK(c->Upsert(changed, changed_x));
    ASSERT_OK(c->Delete(removed));
  }

  const std::vector<float> queries = Gaussian(kQueries * kDim, 17);
  struct Snapshot {
    Hits hits, reranked;
    std::vector<float> got;
    std::vector<bool> found;
    uint64_t count;
  };
  auto take = [&](EmbeddingCollection& c) {
    Snapshot s;
    s.hits = SearchCollection(c, queries, 20);
    if (c.config().keep_raw != RawType::kNone) s.reranked = SearchCollection(c, queries, 20, 5);
    EXPECT_OK(c.Get(ids, &s.got, &s.found));
    s.count = c.Count();
    return s;
  };
  const std::vector<std::string> names = {"plain", "raw", "cosine"};
  std::vector<Snapshot> before = {take(*plain), take(*raw), take(*cosine)};
  plain.reset();
  raw.reset();
  cosine.reset();
  ASSERT_NO_FATAL_FAILURE(Reopen());
  for (size_t i = 0; i < names.size(); ++i) {
    SCOPED_TRACE(names[i]);
    auto c = Get(names[i]);
    ASSERT_NE(c, nullptr);
    const Snapshot after = take(*c);
    EXPECT_EQ(after.count, kN - removed.size());
    EXPECT_EQ(after.count, before[i].count);
    EXPECT_EQ(after.hits.labels, before[i].hits.labels);
    EXPECT_EQ(after.hits.distances, before[i].hits.distances);
    EXPECT_EQ(after.reranked.labels, before[i].reranked.labels);
    EXPECT_EQ(after.reranked.distances, before[i].reranked.distances);
    EXPECT_EQ(after.found, before[i].found);
    EXPECT_EQ(after.got, before[i].got);
  }
}

// --- Centering ---------------------------------------------------------------

TEST_F(EmbeddingCollectionTest, CenteredCollectionSearchesLikeCenteredCodeBlocks) {
  constexpr int kDim = 64;
  // All-positive data with a per-coordinate offset, as SIFT descriptors.
  std::vector<float> x = Gaussian(kN * kDim, 18);
  for (size_t i = 0; i < kN; ++i) {
    for (int j = 0; j < kDim; ++j) x[i * kDim + j] += 4.0f + 0.05f * j;
  }
  std::vector<float> mean(kDim, 0.0f);
  for (int j = 0; j < kDim; ++j) {
    double sum = 0;
    for (size_t i = 0; i < kN; ++i) sum += x[i * kDim + j];
    mean[j] = static_cast<float>(sum / kN);
  }
  const std::vector<uint64_t> ids = Ids(kN);
  const std::vector<float> queries = Gaussian(kQueries * kDim, 19);
  for (Metric metric : {Metric::kInnerProduct, Metric::kL2}) {
    SCOPED_TRACE(metric == Metric::kL2 ? "L2" : "IP");
    auto c = Create(metric == Metric::kL2 ? "l2" : "ip",
                    Config(kDim, metric, RawType::kNone, mean));
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->config().center, mean);
    ASSERT_OK(c->Upsert(ids, x));
    Reference ref(kDim, mean);
    if (metric == Metric::kL2) {
      ref.AppendAsCodes(ids, x);
    } else {
      ref.Append(ids, x);
    }
    const Hits h = SearchCollection(*c, queries, 10);
    const Hits want = ref.Search(queries, metric, 10);
    EXPECT_EQ(h.labels, want.labels);
    EXPECT_EQ(h.distances, want.distances);
    // Distances are in the original coordinates: the scores of the same
    // codes in an uncentered CodeBlocks, shifted back. IP: ⟨q, x − μ⟩ + ⟨q, μ⟩
    // (one float addition: a few ulps); L2: ‖(q − μ) − (x − μ)‖², the same
    // arithmetic as scoring q − μ against the codes of x − μ.
    std::vector<float> shifted_x = x, shifted_q = queries;
    for (size_t i = 0; i < kN; ++i) {
      for (int j = 0; j < kDim; ++j) shifted_x[i * kDim + j] -= mean[j];
    }
    for (size_t i = 0; i < kQueries; ++i) {
      for (int j = 0; j < kDim; ++j) shifted_q[i * kDim + j] -= mean[j];
    }
    Reference plain(kDim);
    plain.AppendAsCodes(ids, shifted_x);
    if (metric == Metric::kL2) {
      const Hits moved = plain.Search(shifted_q, metric, 10);
      EXPECT_EQ(h.labels, moved.labels);
      EXPECT_EQ(h.distances, moved.distances);
    } else {
      const Hits unshifted = plain.Search(queries, metric, 10);
      EXPECT_EQ(h.labels, unshifted.labels);  // ⟨q, μ⟩ is one constant per query
      for (size_t q = 0; q < kQueries; ++q) {
        double shift = 0;
        for (int j = 0; j < kDim; ++j) shift += double{queries[q * kDim + j]} * mean[j];
        for (size_t i = q * 10; i < (q + 1) * 10; ++i) {
          const double want_d = double{unshifted.distances[i]} + shift;
          const double tol = 4 * std::numeric_limits<float>::epsilon() *
                             (std::abs(unshifted.distances[i]) + std::abs(shift));
          EXPECT_NEAR(h.distances[i], want_d, tol);
        }
      }
    }
  }
}

// --- Padding -----------------------------------------------------------------

TEST_F(EmbeddingCollectionTest, FewerThanKPadsWithMinusOne) {
  constexpr int kDim = 64;
  const std::vector<float> x = Gaussian(3 * kDim, 20);
  const std::vector<uint64_t> ids = {70, 5, 900};
  const std::vector<float> queries = Gaussian(2 * kDim, 21);
  for (Metric metric : {Metric::kInnerProduct, Metric::kCosine, Metric::kL2}) {
    const std::string name = metric == Metric::kL2 ? "l2" : metric == Metric::kCosine ? "cos" : "ip";
    SCOPED_TRACE(name);
    auto c = Create(name, Config(kDim, metric, RawType::kF32));
    ASSERT_NE(c, nullptr);
    const float pad = metric == Metric::kL2 ? std::numeric_limits<float>::max()
                                            : std::numeric_limits<float>::lowest();
    // Empty: all padding.
    const Hits empty = SearchCollection(*c, queries, 4);
    EXPECT_EQ(empty.labels, std::vector<int64_t>(8, -1));
    EXPECT_EQ(empty.distances, std::vector<float>(8, pad));

    ASSERT_OK(c->Upsert(ids, x));
    for (int oversample : {0, 3}) {
      const Hits h = SearchCollection(*c, queries, 10, oversample);
      ASSERT_EQ(h.labels.size(), 20u);
      for (size_t q = 0; q < 2; ++q) {
        const std::set<int64_t> top(h.labels.begin() + q * 10, h.labels.begin() + q * 10 + 3);
        EXPECT_EQ(top, (std::set<int64_t>{5, 70, 900}));
        for (size_t i = 3; i < 10; ++i) {
          EXPECT_EQ(h.labels[q * 10 + i], -1);
          EXPECT_EQ(h.distances[q * 10 + i], pad);
        }
      }
    }
  }
}

// A keep_raw collection accepts reranked searches whatever it holds: when it
// is empty (new, or emptied by deletes and compacted) they find nothing, as
// code-only searches do, rather than failing.
TEST_F(EmbeddingCollectionTest, RerankOfAnEmptyCollectionPads) {
  constexpr int kDim = 64;
  constexpr size_t kCount = 1100;  // ≥ 1024 deletes: compaction runs
  const std::vector<float> queries = Gaussian(2 * kDim, 29);
  auto c = Create("e", Config(kDim, Metric::kL2, RawType::kF16));
  ASSERT_NE(c, nullptr);
  const std::vector<int64_t> none(8, -1);
  const std::vector<float> pad(8, std::numeric_limits<float>::max());
  Hits h;
  EXPECT_OK(c->Search(queries, {.k = 4, .oversample = 2}, &h.labels, &h.distances));
  EXPECT_EQ(h.labels, none);
  EXPECT_EQ(h.distances, pad);

  const std::vector<uint64_t> ids = Ids(kCount);
  ASSERT_OK(c->Upsert(ids, Gaussian(kCount * kDim, 30)));
  auto deleted = c->Delete(ids);
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, kCount);
  EXPECT_EQ(c->Count(), 0u);
  h = {};
  EXPECT_OK(c->Search(queries, {.k = 4, .oversample = 2}, &h.labels, &h.distances));
  EXPECT_EQ(h.labels, none);
  EXPECT_EQ(h.distances, pad);
}

// --- Bad input -----------------------------------------------------------------

TEST_F(EmbeddingCollectionTest, BadInputIsRejectedAndChangesNothing) {
  constexpr int kDim = 64;
  const std::vector<float> x = Gaussian(10 * kDim, 22);
  const std::vector<uint64_t> ids = Ids(10);
  auto c = Create("e", Config(kDim, Metric::kInnerProduct, RawType::kF32));
  auto cosine = Create("cos", Config(kDim, Metric::kCosine));
  auto no_raw = Create("noraw", Config(kDim, Metric::kL2));
  ASSERT_NE(c, nullptr);
  ASSERT_NE(cosine, nullptr);
  ASSERT_NE(no_raw, nullptr);
  ASSERT_OK(c->Upsert(ids, x));
  ASSERT_OK(cosine->Upsert(ids, x));
  ASSERT_OK(no_raw->Upsert(ids, x));

  // Two fresh ids with new vectors, then variations that break one rule each;
  // a write of them would show as a changed or added vector below.
  const std::vector<uint64_t> new_ids = {ids[0], 5};
  const std::vector<float> y = Gaussian(2 * kDim, 23);
  constexpr auto kBad = absl::StatusCode::kInvalidArgument;
  for (EmbeddingCollection* coll : {c.get(), cosine.get()}) {
    SCOPED_TRACE(coll->name());
    EXPECT_STATUS_CODE(coll->Upsert(new_ids, Rows(y, kDim, 0, 1)), kBad);  // too few
    std::vector<float> longer = y;
    longer.push_back(1.0f);
    EXPECT_STATUS_CODE(coll->Upsert(new_ids, longer), kBad);
    EXPECT_STATUS_CODE(coll->Upsert({}, y), kBad);
    std::vector<float> nan = y;
    nan[kDim + 17] = std::nanf("");
    EXPECT_STATUS_CODE(coll->Upsert(new_ids, nan), kBad);
    std::vector<float> inf = y;
    inf[3] = -std::numeric_limits<float>::infinity();
    EXPECT_STATUS_CODE(coll->Upsert(new_ids, inf), kBad);
    EXPECT_STATUS_CODE(coll->Upsert({ids[0], kMaxEmbeddingId + 1}, y), kBad);
    EXPECT_STATUS_CODE(coll->Upsert({ids[0], ~uint64_t{0}}, y), kBad);
    EXPECT_STATUS_CODE(coll->Upsert({5, 5}, y), kBad);
    // Byte spans: an f16 upsert sized as f32, and an f16 NaN.
    std::vector<uint16_t> half(2 * kDim);
    for (size_t i = 0; i < half.size(); ++i) half[i] = FloatToHalf(y[i]);
    const auto* half_bytes = reinterpret_cast<const uint8_t*>(half.data());
    EXPECT_STATUS_CODE(coll->Upsert(new_ids, DType::kF16,
                                    absl::Span<const uint8_t>(half_bytes, 4 * half.size())),
                       kBad);
    half[kDim] = 0x7E00;  // fp16 quiet NaN
    EXPECT_STATUS_CODE(coll->Upsert(new_ids, DType::kF16,
                                    absl::Span<const uint8_t>(half_bytes, 2 * half.size())),
                       kBad);
  }
  // A zero vector has no direction: rejected by cosine only.
  std::vector<float> zero = y;
  std::fill(zero.begin() + kDim, zero.end(), 0.0f);
  EXPECT_STATUS_CODE(cosine->Upsert(new_ids, zero), kBad);

  // Searches.
  std::vector<int64_t> labels;
  std::vector<float> distances;
  const std::vector<float> q = Gaussian(2 * kDim, 24);
  EXPECT_STATUS_CODE(c->Search(q, {.k = 0}, &labels, &distances), kBad);
  EXPECT_STATUS_CODE(c->Search(q, {.k = -3}, &labels, &distances), kBad);
  EXPECT_STATUS_CODE(c->Search(q, {.k = index::kMaxK + 1}, &labels, &distances), kBad);
  EXPECT_STATUS_CODE(c->Search(q, {.k = 10, .oversample = -1}, &labels, &distances), kBad);
  EXPECT_STATUS_CODE(no_raw->Search(q, {.k = 10, .oversample = 2}, &labels, &distances), kBad);
  EXPECT_STATUS_CODE(cosine->Search(q, {.k = 10, .oversample = 2}, &labels, &distances), kBad);
  EXPECT_OK(c->Search(q, {.k = 10, .oversample = 2}, &labels, &distances));  // has raw
  std::vector<float> ragged = q;
  ragged.pop_back();
  EXPECT_STATUS_CODE(c->Search(ragged, {}, &labels, &distances), kBad);
  EXPECT_STATUS_CODE(c->Search(std::vector<float>(kDim - 1, 1.0f), {}, &labels, &distances), kBad);
  EXPECT_STATUS_CODE(c->Search({}, {}, &labels, &distances), kBad);
  std::vector<float> nan_query = q;
  nan_query[5] = std::nanf("");
  EXPECT_STATUS_CODE(c->Search(nan_query, {}, &labels, &distances), kBad);

  // Nothing changed.
  for (EmbeddingCollection* coll : {c.get(), cosine.get(), no_raw.get()}) {
    SCOPED_TRACE(coll->name());
    EXPECT_EQ(coll->Count(), 10u);
    std::vector<float> got;
    std::vector<bool> found;
    ASSERT_OK(coll->Get({5}, &got, &found));
    EXPECT_EQ(found, std::vector<bool>{false});
  }
  std::vector<float> got;
  std::vector<bool> found;
  ASSERT_OK(c->Get(ids, &got, &found));
  EXPECT_EQ(got, x);
  // Nor on disk.
  c.reset();
  cosine.reset();
  no_raw.reset();
  ASSERT_NO_FATAL_FAILURE(Reopen());
  c = Get("e");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->Count(), 10u);
  ASSERT_OK(c->Get(ids, &got, &found));
  EXPECT_EQ(got, x);
}

// Searches with k = 2^31 − 1 after capping the address space at 2 GiB above
// what the process uses (the results alone would need 24 GiB): 0 if that is
// InvalidArgument, another exit code otherwise. For a child process only.
int HugeKSearchInCappedChild(EmbeddingCollection& c, const std::vector<float>& q) {
  long pages = 0;
  std::FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr || std::fscanf(statm, "%ld", &pages) != 1) return 2;
  std::fclose(statm);
  const rlim_t cap = static_cast<rlim_t>(pages) * sysconf(_SC_PAGESIZE) + (rlim_t{2} << 30);
  const rlimit limit{cap, cap};
  if (setrlimit(RLIMIT_AS, &limit) != 0) return 3;
  std::vector<int64_t> labels;
  std::vector<float> distances;
  const absl::Status s =
      c.Search(q, {.k = std::numeric_limits<int>::max()}, &labels, &distances);
  return s.code() == absl::StatusCode::kInvalidArgument ? 0 : 4;
}

// k is validated before anything is sized by it: a k far above kMaxK (a
// client's request, through the server) must be InvalidArgument, not an
// allocation of nq·k results.
TEST_F(EmbeddingCollectionTest, HugeKIsRejectedBeforeAllocating) {
  constexpr int kDim = 64;
  auto c = Create("e", Config(kDim, Metric::kInnerProduct));
  ASSERT_NE(c, nullptr);
  ASSERT_OK(c->Upsert({1, 2}, Gaussian(2 * kDim, 27)));
  const std::vector<float> q = Gaussian(kDim, 28);
  GTEST_FLAG_SET(death_test_style, "fast");  // fork: the child searches this store
  EXPECT_EXIT(std::_Exit(HugeKSearchInCappedChild(*c, q)), ::testing::ExitedWithCode(0), "");
}

// --- Element types -------------------------------------------------------------

uint16_t FloatToBf16(float f) {  // truncation: any bf16 value will do
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return static_cast<uint16_t>(bits >> 16);
}

float Bf16ToFloat(uint16_t h) {
  const uint32_t bits = uint32_t{h} << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

TEST_F(EmbeddingCollectionTest, HalfPrecisionUpsertsEqualF32OfTheSameValues) {
  constexpr int kDim = 96;
  constexpr size_t kCount = 500;
  const std::vector<float> x = Gaussian(kCount * kDim, 25);
  const std::vector<uint64_t> ids = Ids(kCount);
  const std::vector<float> queries = Gaussian(kQueries * kDim, 26);
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    const std::string name = dtype == DType::kF16 ? "f16" : "bf16";
    SCOPED_TRACE(name);
    std::vector<uint16_t> half(x.size());
    std::vector<float> widened(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      half[i] = dtype == DType::kF16 ? FloatToHalf(x[i]) : FloatToBf16(x[i]);
      widened[i] = dtype == DType::kF16 ? HalfToFloat(half[i]) : Bf16ToFloat(half[i]);
    }
    ASSERT_NE(widened, x);
    auto a = Create(name, Config(kDim, Metric::kL2, RawType::kF32));
    auto b = Create(name + "-as-f32", Config(kDim, Metric::kL2, RawType::kF32));
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    ASSERT_OK(a->Upsert(ids, dtype,
                        absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(half.data()),
                                                  2 * half.size())));
    ASSERT_OK(b->Upsert(ids, widened));
    std::vector<float> got_a, got_b;
    std::vector<bool> found_a, found_b;
    ASSERT_OK(a->Get(ids, &got_a, &found_a));
    ASSERT_OK(b->Get(ids, &got_b, &found_b));
    EXPECT_EQ(got_a, widened);
    EXPECT_EQ(got_b, widened);
    for (int oversample : {0, 10}) {
      const Hits ha = SearchCollection(*a, queries, 10, oversample);
      const Hits hb = SearchCollection(*b, queries, 10, oversample);
      EXPECT_EQ(ha.labels, hb.labels);
      EXPECT_EQ(ha.distances, hb.distances);
    }
  }
}

}  // namespace
}  // namespace tqdb::storage
