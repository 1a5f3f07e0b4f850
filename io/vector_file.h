// Readers for the vector files FAISS and ann-benchmarks use.
//
//   .fvecs  per record: int32 d, then d float32      (TEXMEX, little-endian)
//   .ivecs  per record: int32 d, then d int32
//   .bvecs  per record: int32 d, then d uint8        (read as floats 0 … 255)
//   .npy    NumPy arrays, see io/npy_file.h
// Every record of a TEXMEX file must have the same d. Errors: NotFound when
// the file cannot be opened; DataLoss, naming the record and its byte offset,
// for a truncated record, a non-positive d or a d that differs from the first
// record's.
// Thread-safety: pure functions.
#ifndef TQDB_IO_VECTOR_FILE_H_
#define TQDB_IO_VECTOR_FILE_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tqdb::io {

template <typename T>
struct VectorSet {
  size_t n = 0;        // records
  int dim = 0;         // values per record
  std::vector<T> data;  // n × dim, row-major
  const T* row(size_t i) const { return data.data() + i * dim; }
};

// Each reads at most max_rows records.
absl::StatusOr<VectorSet<float>> ReadFvecs(const std::string& path,
                                           size_t max_rows = std::numeric_limits<size_t>::max());
absl::StatusOr<VectorSet<int32_t>> ReadIvecs(const std::string& path,
                                             size_t max_rows = std::numeric_limits<size_t>::max());
// uint8 values converted exactly to float.
absl::StatusOr<VectorSet<float>> ReadBvecs(const std::string& path,
                                           size_t max_rows = std::numeric_limits<size_t>::max());

// Reads float vectors choosing the reader by the file name's extension:
// .fvecs, .bvecs or .npy (ReadNpy). InvalidArgument for any other extension;
// otherwise the chosen reader's errors.
absl::StatusOr<VectorSet<float>> ReadVectors(const std::string& path,
                                             size_t max_rows = std::numeric_limits<size_t>::max());

}  // namespace tqdb::io

#endif  // TQDB_IO_VECTOR_FILE_H_
