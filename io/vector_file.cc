#include "io/vector_file.h"

#include <bit>
#include <cstring>
#include <fstream>
#include <string_view>
#include <type_traits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "io/npy_file.h"

static_assert(std::endian::native == std::endian::little, "TEXMEX files are little-endian");

namespace tqdb::io {
namespace {

// Reads records of `Stored` values into a VectorSet<T> (T = Stored, or a
// widening conversion such as uint8 → float).
template <typename Stored, typename T>
absl::StatusOr<VectorSet<T>> ReadVecs(const std::string& path, size_t max_rows) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  VectorSet<T> set;
  std::vector<Stored> buffer;  // one record, when Stored differs from T
  uint64_t offset = 0;         // of the current record
  for (size_t row = 0; row < max_rows; ++row) {
    int32_t d = 0;
    in.read(reinterpret_cast<char*>(&d), sizeof(d));
    if (in.gcount() == 0 && in.eof()) break;  // clean end of file
    if (in.gcount() != sizeof(d)) {
      return absl::DataLossError(absl::StrCat(path, ": record ", row, " at byte offset ", offset,
                                              " has a truncated header"));
    }
    if (d <= 0 || (set.dim != 0 && d != set.dim)) {
      return absl::DataLossError(absl::StrCat(path, ": record ", row, " at byte offset ", offset,
                                              " has d = ", d,
                                              set.dim ? absl::StrCat(", expected ", set.dim)
                                                      : std::string(", expected d > 0")));
    }
    set.dim = d;
    const size_t old = set.data.size();
    set.data.resize(old + d);
    const size_t body = sizeof(Stored) * d;
    char* dst;
    if constexpr (std::is_same_v<Stored, T>) {
      dst = reinterpret_cast<char*>(set.data.data() + old);
    } else {
      buffer.resize(d);
      dst = reinterpret_cast<char*>(buffer.data());
    }
    in.read(dst, body);
    if (static_cast<size_t>(in.gcount()) != body) {
      return absl::DataLossError(absl::StrCat(path, ": record ", row, " at byte offset ", offset,
                                              " is truncated (", in.gcount(), " of ", body,
                                              " bytes)"));
    }
    if constexpr (!std::is_same_v<Stored, T>) {
      for (int j = 0; j < d; ++j) set.data[old + j] = static_cast<T>(buffer[j]);
    }
    offset += sizeof(d) + body;
    ++set.n;
  }
  return set;
}

}  // namespace

absl::StatusOr<VectorSet<float>> ReadFvecs(const std::string& path, size_t max_rows) {
  return ReadVecs<float, float>(path, max_rows);
}

absl::StatusOr<VectorSet<int32_t>> ReadIvecs(const std::string& path, size_t max_rows) {
  return ReadVecs<int32_t, int32_t>(path, max_rows);
}

absl::StatusOr<VectorSet<float>> ReadBvecs(const std::string& path, size_t max_rows) {
  return ReadVecs<uint8_t, float>(path, max_rows);
}

absl::StatusOr<VectorSet<float>> ReadVectors(const std::string& path, size_t max_rows) {
  if (absl::EndsWith(path, ".fvecs")) return ReadFvecs(path, max_rows);
  if (absl::EndsWith(path, ".bvecs")) return ReadBvecs(path, max_rows);
  if (absl::EndsWith(path, ".npy")) return ReadNpy(path, max_rows);
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": unknown vector file extension (expected .fvecs, .bvecs or .npy)"));
}

}  // namespace tqdb::io
