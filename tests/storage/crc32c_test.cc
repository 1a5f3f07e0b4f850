// The WAL's CRC32C (storage/internal/crc32c.h): RocksDB's calls reach the
// hardware definition, which gives the published check values and equals
// both the bitwise definition and librocksdb's own table version at every
// length, offset and starting CRC, so WAL files read the same whichever
// wrote them.
#include "storage/internal/crc32c.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tqdb::storage::internal {
namespace {

uint32_t Crc(const std::string& s) { return rocksdb::crc32c::Extend(0, s.data(), s.size()); }

TEST(Crc32cTest, RocksDbCallsReachTheHardwareDefinition) {
  EXPECT_TRUE(HardwareCrc32cInUse());
  ASSERT_NE(LibraryCrc32cExtend(), nullptr);
  EXPECT_NE(LibraryCrc32cExtend(), &rocksdb::crc32c::Extend);
}

TEST(Crc32cTest, PublishedCheckValues) {
  EXPECT_EQ(Crc("123456789"), 0xe3069283u);  // the CRC catalogue's check value
  // RFC 3720 (iSCSI), appendix B.4.
  EXPECT_EQ(Crc(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(Crc(std::string(32, '\xff')), 0x62a8ab43u);
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  EXPECT_EQ(Crc(ascending), 0x46dd794eu);
  EXPECT_EQ(Crc(""), 0u);
  EXPECT_EQ(Crc32cExtendBitwise(0, "123456789", 9), 0xe3069283u);
}

TEST(Crc32cTest, EqualsTheBitwiseDefinitionAndTheLibrarysOwnEverywhere) {
  const Crc32cExtendFn library = LibraryCrc32cExtend();
  ASSERT_NE(library, nullptr);
  std::mt19937 rng(7);
  std::vector<char> bytes(5000);
  for (char& b : bytes) b = static_cast<char>(rng());
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 70; ++n) lengths.push_back(n);
  for (size_t n : {255, 256, 257, 1000, 4099}) lengths.push_back(n);
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t n : lengths) {
      const uint32_t start = static_cast<uint32_t>(rng());
      for (uint32_t init : {0u, start}) {
        const uint32_t want = Crc32cExtendBitwise(init, bytes.data() + offset, n);
        ASSERT_EQ(rocksdb::crc32c::Extend(init, bytes.data() + offset, n), want)
            << "offset " << offset << ", length " << n << ", start " << init;
        ASSERT_EQ(library(init, bytes.data() + offset, n), want)
            << "offset " << offset << ", length " << n << ", start " << init;
      }
    }
  }
  // Extending in two parts equals one pass.
  const uint32_t whole = rocksdb::crc32c::Extend(0, bytes.data(), 1000);
  const uint32_t first = rocksdb::crc32c::Extend(0, bytes.data(), 333);
  EXPECT_EQ(rocksdb::crc32c::Extend(first, bytes.data() + 333, 667), whole);
}

}  // namespace
}  // namespace tqdb::storage::internal
