#include "storage/internal/crc32c.h"

#include <dlfcn.h>

#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace tqdb::storage::internal {
namespace {

constexpr char kExtendSymbol[] = "_ZN7rocksdb6crc32c6ExtendEjPKcm";

#if defined(__x86_64__)
// Eight bytes per crc32 instruction, then the tail byte by byte. The
// instruction's CRC is the reflected Castagnoli one with no inversion: the
// conventional pre- and post-inversion (RocksDB's too) are done here.
__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t init_crc, const char* data,
                                                        size_t n) {
  uint64_t crc = ~init_crc;
  for (; n >= 8; n -= 8, data += 8) {
    uint64_t word;
    std::memcpy(&word, data, 8);
    crc = _mm_crc32_u64(crc, word);
  }
  auto crc32 = static_cast<uint32_t>(crc);
  for (; n > 0; --n, ++data) crc32 = _mm_crc32_u8(crc32, static_cast<uint8_t>(*data));
  return ~crc32;
}
#endif

Crc32cExtendFn ChooseExtend() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("sse4.2")) return ExtendSse42;
#endif
  const Crc32cExtendFn library = LibraryCrc32cExtend();
  return library != nullptr ? library : Crc32cExtendBitwise;
}

}  // namespace

uint32_t Crc32cExtendBitwise(uint32_t init_crc, const char* data, size_t n) {
  uint32_t crc = ~init_crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= static_cast<uint8_t>(data[i]);
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

Crc32cExtendFn LibraryCrc32cExtend() {
  static const auto library =
      reinterpret_cast<Crc32cExtendFn>(dlsym(RTLD_NEXT, kExtendSymbol));
  return library;
}

bool HardwareCrc32cInUse() {
  return dlsym(RTLD_DEFAULT, kExtendSymbol) == reinterpret_cast<void*>(&rocksdb::crc32c::Extend);
}

}  // namespace tqdb::storage::internal

namespace rocksdb::crc32c {

uint32_t Extend(uint32_t init_crc, const char* data, size_t n) {
  static const tqdb::storage::internal::Crc32cExtendFn extend =
      tqdb::storage::internal::ChooseExtend();
  return extend(init_crc, data, n);
}

}  // namespace rocksdb::crc32c
