// The WAL's CRC32C in hardware. RocksDB checksums every WAL record with
// CRC32C (rocksdb::crc32c::Extend). Debian builds its librocksdb portable,
// without SSE4.2, so the library computes it with lookup tables: at 32 x 8 x
// 128 a token's 35 KB record passes through the WAL twice (tail, then its
// page), and the table loop took about a tenth of an append's CPU.
// crc32c.cc defines rocksdb::crc32c::Extend itself, with the SSE4.2 crc32
// instruction, and every binary linking the store exports it, so the dynamic
// linker binds the library's calls (through its PLT) to this definition.
// CRC32C is one function whatever computes it: the WAL bytes are the same,
// and files written by either read with the other. On a CPU without SSE4.2
// it calls the library's own (or, with no library version to find, the
// bitwise definition below).
//
// Thread-safety: pure functions.
#ifndef TQDB_STORAGE_INTERNAL_CRC32C_H_
#define TQDB_STORAGE_INTERNAL_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace rocksdb::crc32c {
// CRC32C of data[0, n) continuing from `init_crc` (the CRC of the bytes
// before; 0 for none), RocksDB's declaration (util/crc32c.h).
uint32_t Extend(uint32_t init_crc, const char* data, size_t n);
}  // namespace rocksdb::crc32c

namespace tqdb::storage::internal {

// The library's own Extend (librocksdb's table version), found past this
// binary's definition; for the fallback and the equality tests.
using Crc32cExtendFn = uint32_t (*)(uint32_t, const char*, size_t);
Crc32cExtendFn LibraryCrc32cExtend();

// The definition, a bit at a time (the reflected Castagnoli polynomial
// 0x82f63b78, inverted before and after): the reference the tests hold both
// other versions to.
uint32_t Crc32cExtendBitwise(uint32_t init_crc, const char* data, size_t n);

// True when RocksDB's calls to Extend reach the definition in crc32c.cc.
bool HardwareCrc32cInUse();

}  // namespace tqdb::storage::internal

#endif  // TQDB_STORAGE_INTERNAL_CRC32C_H_
