#include "llm/checkpoint.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/testing.h"
#include "gtest/gtest.h"
#include "tests/llm/synthetic_model.h"

namespace tqdb::llm {
namespace {

using ::tqdb::llm::testing::SmallConfig;
using ::tqdb::llm::testing::SyntheticCheckpoint;

TEST(CheckpointTest, ParsesHeaderAndLaysOutWeights) {
  const ModelConfig c = SmallConfig();
  const std::string bytes = SyntheticCheckpoint(c, 1);
  auto ckpt = Checkpoint::FromBytes(bytes);
  ASSERT_OK(ckpt);
  const ModelConfig& got = (*ckpt)->config();
  EXPECT_EQ(got.dim, c.dim);
  EXPECT_EQ(got.hidden_dim, c.hidden_dim);
  EXPECT_EQ(got.n_layers, c.n_layers);
  EXPECT_EQ(got.n_heads, c.n_heads);
  EXPECT_EQ(got.n_kv_heads, c.n_kv_heads);
  EXPECT_EQ(got.vocab_size, c.vocab_size);
  EXPECT_EQ(got.seq_len, c.seq_len);
  EXPECT_TRUE(got.shared_classifier);
  const Weights& w = (*ckpt)->weights();
  EXPECT_EQ(w.wcls, w.token_embedding);
  // The first float after the header is token_embedding[0][0]; rms_final
  // sits right before the legacy RoPE tables at the end.
  float first;
  std::memcpy(&first, bytes.data() + kCheckpointHeaderBytes, sizeof(first));
  EXPECT_EQ(w.token_embedding[0], first);
  const size_t rope = 2 * static_cast<size_t>(c.seq_len) * (c.head_dim() / 2);
  float last_rms;
  std::memcpy(&last_rms, bytes.data() + bytes.size() - (rope + 1) * sizeof(float),
              sizeof(last_rms));
  EXPECT_EQ(w.rms_final[c.dim - 1], last_rms);
}

TEST(CheckpointTest, UnsharedClassifierFollowsTheRopeTables) {
  ModelConfig c = SmallConfig();
  c.shared_classifier = false;
  const std::string bytes = SyntheticCheckpoint(c, 2);
  auto ckpt = Checkpoint::FromBytes(bytes);
  ASSERT_OK(ckpt);
  EXPECT_FALSE((*ckpt)->config().shared_classifier);
  EXPECT_EQ((*ckpt)->config().vocab_size, c.vocab_size);
  EXPECT_NE((*ckpt)->weights().wcls, (*ckpt)->weights().token_embedding);
  float wcls0;
  std::memcpy(
      &wcls0,
      bytes.data() + bytes.size() - static_cast<size_t>(c.vocab_size) * c.dim * sizeof(float),
      sizeof(wcls0));
  EXPECT_EQ((*ckpt)->weights().wcls[0], wcls0);
}

TEST(CheckpointTest, RejectsWrongSizesAndHeaders) {
  const ModelConfig c = SmallConfig();
  const std::string bytes = SyntheticCheckpoint(c, 3);
  EXPECT_STATUS_CODE(Checkpoint::FromBytes(bytes.substr(0, bytes.size() - 4)),
                     absl::StatusCode::kDataLoss);
  EXPECT_STATUS_CODE(Checkpoint::FromBytes(bytes + "xxxx"), absl::StatusCode::kDataLoss);
  EXPECT_STATUS_CODE(Checkpoint::FromBytes(bytes.substr(0, 10)), absl::StatusCode::kDataLoss);
  EXPECT_STATUS_CODE(Checkpoint::FromBytes(""), absl::StatusCode::kDataLoss);
  auto with_header = [&](int index, int32_t value) {
    std::string b = bytes;
    std::memcpy(b.data() + index * sizeof(int32_t), &value, sizeof(value));
    return Checkpoint::FromBytes(b).status();
  };
  EXPECT_STATUS_CODE(with_header(0, 0), absl::StatusCode::kDataLoss);          // dim
  EXPECT_STATUS_CODE(with_header(0, 63), absl::StatusCode::kDataLoss);         // dim % heads
  EXPECT_STATUS_CODE(with_header(3, 3), absl::StatusCode::kDataLoss);          // heads
  EXPECT_STATUS_CODE(with_header(4, 3), absl::StatusCode::kDataLoss);          // kv heads
  EXPECT_STATUS_CODE(with_header(3, 64), absl::StatusCode::kDataLoss);         // head_dim 1
  EXPECT_STATUS_CODE(with_header(2, -1), absl::StatusCode::kDataLoss);         // layers
  EXPECT_STATUS_CODE(with_header(5, INT32_MIN), absl::StatusCode::kDataLoss);  // vocab
  EXPECT_STATUS_CODE(with_header(6, 1 << 30), absl::StatusCode::kDataLoss);    // seq_len
}

TEST(CheckpointTest, OpensAFileAndReportsAMissingOne) {
  const std::string bytes = SyntheticCheckpoint(SmallConfig(), 4);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("tqdb_llm_ckpt_" + std::to_string(::getpid()) + ".bin"))
                               .string();
  {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  auto ckpt = Checkpoint::Open(path);
  ASSERT_OK(ckpt);
  auto mem = Checkpoint::FromBytes(bytes);
  ASSERT_OK(mem);
  EXPECT_EQ(std::memcmp((*ckpt)->weights().wcls, (*mem)->weights().wcls,
                        sizeof(float) * SmallConfig().vocab_size * SmallConfig().dim),
            0);
  std::filesystem::remove(path);
  EXPECT_STATUS_CODE(Checkpoint::Open(path), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tqdb::llm
