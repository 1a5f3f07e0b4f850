#include "io/vector_file.h"

#include <bit>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"

static_assert(std::endian::native == std::endian::little, "TEXMEX files are little-endian");

namespace tqdb::io {
namespace {

template <typename T>
absl::StatusOr<VectorSet<T>> ReadVecs(const std::string& path, size_t max_rows) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  VectorSet<T> set;
  for (size_t row = 0; row < max_rows; ++row) {
    int32_t d = 0;
    in.read(reinterpret_cast<char*>(&d), sizeof(d));
    if (in.gcount() == 0 && in.eof()) break;  // clean end of file
    if (in.gcount() != sizeof(d)) {
      return absl::DataLossError(absl::StrCat(path, ": record ", row, " has a truncated header"));
    }
    if (d <= 0 || (set.dim != 0 && d != set.dim)) {
      return absl::DataLossError(absl::StrCat(path, ": record ", row, " has d = ", d,
                                              set.dim ? absl::StrCat(", expected ", set.dim)
                                                      : std::string(", expected d > 0")));
    }
    set.dim = d;
    const size_t old = set.data.size();
    set.data.resize(old + d);
    in.read(reinterpret_cast<char*>(set.data.data() + old), sizeof(T) * d);
    if (static_cast<size_t>(in.gcount()) != sizeof(T) * d) {
      return absl::DataLossError(absl::StrCat(path, ": record ", row, " is truncated (",
                                              in.gcount(), " of ", sizeof(T) * d, " bytes)"));
    }
    ++set.n;
  }
  return set;
}

}  // namespace

absl::StatusOr<VectorSet<float>> ReadFvecs(const std::string& path, size_t max_rows) {
  return ReadVecs<float>(path, max_rows);
}

absl::StatusOr<VectorSet<int32_t>> ReadIvecs(const std::string& path, size_t max_rows) {
  return ReadVecs<int32_t>(path, max_rows);
}

}  // namespace tqdb::io
