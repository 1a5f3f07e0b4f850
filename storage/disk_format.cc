#include "storage/disk_format.h"

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace tqdb::storage {

absl::Status ValidateCollectionName(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("collection name must be 1 to 64 characters, got ", name.size()));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "collection name '", std::string(name), "' may only use [A-Za-z0-9_.-]"));
    }
  }
  return absl::OkStatus();
}

void AppendBigEndian32(uint32_t v, std::string* out) {
  for (int s = 24; s >= 0; s -= 8) out->push_back(static_cast<char>((v >> s) & 0xff));
}

void AppendBigEndian64(uint64_t v, std::string* out) {
  for (int s = 56; s >= 0; s -= 8) out->push_back(static_cast<char>((v >> s) & 0xff));
}

uint32_t ReadBigEndian32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}

uint64_t ReadBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}

std::string CollectionKey(std::string_view collection) {
  return absl::StrCat("C", std::string(collection));
}

std::string SequenceKeyPrefix(std::string_view collection) {
  std::string key = absl::StrCat("S", std::string(collection));
  key.push_back('\0');
  return key;
}

std::string SequenceKey(std::string_view collection, uint64_t internal_id) {
  std::string key = SequenceKeyPrefix(collection);
  AppendBigEndian64(internal_id, &key);
  return key;
}

bool ParseSequenceKey(std::string_view collection, std::string_view key, uint64_t* internal_id) {
  const std::string prefix = SequenceKeyPrefix(collection);
  if (key.size() != prefix.size() + 8 || key.substr(0, prefix.size()) != prefix) return false;
  *internal_id = ReadBigEndian64(key.data() + prefix.size());
  return true;
}

std::string KvColumnFamily(std::string_view collection, int layer, int head) {
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "/L%02d/H%02d", layer, head);
  return absl::StrCat(std::string(collection), suffix);
}

std::string TailColumnFamily(std::string_view collection) {
  return absl::StrCat(std::string(collection), "/tail");
}

std::string WindowColumnFamily(std::string_view collection) {
  return absl::StrCat(std::string(collection), "/window");
}

std::string CodesColumnFamily(std::string_view collection) {
  return absl::StrCat(std::string(collection), "/codes");
}

std::string RawColumnFamily(std::string_view collection) {
  return absl::StrCat(std::string(collection), "/raw");
}

bool IsColumnFamilyOf(std::string_view collection, std::string_view cf) {
  return cf.size() > collection.size() && cf.substr(0, collection.size()) == collection &&
         cf[collection.size()] == '/';
}

std::string PageKey(uint64_t internal_id, uint32_t page) {
  std::string key;
  key.reserve(kPageKeyBytes);
  AppendBigEndian64(internal_id, &key);
  AppendBigEndian32(page, &key);
  return key;
}

bool ParsePageKey(std::string_view key, uint64_t* internal_id, uint32_t* page) {
  if (key.size() != kPageKeyBytes) return false;
  *internal_id = ReadBigEndian64(key.data());
  *page = ReadBigEndian32(key.data() + 8);
  return true;
}

std::string TailKey(uint64_t internal_id, uint64_t position) {
  std::string key;
  key.reserve(kTailKeyBytes);
  AppendBigEndian64(internal_id, &key);
  AppendBigEndian64(position, &key);
  return key;
}

bool ParseTailKey(std::string_view key, uint64_t* internal_id, uint64_t* position) {
  if (key.size() != kTailKeyBytes) return false;
  *internal_id = ReadBigEndian64(key.data());
  *position = ReadBigEndian64(key.data() + 8);
  return true;
}

std::string IdKey(uint64_t id) {
  std::string key;
  key.reserve(kIdKeyBytes);
  AppendBigEndian64(id, &key);
  return key;
}

bool ParseIdKey(std::string_view key, uint64_t* id) {
  if (key.size() != kIdKeyBytes) return false;
  *id = ReadBigEndian64(key.data());
  return true;
}

}  // namespace tqdb::storage
