// Golden bytes of the on-disk layout (storage/disk_format.h): every key and
// family name below is what existing data directories hold, so a change that
// makes any of these tests fail would make old stores unreadable.
#include "storage/disk_format.h"

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/testing.h"
#include "gtest/gtest.h"

namespace tqdb::storage {
namespace {

// A std::string from a byte list, embedded zeros included.
std::string Bytes(std::initializer_list<uint8_t> bytes) {
  std::string out;
  for (uint8_t b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

TEST(DiskFormatTest, PageKeyIsIdThenPageBigEndian) {
  const std::string key = PageKey(0x0102030405060708u, 0x0A0B0C0Du);
  EXPECT_EQ(key, Bytes({0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0A, 0x0B, 0x0C, 0x0D}));
  EXPECT_EQ(key.size(), kPageKeyBytes);
  EXPECT_EQ(kPageKeyBytes, 12u);
}

TEST(DiskFormatTest, ParsePageKeyRoundTrips) {
  for (uint64_t id : {uint64_t{0}, uint64_t{1}, uint64_t{0x0102030405060708u}, ~uint64_t{0}}) {
    for (uint32_t page : {0u, 1u, 0x80000000u, 0xFFFFFFFFu}) {
      uint64_t got_id = 12345;
      uint32_t got_page = 678;
      ASSERT_TRUE(ParsePageKey(PageKey(id, page), &got_id, &got_page)) << id << " " << page;
      EXPECT_EQ(got_id, id);
      EXPECT_EQ(got_page, page);
    }
  }
}

TEST(DiskFormatTest, ParsePageKeyRejectsWrongLengths) {
  const std::string key = PageKey(7, 9);
  uint64_t id = 0;
  uint32_t page = 0;
  EXPECT_FALSE(ParsePageKey("", &id, &page));
  EXPECT_FALSE(ParsePageKey(std::string_view(key).substr(0, 11), &id, &page));
  EXPECT_FALSE(ParsePageKey(key + '\0', &id, &page));
  EXPECT_FALSE(ParsePageKey(IdKey(7), &id, &page));
}

TEST(DiskFormatTest, PageKeysSortBySequenceThenPage) {
  EXPECT_LT(PageKey(1, 0xFFFFFFFFu), PageKey(2, 0));
  EXPECT_LT(PageKey(5, 255), PageKey(5, 256));
}

TEST(DiskFormatTest, TailKeyIsIdThenPositionBigEndian) {
  const std::string key = TailKey(0x0102030405060708u, 0x1112131415161718u);
  EXPECT_EQ(key, Bytes({0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x11, 0x12, 0x13, 0x14,
                        0x15, 0x16, 0x17, 0x18}));
  EXPECT_EQ(kTailKeyBytes, 16u);
  uint64_t id = 0, pos = 0;
  ASSERT_TRUE(ParseTailKey(key, &id, &pos));
  EXPECT_EQ(id, 0x0102030405060708u);
  EXPECT_EQ(pos, 0x1112131415161718u);
  EXPECT_FALSE(ParseTailKey(PageKey(1, 2), &id, &pos));
  EXPECT_LT(TailKey(1, ~uint64_t{0}), TailKey(2, 0));
  EXPECT_LT(TailKey(5, 255), TailKey(5, 256));
  EXPECT_EQ(TailColumnFamily("c"), "c/tail");
  EXPECT_EQ(WindowColumnFamily("c"), "c/window");
}

TEST(DiskFormatTest, IdKeyIsBigEndian) {
  EXPECT_EQ(IdKey(0x0102030405060708u), Bytes({0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}));
  EXPECT_EQ(IdKey(1), Bytes({0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(IdKey(1).size(), kIdKeyBytes);
  EXPECT_EQ(kIdKeyBytes, 8u);
}

TEST(DiskFormatTest, IdKeysSortNumerically) {
  // Bytewise, as RocksDB's default comparator orders them; little-endian keys
  // would put 256 (00 01 …) before 1 (01 00 …).
  EXPECT_LT(IdKey(1), IdKey(256));
  EXPECT_LT(IdKey(255), IdKey(256));
  EXPECT_LT(IdKey(0x00FFFFFFFFFFFFFFu), IdKey(0x0100000000000000u));
  EXPECT_LT(IdKey(0x7FFFFFFFFFFFFFFFu), IdKey(0x8000000000000000u));
}

TEST(DiskFormatTest, ParseIdKeyRoundTripsAndRejectsWrongLengths) {
  for (uint64_t v : {uint64_t{0}, uint64_t{42}, uint64_t{0xDEADBEEFCAFEF00Du}, ~uint64_t{0}}) {
    uint64_t got = 0;
    ASSERT_TRUE(ParseIdKey(IdKey(v), &got));
    EXPECT_EQ(got, v);
  }
  uint64_t got = 0;
  EXPECT_FALSE(ParseIdKey("", &got));
  EXPECT_FALSE(ParseIdKey(std::string(7, 'x'), &got));
  EXPECT_FALSE(ParseIdKey(std::string(9, 'x'), &got));
}

TEST(DiskFormatTest, BigEndianHelpers) {
  std::string out;
  AppendBigEndian32(0xA1B2C3D4u, &out);
  AppendBigEndian64(0x0011223344556677u, &out);
  EXPECT_EQ(out, Bytes({0xA1, 0xB2, 0xC3, 0xD4, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77}));
  EXPECT_EQ(ReadBigEndian32(out.data()), 0xA1B2C3D4u);
  EXPECT_EQ(ReadBigEndian64(out.data() + 4), 0x0011223344556677u);
}

TEST(DiskFormatTest, SequenceKeyGoldenBytes) {
  std::string want = "Sc";
  want.push_back('\0');
  want += Bytes({0, 0, 0, 0, 0, 0, 0, 5});
  EXPECT_EQ(SequenceKey("c", 5), want);
  EXPECT_EQ(SequenceKey("c", 5).size(), 11u);
  EXPECT_EQ(SequenceKeyPrefix("c"), std::string("Sc\0", 3));
  EXPECT_EQ(SequenceKey("llama", 0x0102030405060708u),
            std::string("Sllama\0", 7) + Bytes({1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(DiskFormatTest, ParseSequenceKey) {
  uint64_t id = 0;
  ASSERT_TRUE(ParseSequenceKey("c", SequenceKey("c", 5), &id));
  EXPECT_EQ(id, 5u);
  ASSERT_TRUE(ParseSequenceKey("c", SequenceKey("c", ~uint64_t{0}), &id));
  EXPECT_EQ(id, ~uint64_t{0});

  id = 77;
  // Another collection's keys, including one whose name extends "c".
  EXPECT_FALSE(ParseSequenceKey("c", SequenceKey("d", 5), &id));
  EXPECT_FALSE(ParseSequenceKey("c", SequenceKey("cc", 5), &id));
  EXPECT_FALSE(ParseSequenceKey("cc", SequenceKey("c", 5), &id));
  // Wrong lengths and other key kinds.
  EXPECT_FALSE(ParseSequenceKey("c", SequenceKeyPrefix("c"), &id));
  EXPECT_FALSE(ParseSequenceKey("c", SequenceKey("c", 5) + '\0', &id));
  EXPECT_FALSE(ParseSequenceKey("c", CollectionKey("c"), &id));
  EXPECT_EQ(id, 77u);
}

TEST(DiskFormatTest, SequenceKeysOfOneCollectionAreContiguous) {
  // The prefix ends in 0x00, so "c"'s keys cannot interleave with "c<x>"'s.
  EXPECT_LT(SequenceKey("c", ~uint64_t{0}), SequenceKey("c.", 0));
  EXPECT_LT(SequenceKey("c", ~uint64_t{0}), SequenceKey("c-", 0));
  EXPECT_LT(SequenceKey("c", 1), SequenceKey("c", 256));
}

TEST(DiskFormatTest, CatalogKeys) {
  EXPECT_EQ(CollectionKey("c"), "Cc");
  EXPECT_EQ(CollectionKey("my.coll-1"), "Cmy.coll-1");
  EXPECT_EQ(kVersionKey, "V");
}

TEST(DiskFormatTest, KvColumnFamilyNames) {
  EXPECT_EQ(KvColumnFamily("c", 7, 3), "c/L07/H03");
  EXPECT_EQ(KvColumnFamily("c", 0, 0), "c/L00/H00");
  EXPECT_EQ(KvColumnFamily("c", 123, 3), "c/L123/H03");
  EXPECT_EQ(KvColumnFamily("llama", 31, 100), "llama/L31/H100");
}

TEST(DiskFormatTest, EmbeddingColumnFamilyNames) {
  EXPECT_EQ(CodesColumnFamily("c"), "c/codes");
  EXPECT_EQ(RawColumnFamily("c"), "c/raw");
  EXPECT_EQ(CodesColumnFamily("A-b_c.9"), "A-b_c.9/codes");
}

TEST(DiskFormatTest, IsColumnFamilyOf) {
  EXPECT_TRUE(IsColumnFamilyOf("c", "c/L00/H00"));
  EXPECT_TRUE(IsColumnFamilyOf("c", KvColumnFamily("c", 123, 3)));
  EXPECT_TRUE(IsColumnFamilyOf("c", CodesColumnFamily("c")));
  EXPECT_TRUE(IsColumnFamilyOf("c", RawColumnFamily("c")));
  EXPECT_FALSE(IsColumnFamilyOf("c", "cc/codes"));
  EXPECT_FALSE(IsColumnFamilyOf("cc", "c/codes"));
  EXPECT_FALSE(IsColumnFamilyOf("c", "c"));
  EXPECT_FALSE(IsColumnFamilyOf("c", "default"));
  EXPECT_FALSE(IsColumnFamilyOf("c", ""));
}

TEST(DiskFormatTest, ValidateCollectionNameAccepts) {
  EXPECT_OK(ValidateCollectionName("a"));
  EXPECT_OK(ValidateCollectionName("A-b_c.9"));
  EXPECT_OK(ValidateCollectionName(std::string(64, 'x')));
  EXPECT_OK(ValidateCollectionName("0123456789"));
}

TEST(DiskFormatTest, ValidateCollectionNameRejects) {
  EXPECT_STATUS_CODE(ValidateCollectionName(""), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(ValidateCollectionName(std::string(65, 'x')),
                     absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(ValidateCollectionName("a/b"), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(ValidateCollectionName("a b"), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(ValidateCollectionName(std::string_view("a\0b", 3)),
                     absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(ValidateCollectionName("é"), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(ValidateCollectionName("a:b"), absl::StatusCode::kInvalidArgument);
}

TEST(DiskFormatTest, PinnedConstants) {
  EXPECT_EQ(kCatalogVersion, 1u);
  EXPECT_EQ(std::string(kAppendOperatorName), "tqdb.append.v1");
  EXPECT_EQ(kDefaultPageTokens, 64);
}

}  // namespace
}  // namespace tqdb::storage
