#include "index/codec/format.h"

#include <string>

#include "common/testing.h"
#include "gtest/gtest.h"

namespace tqdb::index {
namespace {

Format Parse(const std::string& name, int dim) {
  absl::StatusOr<Format> f = ParseFormat(name, dim);
  EXPECT_OK(f);
  return f.ok() ? *f : Format{};
}

// Exact bytes at d = 128; each figure is derived by hand in the comment.
TEST(FormatTest, PresetBytesAtDim128) {
  struct Case {
    const char* name;
    size_t bytes;
  };
  const Case cases[] = {
      {"tq1", 4 + 16},          // f32 norm + 128·1 bits
      {"tq2", 4 + 32},          // 2.25 bits per value
      {"tq3", 4 + 48},          // 3.25
      {"tq4", 4 + 64},          // 4.25: the 68 bytes
      {"tq8", 4 + 128},
      {"tq2.5", 4 + 24 + 16},   // 64 channels at 3 bits + 64 at 2 bits
      {"tq3.5", 4 + 32 + 24},   // 64 at 4 bits + 64 at 3 bits
      {"tq3p", 4 + 32 + 4 + 16},  // norm + 2-bit MSE + gamma + 128 sign bits
      {"tq4p", 4 + 48 + 4 + 16},
      {"turbo2", 4 * 2 + 32},   // 4 f16 scales (one per 32) + 2 bits: 2.5 bits/value
      {"turbo3", 4 * 2 + 48},   // 3.5 bits/value
      {"turbo4", 2 * 2 + 64},   // 2 f16 scales (one per 64) + 4 bits: 4.25 bits/value
  };
  for (const Case& c : cases) {
    const Format f = Parse(c.name, 128);
    EXPECT_EQ(f.CodeBytes(), c.bytes) << c.name;
    EXPECT_DOUBLE_EQ(f.BitsPerValue(), 8.0 * c.bytes / 128) << c.name;
  }
  EXPECT_DOUBLE_EQ(Parse("turbo2", 128).BitsPerValue(), 2.5);
  EXPECT_DOUBLE_EQ(Parse("turbo3", 128).BitsPerValue(), 3.5);
  EXPECT_DOUBLE_EQ(Parse("turbo4", 128).BitsPerValue(), 4.25);
}

TEST(FormatTest, OddDimensionsPadEachFieldToBytes) {
  // d = 100, tq3: 300 bits → 38 bytes; tq2.5: 50·3 = 150 → 19, 50·2 = 100 → 13.
  EXPECT_EQ(Parse("tq3", 100).CodeBytes(), 4u + 38u);
  EXPECT_EQ(Parse("tq2.5", 100).CodeBytes(), 4u + 19u + 13u);
  // turbo3 at d = 100: ceil(100/32) = 4 scales.
  EXPECT_EQ(Parse("turbo3", 100).CodeBytes(), 4u * 2 + 38u);
  // QJL with m = 100 rows: 13 sign bytes.
  EXPECT_EQ(Parse("tq4p", 100).CodeBytes(), 4u + 38u + 4u + 13u);
}

TEST(FormatTest, NamesRoundTrip) {
  std::vector<std::string> names = PresetNames();
  for (const char* extra : {"tq4-f16", "tq4-ipc", "tq3-ls", "tq4-haar", "tq2-r3", "tq4-ls-b16",
                            "tq3-o10", "tq4p-m256", "turbo3-f32", "turbo4-ipc", "tq4p-f16"}) {
    names.push_back(extra);
  }
  for (int dim : {2, 64, 96, 128, 1536}) {
    for (const std::string& name : names) {
      absl::StatusOr<Format> f = ParseFormat(name, dim, 99);
      if (!f.ok()) continue;  // some modifiers do not fit tiny dims
      EXPECT_EQ(f->Name(), name) << "dim " << dim;
      absl::StatusOr<Format> again = ParseFormat(f->Name(), dim, 99);
      ASSERT_OK(again);
      EXPECT_EQ(*again, *f) << name;
    }
  }
}

TEST(FormatTest, SerializeGoldenBytes) {
  // Pinned: the catalog stores these bytes; a change breaks existing data.
  Format f = Parse("tq3.5-f16-ipc", 96);
  f.seed = 0x0102030405060708ULL;
  const std::string bytes = f.Serialize();
  const unsigned char expected[kSerializedFormatBytes] = {
      0x01, 0x00, 0x00, 0x00,  // version 1
      0x60, 0x00, 0x00, 0x00,  // dim 96
      0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // seed
      0x01, 0x03, 0x01, 0x02,  // mode mse, bits 3, hadamard, 2 rounds
      0x02, 0x02, 0x00, 0x00,  // f16, unbiased-ip, reserved
      0x30, 0x00, 0x00, 0x00,  // 48 outlier channels
      0x00, 0x00, 0x00, 0x00,  // scale_block 0
      0x00, 0x00, 0x00, 0x00,  // qjl_rows 0
      0x00, 0x00, 0x00, 0x00,  // reserved
  };
  ASSERT_EQ(bytes.size(), kSerializedFormatBytes);
  EXPECT_EQ(bytes, std::string(reinterpret_cast<const char*>(expected), sizeof(expected)));
  absl::StatusOr<Format> back = Format::Deserialize(bytes);
  ASSERT_OK(back);
  EXPECT_EQ(*back, f);
}

TEST(FormatTest, DeserializeRejectsBadBytes) {
  const std::string good = Parse("tq4", 128).Serialize();
  EXPECT_STATUS_CODE(Format::Deserialize(good.substr(1)), absl::StatusCode::kInvalidArgument);
  std::string newer = good;
  newer[0] = 2;  // version 2 does not exist yet
  EXPECT_STATUS_CODE(Format::Deserialize(newer), absl::StatusCode::kFailedPrecondition);
  std::string reserved = good;
  reserved[37] = 1;
  EXPECT_STATUS_CODE(Format::Deserialize(reserved), absl::StatusCode::kInvalidArgument);
  std::string bad_bits = good;
  bad_bits[17] = 9;
  EXPECT_STATUS_CODE(Format::Deserialize(bad_bits), absl::StatusCode::kInvalidArgument);
}

TEST(FormatTest, ValidateRejectsBadParameters) {
  auto invalid = [](Format f) { EXPECT_STATUS_CODE(f.Validate(), absl::StatusCode::kInvalidArgument); };
  Format ok = Parse("tq4", 128);
  EXPECT_OK(ok.Validate());
  Format f = ok;
  f.dim = 0;
  invalid(f);
  f = ok;
  f.dim = kMaxDim + 1;
  invalid(f);
  for (int bits : {0, 9, -1}) {
    f = ok;
    f.bits = bits;
    invalid(f);
  }
  f = ok;
  f.outlier_channels = 129;
  invalid(f);
  f = Parse("tq8", 128);
  f.outlier_channels = 4;  // would need 9 bits
  invalid(f);
  f = ok;
  f.hadamard_rounds = 0;
  invalid(f);
  f = ok;
  f.scale_block = 32;  // per-block scales need ipc or ls
  invalid(f);
  f = Parse("tq4p", 128);
  f.scale_rule = ScaleRule::kLeastSquares;
  invalid(f);
  f = ok;
  f.qjl_rows = 64;  // QJL rows on an MSE format
  invalid(f);
  f = ok;
  f.mode = static_cast<QuantMode>(7);
  invalid(f);
}

TEST(FormatTest, ParseRejectsUnknownNames) {
  for (const char* name : {"", "tq", "tq0", "tq9", "tq8.5", "tq1p", "turbo5", "pq4", "tq4-",
                           "tq4-zz", "tq4-r", "tq4-r9", "tq4-b999"}) {
    EXPECT_STATUS_CODE(ParseFormat(name, 128), absl::StatusCode::kInvalidArgument) << name;
  }
  EXPECT_STATUS_CODE(ParseFormat("tq4", 0), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tqdb::index
