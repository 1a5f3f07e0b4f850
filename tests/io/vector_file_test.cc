#include "io/vector_file.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/testing.h"
#include "gtest/gtest.h"

namespace tqdb::io {
namespace {

class VectorFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::vector<int32_t>& words) {
    const std::string path = (std::filesystem::path(::testing::TempDir()) / name).string();
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(words.data()), words.size() * 4);
    return path;
  }
  static int32_t F(float v) {
    int32_t w;
    std::memcpy(&w, &v, 4);
    return w;
  }
};

TEST_F(VectorFileTest, ReadsFvecsAndIvecs) {
  const std::string f = Write("ok.fvecs", {2, F(1.5f), F(-2.0f), 2, F(0.25f), F(4.0f)});
  absl::StatusOr<VectorSet<float>> x = ReadFvecs(f);
  ASSERT_OK(x);
  EXPECT_EQ(x->n, 2u);
  EXPECT_EQ(x->dim, 2);
  EXPECT_EQ(x->data, (std::vector<float>{1.5f, -2.0f, 0.25f, 4.0f}));
  EXPECT_EQ(x->row(1)[1], 4.0f);
  absl::StatusOr<VectorSet<float>> first = ReadFvecs(f, 1);
  ASSERT_OK(first);
  EXPECT_EQ(first->n, 1u);
  absl::StatusOr<VectorSet<int32_t>> ids = ReadIvecs(Write("ok.ivecs", {3, 7, 8, 9}));
  ASSERT_OK(ids);
  EXPECT_EQ(ids->data, (std::vector<int32_t>{7, 8, 9}));
  absl::StatusOr<VectorSet<float>> empty = ReadFvecs(Write("empty.fvecs", {}));
  ASSERT_OK(empty);
  EXPECT_EQ(empty->n, 0u);
}

TEST_F(VectorFileTest, BadFilesAreClearErrors) {
  EXPECT_STATUS_CODE(ReadFvecs("/nonexistent/base.fvecs"), absl::StatusCode::kNotFound);
  // Truncated body, mismatched d, zero d, truncated header (a lone 2-byte tail).
  EXPECT_STATUS_CODE(ReadFvecs(Write("short.fvecs", {3, F(1), F(2)})), absl::StatusCode::kDataLoss);
  EXPECT_STATUS_CODE(ReadFvecs(Write("mixed.fvecs", {1, F(1), 2, F(1), F(2)})),
                     absl::StatusCode::kDataLoss);
  EXPECT_STATUS_CODE(ReadIvecs(Write("zero.ivecs", {0})), absl::StatusCode::kDataLoss);
  const std::string path = Write("header.fvecs", {1, F(1)});
  std::ofstream(path, std::ios::binary | std::ios::app).write("\x01\x00", 2);
  absl::StatusOr<VectorSet<float>> h = ReadFvecs(path);
  EXPECT_STATUS_CODE(h, absl::StatusCode::kDataLoss);
  EXPECT_NE(h.status().message().find("record 1"), std::string::npos) << h.status();
}

TEST_F(VectorFileTest, ReadsBvecsAsFloats) {
  // Two records of d = 5: bytes packed after each int32 d (the body need not
  // be a whole number of words, so build the file byte by byte).
  const std::string path = (std::filesystem::path(::testing::TempDir()) / "ok.bvecs").string();
  {
    std::ofstream out(path, std::ios::binary);
    const int32_t d = 5;
    const uint8_t rows[2][5] = {{0, 1, 2, 254, 255}, {9, 8, 7, 6, 5}};
    for (const auto& row : rows) {
      out.write(reinterpret_cast<const char*>(&d), 4);
      out.write(reinterpret_cast<const char*>(row), 5);
    }
  }
  absl::StatusOr<VectorSet<float>> x = ReadBvecs(path);
  ASSERT_OK(x);
  EXPECT_EQ(x->n, 2u);
  EXPECT_EQ(x->dim, 5);
  EXPECT_EQ(x->data, (std::vector<float>{0, 1, 2, 254, 255, 9, 8, 7, 6, 5}));
  absl::StatusOr<VectorSet<float>> first = ReadBvecs(path, 1);
  ASSERT_OK(first);
  EXPECT_EQ(first->n, 1u);
  // ReadVectors picks the reader by extension.
  absl::StatusOr<VectorSet<float>> by_ext = ReadVectors(path);
  ASSERT_OK(by_ext);
  EXPECT_EQ(by_ext->data, x->data);
  EXPECT_STATUS_CODE(ReadVectors(Write("x.txt", {1, 2})), absl::StatusCode::kInvalidArgument);

  // Cut the second record's body short: DataLoss naming record 1 and its
  // byte offset (4 + 5 = 9).
  std::filesystem::resize_file(path, 9 + 4 + 3);
  absl::StatusOr<VectorSet<float>> cut = ReadBvecs(path);
  EXPECT_STATUS_CODE(cut, absl::StatusCode::kDataLoss);
  EXPECT_NE(cut.status().message().find("record 1 at byte offset 9"), std::string::npos)
      << cut.status();
  EXPECT_NE(cut.status().message().find("3 of 5 bytes"), std::string::npos) << cut.status();
  EXPECT_STATUS_CODE(ReadBvecs("/nonexistent/base.bvecs"), absl::StatusCode::kNotFound);
}

TEST_F(VectorFileTest, TruncatedFvecsNamesRecordAndOffset) {
  absl::StatusOr<VectorSet<float>> x =
      ReadFvecs(Write("cut.fvecs", {2, F(1), F(2), 2, F(3), F(4), 2, F(5)}));
  EXPECT_STATUS_CODE(x, absl::StatusCode::kDataLoss);
  EXPECT_NE(x.status().message().find("record 2 at byte offset 24"), std::string::npos)
      << x.status();
}

// The shared SIFT excerpt, when present: 4,500 × 128 base, 100-NN ground truth.
TEST_F(VectorFileTest, ReadsTheSharedSiftExcerpt) {
  const std::string dir = tqdb::testing::DataDir();
  if (dir.empty()) GTEST_SKIP() << "shared data directory absent";
  absl::StatusOr<VectorSet<float>> base = ReadFvecs(dir + "/sift-5k/base.fvecs");
  ASSERT_OK(base);
  EXPECT_EQ(base->n, 4500u);
  EXPECT_EQ(base->dim, 128);
  absl::StatusOr<VectorSet<int32_t>> gt = ReadIvecs(dir + "/sift-5k/gt_ip.ivecs");
  ASSERT_OK(gt);
  EXPECT_EQ(gt->n, 500u);
  EXPECT_EQ(gt->dim, 100);
  absl::StatusOr<VectorSet<float>> query = ReadFvecs(dir + "/sift-5k/query.fvecs");
  ASSERT_OK(query);
  EXPECT_EQ(query->n, 500u);
  EXPECT_EQ(query->dim, 128);
  absl::StatusOr<VectorSet<int32_t>> gt_l2 = ReadIvecs(dir + "/sift-5k/gt_l2.ivecs");
  ASSERT_OK(gt_l2);
  EXPECT_EQ(gt_l2->n, 500u);
  EXPECT_EQ(gt_l2->dim, 100);
  absl::StatusOr<VectorSet<float>> dist = ReadFvecs(dir + "/sift-5k/gt_l2_dist.fvecs");
  ASSERT_OK(dist);
  EXPECT_EQ(dist->n, 500u);
  EXPECT_EQ(dist->dim, 100);
}

// The shared MiniLM set, when present: 700 × 384 base, 78 queries, unit norm.
TEST_F(VectorFileTest, ReadsTheSharedMiniLmSet) {
  const std::string dir = tqdb::testing::DataDir();
  if (dir.empty()) GTEST_SKIP() << "shared data directory absent";
  absl::StatusOr<VectorSet<float>> base = ReadVectors(dir + "/minilm-fiori/base.fvecs");
  ASSERT_OK(base);
  EXPECT_EQ(base->n, 700u);
  EXPECT_EQ(base->dim, 384);
  absl::StatusOr<VectorSet<float>> query = ReadFvecs(dir + "/minilm-fiori/query.fvecs");
  ASSERT_OK(query);
  EXPECT_EQ(query->n, 78u);
  EXPECT_EQ(query->dim, 384);
  double norm2 = 0;
  for (int j = 0; j < base->dim; ++j) norm2 += double{base->row(0)[j]} * base->row(0)[j];
  EXPECT_NEAR(norm2, 1.0, 1e-4);
  absl::StatusOr<VectorSet<int32_t>> gt = ReadIvecs(dir + "/minilm-fiori/gt_ip.ivecs");
  ASSERT_OK(gt);
  EXPECT_EQ(gt->n, 78u);
  EXPECT_EQ(gt->dim, 100);
  for (int32_t id : gt->data) ASSERT_LT(static_cast<size_t>(id), base->n);
}

}  // namespace
}  // namespace tqdb::io
