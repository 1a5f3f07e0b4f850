#include "storage/store.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "storage/embedding_collection.h"
#include "storage/kv_collection.h"
#include "tests/index/test_data.h"

namespace tqdb::storage {
namespace {

using index::testing::Gaussian;

constexpr int kLayers = 2, kHeads = 2, kHeadDim = 32, kEmbeddingDim = 32;

KvCollectionConfig KvConfig() {
  KvCollectionConfig c;
  c.num_layers = kLayers;
  c.num_kv_heads = kHeads;
  c.head_dim = kHeadDim;
  c.page_tokens = 8;
  return c;
}

EmbeddingCollectionConfig EmbeddingConfig() {
  EmbeddingCollectionConfig c;
  c.dim = kEmbeddingDim;
  c.keep_raw = RawType::kF32;  // Get returns exactly what was upserted
  return c;
}

// n tokens of keys and values for KvConfig(): [layer][head][token][dim].
struct Tokens {
  size_t n;
  std::vector<float> keys, values;
  KvTokens view() const { return FloatTokens(n, keys, values); }
};

Tokens MakeTokens(size_t n, uint64_t seed) {
  return {n, Gaussian(kLayers * kHeads * n * kHeadDim, seed),
          Gaussian(kLayers * kHeads * n * kHeadDim, seed + 1)};
}

std::vector<uint64_t> EmbeddingIds(size_t n, uint64_t first) {
  std::vector<uint64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = first + 3 * i;
  return ids;
}

std::vector<std::string> Names(const std::vector<CollectionInfo>& infos) {
  std::vector<std::string> names;
  for (const CollectionInfo& info : infos) names.push_back(info.name);
  return names;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::path(::testing::TempDir()) / "tqdb_store_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    dir_ = root_ + "/db";
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(root_);
  }

  // Opens (or reopens) store_ over dir_. Tests of durability across process
  // or power loss are elsewhere: skipping fsync keeps these fast.
  static StoreOptions Fast() {
    StoreOptions options;
    options.sync = SyncPolicy::kNone;
    return options;
  }
  void Reopen(const StoreOptions& options = Fast()) {
    store_.reset();
    auto opened = Store::Open(options, dir_);
    ASSERT_OK(opened);
    store_ = *std::move(opened);
  }

  std::string root_, dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, OpenCreatesAnEmptyStore) {
  ASSERT_FALSE(std::filesystem::exists(dir_));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_TRUE(std::filesystem::is_directory(dir_));
  EXPECT_TRUE(store_->ListCollections().empty());
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_TRUE(store_->ListCollections().empty());
}

TEST_F(StoreTest, OpenWithoutCreateIfMissingFailsOnAMissingStore) {
  StoreOptions options;
  options.create_if_missing = false;
  EXPECT_FALSE(Store::Open(options, dir_).ok());
}

TEST_F(StoreTest, SecondOpenOfAnOpenDirectoryFails) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  auto second = Store::Open({}, dir_);
  EXPECT_STATUS_CODE(second, absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("already open"), std::string::npos)
      << second.status();
  // The failed open left the first store working.
  ASSERT_OK(store_->CreateEmbeddingCollection("e", EmbeddingConfig()));
  store_.reset();
  auto third = Store::Open({}, dir_);
  ASSERT_OK(third);
  EXPECT_EQ(Names((*third)->ListCollections()), std::vector<std::string>{"e"});
}

TEST_F(StoreTest, EverySyncPolicyPersistsAcknowledgedWrites) {
  const std::vector<float> x = Gaussian(4 * kEmbeddingDim, 1);
  const std::vector<uint64_t> ids = {1, 2, 3, 4};
  for (SyncPolicy sync : {SyncPolicy::kEveryWrite, SyncPolicy::kPeriodic, SyncPolicy::kNone}) {
    SCOPED_TRACE(static_cast<int>(sync));
    StoreOptions options;
    options.sync = sync;
    options.sync_interval = std::chrono::milliseconds(5);
    ASSERT_NO_FATAL_FAILURE(Reopen(options));
    const std::string name = "e" + std::to_string(static_cast<int>(sync));
    auto e = store_->CreateEmbeddingCollection(name, EmbeddingConfig());
    ASSERT_OK(e);
    ASSERT_OK((*e)->Upsert(ids, x));
    ASSERT_NO_FATAL_FAILURE(Reopen(options));
    auto again = store_->GetEmbeddingCollection(name);
    ASSERT_OK(again);
    std::vector<float> got;
    std::vector<bool> found;
    ASSERT_OK((*again)->Get(ids, &got, &found));
    EXPECT_EQ(got, x);
  }
}

TEST_F(StoreTest, CreateGetAndList) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  auto kv = store_->CreateKvCollection("m-kv", KvConfig());
  ASSERT_OK(kv);
  auto emb = store_->CreateEmbeddingCollection("b.emb", EmbeddingConfig());
  ASSERT_OK(emb);
  auto emb2 = store_->CreateEmbeddingCollection("Z_emb", EmbeddingConfig());
  ASSERT_OK(emb2);
  EXPECT_EQ((*kv)->name(), "m-kv");
  EXPECT_EQ((*emb)->name(), "b.emb");

  const std::vector<CollectionInfo> list = store_->ListCollections();
  ASSERT_EQ(list.size(), 3u);
  // Bytewise name order: uppercase before lowercase.
  EXPECT_EQ(list[0].name, "Z_emb");
  EXPECT_EQ(list[0].kind, CollectionKind::kEmbedding);
  EXPECT_EQ(list[1].name, "b.emb");
  EXPECT_EQ(list[1].kind, CollectionKind::kEmbedding);
  EXPECT_EQ(list[2].name, "m-kv");
  EXPECT_EQ(list[2].kind, CollectionKind::kKv);

  auto got_kv = store_->GetKvCollection("m-kv");
  ASSERT_OK(got_kv);
  EXPECT_EQ(got_kv->get(), kv->get());
  auto got_emb = store_->GetEmbeddingCollection("b.emb");
  ASSERT_OK(got_emb);
  EXPECT_EQ(got_emb->get(), emb->get());

  // Each getter finds only its own kind.
  EXPECT_STATUS_CODE(store_->GetKvCollection("b.emb"), absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE(store_->GetEmbeddingCollection("m-kv"), absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE(store_->GetKvCollection("nope"), absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE(store_->GetEmbeddingCollection("nope"), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, DuplicateNamesAreRejectedAcrossKinds) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  auto kv = store_->CreateKvCollection("kv", KvConfig());
  ASSERT_OK(kv);
  auto emb = store_->CreateEmbeddingCollection("emb", EmbeddingConfig());
  ASSERT_OK(emb);
  ASSERT_OK((*kv)->CreateSequence(1));
  const Tokens t = MakeTokens(5, 1);
  ASSERT_OK((*kv)->Append(1, t.view()));

  EXPECT_STATUS_CODE(store_->CreateKvCollection("kv", KvConfig()),
                     absl::StatusCode::kAlreadyExists);
  EXPECT_STATUS_CODE(store_->CreateEmbeddingCollection("kv", EmbeddingConfig()),
                     absl::StatusCode::kAlreadyExists);
  EXPECT_STATUS_CODE(store_->CreateKvCollection("emb", KvConfig()),
                     absl::StatusCode::kAlreadyExists);
  EXPECT_STATUS_CODE(store_->CreateEmbeddingCollection("emb", EmbeddingConfig()),
                     absl::StatusCode::kAlreadyExists);

  // The originals are untouched.
  EXPECT_EQ(store_->ListCollections().size(), 2u);
  auto length = (*kv)->Length(1);
  ASSERT_OK(length);
  EXPECT_EQ(*length, 5u);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_STATUS_CODE(store_->CreateKvCollection("emb", KvConfig()),
                     absl::StatusCode::kAlreadyExists);
  EXPECT_STATUS_CODE(store_->CreateEmbeddingCollection("kv", EmbeddingConfig()),
                     absl::StatusCode::kAlreadyExists);
}

TEST_F(StoreTest, BadNamesAreRejected) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  for (const std::string& name :
       {std::string(), std::string(65, 'a'), std::string("a/b"), std::string("a b"),
        std::string("a\0b", 3), std::string("default/x")}) {
    SCOPED_TRACE(name);
    EXPECT_STATUS_CODE(store_->CreateKvCollection(name, KvConfig()),
                       absl::StatusCode::kInvalidArgument);
    EXPECT_STATUS_CODE(store_->CreateEmbeddingCollection(name, EmbeddingConfig()),
                       absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(store_->ListCollections().empty());
  EXPECT_OK(store_->CreateKvCollection(std::string(64, 'a'), KvConfig()));
}

TEST_F(StoreTest, BadConfigsCreateNothing) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_OK(store_->CreateKvCollection("keep", KvConfig()));

  std::vector<std::pair<std::string, KvCollectionConfig>> bad_kv;
  KvCollectionConfig c = KvConfig();
  c.num_layers = 0;
  bad_kv.emplace_back("zero layers", c);
  c = KvConfig();
  c.num_kv_heads = 0;
  bad_kv.emplace_back("zero heads", c);
  c = KvConfig();
  c.head_dim = 1;
  bad_kv.emplace_back("head_dim 1", c);
  c = KvConfig();
  c.boundary_layers = 2;  // 2 + 2 > 2 layers
  bad_kv.emplace_back("boundary_layers too large", c);
  c = KvConfig();
  c.boundary_layers = -1;
  bad_kv.emplace_back("negative boundary_layers", c);
  c = KvConfig();
  c.value_format = "tq4p";  // QJL: values must be MSE
  bad_kv.emplace_back("QJL values", c);
  c = KvConfig();
  c.num_layers = 4;
  c.boundary_layers = 1;
  c.boundary_value_format = "tq4p";
  bad_kv.emplace_back("QJL boundary values", c);
  c = KvConfig();
  c.key_format = "nonsense";
  bad_kv.emplace_back("unknown format", c);
  c = KvConfig();
  c.page_tokens = 0;
  bad_kv.emplace_back("page_tokens 0", c);
  for (const auto& [what, config] : bad_kv) {
    SCOPED_TRACE(what);
    EXPECT_STATUS_CODE(store_->CreateKvCollection("bad", config),
                       absl::StatusCode::kInvalidArgument);
  }

  std::vector<std::pair<std::string, EmbeddingCollectionConfig>> bad_emb;
  EmbeddingCollectionConfig e = EmbeddingConfig();
  e.dim = 1;
  bad_emb.emplace_back("dim 1", e);
  e = EmbeddingConfig();
  e.format = "tq9";
  bad_emb.emplace_back("9-bit format", e);
  e = EmbeddingConfig();
  e.format = "nonsense";
  bad_emb.emplace_back("unknown format", e);
  e = EmbeddingConfig();
  e.center.assign(kEmbeddingDim - 1, 0.0f);
  bad_emb.emplace_back("short center", e);
  e = EmbeddingConfig();
  e.center.assign(kEmbeddingDim, 0.0f);
  e.center[3] = std::nanf("");
  bad_emb.emplace_back("NaN center", e);
  e = EmbeddingConfig();
  e.metric = static_cast<index::Metric>(9);
  bad_emb.emplace_back("unknown metric", e);
  e = EmbeddingConfig();
  e.keep_raw = static_cast<RawType>(9);
  bad_emb.emplace_back("unknown raw type", e);
  for (const auto& [what, config] : bad_emb) {
    SCOPED_TRACE(what);
    EXPECT_STATUS_CODE(store_->CreateEmbeddingCollection("bad", config),
                       absl::StatusCode::kInvalidArgument);
  }

  EXPECT_EQ(Names(store_->ListCollections()), std::vector<std::string>{"keep"});
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(Names(store_->ListCollections()), std::vector<std::string>{"keep"});
  // The name is free, for either kind.
  auto kv = store_->CreateKvCollection("bad", KvConfig());
  ASSERT_OK(kv);
  EXPECT_TRUE((*kv)->Sequences().empty());
}

TEST_F(StoreTest, CollectionsAndConfigsSurviveReopen) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  KvCollectionConfig kv_config;
  kv_config.num_layers = 4;
  kv_config.num_kv_heads = 3;
  kv_config.head_dim = 48;
  kv_config.key_format = "tq3";
  kv_config.value_format = "tq2";
  kv_config.boundary_layers = 1;
  kv_config.boundary_key_format = "tq4p";
  kv_config.boundary_value_format = "tq4";
  kv_config.page_tokens = 16;
  kv_config.seed = 7;
  ASSERT_OK(store_->CreateKvCollection("kv", kv_config));

  EmbeddingCollectionConfig emb_config;
  emb_config.dim = 40;
  emb_config.metric = index::Metric::kL2;
  emb_config.format = "tq3";
  emb_config.keep_raw = RawType::kF16;
  emb_config.center = Gaussian(40, 5);
  emb_config.seed = 11;
  ASSERT_OK(store_->CreateEmbeddingCollection("emb", emb_config));
  ASSERT_OK(store_->CreateEmbeddingCollection("plain", EmbeddingConfig()));

  // The configs the handles report before and after a reopen.
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "as created" : "after reopen");
    if (round == 1) {
      ASSERT_NO_FATAL_FAILURE(Reopen());
    }
    const std::vector<CollectionInfo> list = store_->ListCollections();
    ASSERT_EQ(list.size(), 3u);
    EXPECT_EQ(list[0].name, "emb");
    EXPECT_EQ(list[0].kind, CollectionKind::kEmbedding);
    EXPECT_EQ(list[1].name, "kv");
    EXPECT_EQ(list[1].kind, CollectionKind::kKv);
    EXPECT_EQ(list[2].name, "plain");
    EXPECT_EQ(list[2].kind, CollectionKind::kEmbedding);

    auto kv = store_->GetKvCollection("kv");
    ASSERT_OK(kv);
    const KvCollectionConfig& k = (*kv)->config();
    EXPECT_EQ(k.num_layers, 4);
    EXPECT_EQ(k.num_kv_heads, 3);
    EXPECT_EQ(k.head_dim, 48);
    EXPECT_EQ(k.key_format, "tq3");
    EXPECT_EQ(k.value_format, "tq2");
    EXPECT_EQ(k.boundary_layers, 1);
    EXPECT_EQ(k.boundary_key_format, "tq4p");
    EXPECT_EQ(k.boundary_value_format, "tq4");
    EXPECT_EQ(k.page_tokens, 16);
    EXPECT_EQ(k.seed, 7u);

    auto emb = store_->GetEmbeddingCollection("emb");
    ASSERT_OK(emb);
    const EmbeddingCollectionConfig& e = (*emb)->config();
    EXPECT_EQ(e.dim, 40);
    EXPECT_EQ(e.metric, index::Metric::kL2);
    EXPECT_EQ(e.format, "tq3");
    EXPECT_EQ(e.keep_raw, RawType::kF16);
    EXPECT_EQ(e.center, emb_config.center);
    EXPECT_EQ(e.seed, 11u);

    auto plain = store_->GetEmbeddingCollection("plain");
    ASSERT_OK(plain);
    EXPECT_EQ((*plain)->config().dim, kEmbeddingDim);
    EXPECT_EQ((*plain)->config().metric, index::Metric::kInnerProduct);
    EXPECT_EQ((*plain)->config().format, "tq4");
    EXPECT_EQ((*plain)->config().keep_raw, RawType::kF32);
    EXPECT_TRUE((*plain)->config().center.empty());
    EXPECT_EQ((*plain)->config().seed, 0u);
  }
}

TEST_F(StoreTest, DropCollection) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  auto kv = store_->CreateKvCollection("kv", KvConfig());
  ASSERT_OK(kv);
  auto emb = store_->CreateEmbeddingCollection("emb", EmbeddingConfig());
  ASSERT_OK(emb);
  ASSERT_OK(store_->CreateEmbeddingCollection("other", EmbeddingConfig()));
  const Tokens t = MakeTokens(20, 1);
  ASSERT_OK((*kv)->CreateSequence(4));
  ASSERT_OK((*kv)->Append(4, t.view()));
  const std::vector<uint64_t> ids = EmbeddingIds(50, 10);
  const std::vector<float> x = Gaussian(ids.size() * kEmbeddingDim, 2);
  ASSERT_OK((*emb)->Upsert(ids, x));

  ASSERT_OK(store_->DropCollection("kv"));
  ASSERT_OK(store_->DropCollection("emb"));
  EXPECT_STATUS_CODE(store_->DropCollection("kv"), absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE(store_->DropCollection("never"), absl::StatusCode::kNotFound);
  EXPECT_EQ(Names(store_->ListCollections()), std::vector<std::string>{"other"});
  EXPECT_STATUS_CODE(store_->GetKvCollection("kv"), absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE(store_->GetEmbeddingCollection("emb"), absl::StatusCode::kNotFound);

  // Old handles answer NotFound.
  EXPECT_STATUS_CODE((*kv)->Length(4), absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE((*kv)->CreateSequence(5), absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE((*kv)->Append(4, t.view()), absl::StatusCode::kNotFound);
  const std::vector<float> q = Gaussian(kHeads * kHeadDim, 3);
  EXPECT_STATUS_CODE((*kv)->Score(4, 0, q), absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE((*kv)->Stats(), absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE((*emb)->Upsert(ids, x), absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE((*emb)->Delete(ids), absl::StatusCode::kNotFound);
  std::vector<float> got;
  std::vector<bool> found;
  EXPECT_STATUS_CODE((*emb)->Get(ids, &got, &found), absl::StatusCode::kNotFound);
  std::vector<int64_t> labels;
  std::vector<float> distances;
  EXPECT_STATUS_CODE((*emb)->Search(Gaussian(kEmbeddingDim, 4), {}, &labels, &distances),
                     absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE((*emb)->Stats(), absl::StatusCode::kNotFound);

  // The same names start empty, in this session and after a reopen.
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "same session" : "after reopen");
    if (round == 1) {
      ASSERT_OK(store_->DropCollection("kv"));
      ASSERT_OK(store_->DropCollection("emb"));
      ASSERT_NO_FATAL_FAILURE(Reopen());
      EXPECT_EQ(Names(store_->ListCollections()), std::vector<std::string>{"other"});
    }
    auto kv2 = store_->CreateKvCollection("kv", KvConfig());
    ASSERT_OK(kv2);
    EXPECT_TRUE((*kv2)->Sequences().empty());
    EXPECT_STATUS_CODE((*kv2)->Length(4), absl::StatusCode::kNotFound);
    ASSERT_OK((*kv2)->CreateSequence(4));
    auto length = (*kv2)->Length(4);
    ASSERT_OK(length);
    EXPECT_EQ(*length, 0u);
    auto emb2 = store_->CreateEmbeddingCollection("emb", EmbeddingConfig());
    ASSERT_OK(emb2);
    EXPECT_EQ((*emb2)->Count(), 0u);
    ASSERT_OK((*emb2)->Get(ids, &got, &found));
    EXPECT_EQ(found, std::vector<bool>(ids.size(), false));
  }
  // What the second generation holds survives a reopen; nothing of the first.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  auto kv3 = store_->GetKvCollection("kv");
  ASSERT_OK(kv3);
  EXPECT_EQ((*kv3)->Sequences(), std::vector<uint64_t>{4});
  auto length = (*kv3)->Length(4);
  ASSERT_OK(length);
  EXPECT_EQ(*length, 0u);
  auto emb3 = store_->GetEmbeddingCollection("emb");
  ASSERT_OK(emb3);
  EXPECT_EQ((*emb3)->Count(), 0u);
}

TEST_F(StoreTest, HandlesFailAfterTheStoreIsDestroyed) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  auto kv = store_->CreateKvCollection("kv", KvConfig());
  ASSERT_OK(kv);
  auto emb = store_->CreateEmbeddingCollection("emb", EmbeddingConfig());
  ASSERT_OK(emb);
  const Tokens t = MakeTokens(3, 1);
  ASSERT_OK((*kv)->CreateSequence(1));
  ASSERT_OK((*kv)->Append(1, t.view()));
  const std::vector<uint64_t> ids = {5, 6};
  const std::vector<float> x = Gaussian(2 * kEmbeddingDim, 2);
  ASSERT_OK((*emb)->Upsert(ids, x));
  store_.reset();

  constexpr auto kClosed = absl::StatusCode::kFailedPrecondition;
  EXPECT_STATUS_CODE((*kv)->Length(1), kClosed);
  EXPECT_STATUS_CODE((*kv)->CreateSequence(2), kClosed);
  EXPECT_STATUS_CODE((*kv)->Append(1, t.view()), kClosed);
  EXPECT_STATUS_CODE((*kv)->Score(1, 0, Gaussian(kHeads * kHeadDim, 3)), kClosed);
  EXPECT_STATUS_CODE((*kv)->Stats(), kClosed);
  EXPECT_STATUS_CODE((*emb)->Upsert(ids, x), kClosed);
  EXPECT_STATUS_CODE((*emb)->Delete(ids), kClosed);
  std::vector<float> got;
  std::vector<bool> found;
  EXPECT_STATUS_CODE((*emb)->Get(ids, &got, &found), kClosed);
  std::vector<int64_t> labels;
  std::vector<float> distances;
  EXPECT_STATUS_CODE((*emb)->Search(Gaussian(kEmbeddingDim, 4), {}, &labels, &distances), kClosed);
  EXPECT_STATUS_CODE((*emb)->Stats(), kClosed);

  // The writes before the close are on disk; the refused ones are not.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  auto kv2 = store_->GetKvCollection("kv");
  ASSERT_OK(kv2);
  EXPECT_EQ((*kv2)->Sequences(), std::vector<uint64_t>{1});
  auto length = (*kv2)->Length(1);
  ASSERT_OK(length);
  EXPECT_EQ(*length, 3u);
  auto emb2 = store_->GetEmbeddingCollection("emb");
  ASSERT_OK(emb2);
  ASSERT_OK((*emb2)->Get(ids, &got, &found));
  EXPECT_EQ(got, x);
}

TEST_F(StoreTest, CheckpointHoldsTheDataAtCheckpointTime) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  auto kv = store_->CreateKvCollection("kv", KvConfig());
  ASSERT_OK(kv);
  auto emb = store_->CreateEmbeddingCollection("emb", EmbeddingConfig());
  ASSERT_OK(emb);
  const Tokens t1 = MakeTokens(13, 1), t2 = MakeTokens(7, 3);
  ASSERT_OK((*kv)->CreateSequence(1));
  ASSERT_OK((*kv)->Append(1, t1.view()));
  const std::vector<uint64_t> ids1 = EmbeddingIds(40, 100), ids2 = EmbeddingIds(25, 1000);
  const std::vector<float> x1 = Gaussian(ids1.size() * kEmbeddingDim, 5);
  const std::vector<float> x2 = Gaussian(ids2.size() * kEmbeddingDim, 6);
  ASSERT_OK((*emb)->Upsert(ids1, x1));
  std::vector<float> kv_keys, kv_values;
  ASSERT_OK((*kv)->Read(1, 0, 13, &kv_keys, &kv_values));

  const std::string checkpoint = root_ + "/checkpoint";
  ASSERT_OK(store_->Checkpoint(checkpoint));

  // Writes after the checkpoint: more tokens, a new sequence, new and
  // replaced and deleted vectors, a new collection.
  ASSERT_OK((*kv)->Append(1, t2.view()));
  ASSERT_OK((*kv)->CreateSequence(2));
  ASSERT_OK((*kv)->Append(2, t2.view()));
  ASSERT_OK((*emb)->Upsert(ids2, x2));
  const std::vector<uint64_t> replaced = {ids1[0]};
  ASSERT_OK((*emb)->Upsert(replaced, std::vector<float>(x2.begin(), x2.begin() + kEmbeddingDim)));
  ASSERT_OK((*emb)->Delete({ids1[1]}));
  ASSERT_OK(store_->CreateEmbeddingCollection("later", EmbeddingConfig()));

  auto copy = Store::Open({}, checkpoint);
  ASSERT_OK(copy);
  EXPECT_EQ(Names((*copy)->ListCollections()), (std::vector<std::string>{"emb", "kv"}));
  auto ckv = (*copy)->GetKvCollection("kv");
  ASSERT_OK(ckv);
  EXPECT_EQ((*ckv)->Sequences(), std::vector<uint64_t>{1});
  auto length = (*ckv)->Length(1);
  ASSERT_OK(length);
  EXPECT_EQ(*length, 13u);
  std::vector<float> keys, values;
  ASSERT_OK((*ckv)->Read(1, 0, 13, &keys, &values));
  EXPECT_EQ(keys, kv_keys);
  EXPECT_EQ(values, kv_values);

  auto cemb = (*copy)->GetEmbeddingCollection("emb");
  ASSERT_OK(cemb);
  EXPECT_EQ((*cemb)->Count(), ids1.size());
  std::vector<float> got;
  std::vector<bool> found;
  ASSERT_OK((*cemb)->Get(ids1, &got, &found));
  EXPECT_EQ(found, std::vector<bool>(ids1.size(), true));
  EXPECT_EQ(got, x1);
  ASSERT_OK((*cemb)->Get(ids2, &got, &found));
  EXPECT_EQ(found, std::vector<bool>(ids2.size(), false));

  // The live store kept its later writes.
  length = (*kv)->Length(1);
  ASSERT_OK(length);
  EXPECT_EQ(*length, 20u);
  EXPECT_EQ((*emb)->Count(), ids1.size() + ids2.size() - 1);
}

TEST_F(StoreTest, CheckpointIntoAnExistingDirectoryFails) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_OK(store_->CreateEmbeddingCollection("emb", EmbeddingConfig()));
  const std::string existing = root_ + "/existing";
  ASSERT_TRUE(std::filesystem::create_directory(existing));
  EXPECT_FALSE(store_->Checkpoint(existing).ok());
  // Nor into the store's own directory.
  EXPECT_FALSE(store_->Checkpoint(dir_).ok());
  // The store still works and a fresh directory still takes a checkpoint.
  EXPECT_OK(store_->Checkpoint(root_ + "/fresh"));
}

TEST_F(StoreTest, FlushWritesSstFiles) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  auto kv = store_->CreateKvCollection("kv", KvConfig());
  ASSERT_OK(kv);
  auto emb = store_->CreateEmbeddingCollection("emb", EmbeddingConfig());
  ASSERT_OK(emb);
  // Appends of a few tokens each: pages made of several merge operands.
  const Tokens t = MakeTokens(30, 1);
  ASSERT_OK((*kv)->CreateSequence(1));
  std::vector<float> keys_before, values_before;
  for (size_t begin = 0; begin < 30; begin += 6) {
    Tokens part{6, {}, {}};
    for (int f = 0; f < kLayers * kHeads; ++f) {
      const size_t from = (f * 30 + begin) * kHeadDim, to = from + 6 * kHeadDim;
      part.keys.insert(part.keys.end(), t.keys.begin() + from, t.keys.begin() + to);
      part.values.insert(part.values.end(), t.values.begin() + from, t.values.begin() + to);
    }
    ASSERT_OK((*kv)->Append(1, part.view()));
  }
  ASSERT_OK((*kv)->Read(1, 0, 30, &keys_before, &values_before));
  const std::vector<uint64_t> ids = EmbeddingIds(100, 1);
  ASSERT_OK((*emb)->Upsert(ids, Gaussian(ids.size() * kEmbeddingDim, 2)));

  ASSERT_OK(store_->Flush());
  ASSERT_OK(store_->Flush(true));
  auto kv_stats = (*kv)->Stats();
  ASSERT_OK(kv_stats);
  EXPECT_GT(kv_stats->disk_bytes, 0u);
  EXPECT_EQ(kv_stats->stored_tokens, 30u);
  auto emb_stats = (*emb)->Stats();
  ASSERT_OK(emb_stats);
  EXPECT_GT(emb_stats->disk_bytes, 0u);

  // Compaction folded the merge operands into the same bytes.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  kv = store_->GetKvCollection("kv");
  ASSERT_OK(kv);
  std::vector<float> keys, values;
  ASSERT_OK((*kv)->Read(1, 0, 30, &keys, &values));
  EXPECT_EQ(keys, keys_before);
  EXPECT_EQ(values, values_before);
}

}  // namespace
}  // namespace tqdb::storage
