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
}

}  // namespace
}  // namespace tqdb::io
