// The on-disk format of a tqdb data directory: one RocksDB database.
//
// Column families
//   default             the catalog (below)
//   <c>/L<ll>/H<hh>     KV collection c, layer ll, KV head hh (two digits, more
//                       when ≥ 100): pages of token records
//   <c>/tail            KV collection c: the newest tokens of each sequence,
//                       not yet in pages
//   <c>/window          KV collection c with an exact window: the newest
//                       tokens' exact keys and values
//   <c>/codes           embedding collection c: codes by id
//   <c>/raw             embedding collection c: raw vectors by id (keep_raw)
//
// Catalog keys (default column family)
//   "V"                               kCatalogVersion, 4 bytes big-endian
//   "C" <c>                           proto::Collection (catalog.proto)
//   "S" <c> 0x00 <id: 8 bytes BE>     proto::Sequence, by internal sequence id
// Collection names are 1…64 characters of [A-Za-z0-9_.-] (no '/' or 0x00).
//
// KV pages. A sequence's tokens are stored under its internal id (ids are
// never reused, so a dropped sequence's bytes can outlive its user id while a
// fork still reads them). Key: <internal id: 8 bytes BE><page: 4 bytes BE>, so
// a sequence is one contiguous key range in every layer/head family. Page p
// of a sequence whose own tokens start at `base` (0, or the fork point) holds
// positions [max(p·P, base), min((p + 1)·P, length)) as consecutive records;
// a record is the key's code bytes then the value's code bytes
// (index/codec/codec.h), with the layer's formats. P = page_tokens of the
// collection (default 64).
//
// KV tail. Appending one token must cost one write, not one per layer and
// head: a sequence's tokens [paged, length) (proto::Sequence) live in
// <c>/tail under <internal id: 8 bytes BE><position: 8 bytes BE>, each value
// one token's records of every layer and head in family order (layer-major).
// When appends complete a page, the batch that completes it moves the page's
// tail tokens into the layer/head families: one RocksDB merge per family
// (merge operator kAppendOperatorName: concatenation onto a partial page),
// and a range delete of the moved tail keys. A page is never rewritten by an
// append; only Truncate rewrites the page it cuts.
//
// KV window (exact_window > 0). <c>/window holds, under the tail's key layout
// (<internal id><position>), the exact record of each token in
// [window_begin, length): for every family in order, dim key values then dim
// value values, little-endian in the collection's exact_dtype (f16, bf16 or
// f32). Appends add the new tokens and range-delete those that left.
//
// Embeddings. <c>/codes: <id: 8 bytes BE> → code bytes of (x − center).
// <c>/raw: <id> → dim little-endian fp16 or fp32 values.
//
// Integrity: RocksDB checksums every WAL record and SST block (CRC32c) and
// reads verify them; readers also check every value's length against the
// catalog. Either failure is DataLoss.
//
// Thread-safety: pure functions.
#ifndef TQDB_STORAGE_DISK_FORMAT_H_
#define TQDB_STORAGE_DISK_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace tqdb::storage {

// Bumped whenever stored bytes would be misread by an older reader.
inline constexpr uint32_t kCatalogVersion = 1;
inline constexpr char kAppendOperatorName[] = "tqdb.append.v1";
inline constexpr int kDefaultPageTokens = 64;

inline constexpr std::string_view kVersionKey = "V";

// InvalidArgument unless `name` is a valid collection name.
absl::Status ValidateCollectionName(std::string_view name);

std::string CollectionKey(std::string_view collection);
// The prefix of every sequence key of `collection`.
std::string SequenceKeyPrefix(std::string_view collection);
std::string SequenceKey(std::string_view collection, uint64_t internal_id);
// The internal id in a SequenceKey; false if `key` is not one of `collection`.
bool ParseSequenceKey(std::string_view collection, std::string_view key, uint64_t* internal_id);

std::string KvColumnFamily(std::string_view collection, int layer, int head);
std::string TailColumnFamily(std::string_view collection);
std::string WindowColumnFamily(std::string_view collection);
std::string CodesColumnFamily(std::string_view collection);
std::string RawColumnFamily(std::string_view collection);
// True if column family `cf` belongs to `collection`.
bool IsColumnFamilyOf(std::string_view collection, std::string_view cf);

inline constexpr size_t kPageKeyBytes = 12;
std::string PageKey(uint64_t internal_id, uint32_t page);
// False if `key` is not kPageKeyBytes long.
bool ParsePageKey(std::string_view key, uint64_t* internal_id, uint32_t* page);

inline constexpr size_t kTailKeyBytes = 16;
std::string TailKey(uint64_t internal_id, uint64_t position);
bool ParseTailKey(std::string_view key, uint64_t* internal_id, uint64_t* position);

inline constexpr size_t kIdKeyBytes = 8;
std::string IdKey(uint64_t id);
bool ParseIdKey(std::string_view key, uint64_t* id);

void AppendBigEndian32(uint32_t v, std::string* out);
void AppendBigEndian64(uint64_t v, std::string* out);
uint32_t ReadBigEndian32(const char* p);
uint64_t ReadBigEndian64(const char* p);

}  // namespace tqdb::storage

#endif  // TQDB_STORAGE_DISK_FORMAT_H_
