// Reader for NumPy .npy files holding a matrix of vectors, one per row.
//
// File layout (numpy.lib.format, versions 1.0, 2.0 and 3.0):
//
//   "\x93NUMPY"  major  minor  header_len  header                 data
//    6 bytes     u8     u8     u16 LE (1.x)  header_len bytes:     rows × d values,
//                              u32 LE (2.x, 3.x)  a Python dict    C order
//
// The header is a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (1000, 128), }
// padded with spaces and ended by '\n'. The parser accepts any whitespace,
// either quote style, keys in any order, trailing commas, Python 2 long
// suffixes ("1000L") and ignores unknown keys.
//
// Supported: a 2-D shape (n, d) with d ≥ 1, C order, dtype '<f4' (float32),
// '<f2' (float16, converted exactly) or '|u1' (uint8, any byte-order mark).
// Errors:
//   NotFound         the file cannot be opened.
//   DataLoss         bad magic, truncated preamble or header, a header that is
//                    not a well-formed dict or lacks descr / fortran_order /
//                    shape, data shorter than the shape promises (naming the
//                    first incomplete row and its byte offset), or bytes after
//                    the last row.
//   InvalidArgument  a well-formed file this reader does not support: another
//                    format version, fortran_order True, a big-endian or any
//                    other dtype (structured ones included), a shape that is
//                    not 2-D or has d = 0.
// Every message starts with the path and names the problem.
// Thread-safety: pure functions.
#ifndef TQDB_IO_NPY_FILE_H_
#define TQDB_IO_NPY_FILE_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "io/vector_file.h"

namespace tqdb::io {

// The three keys of an .npy header, as written.
struct NpyHeader {
  std::string descr;           // e.g. "<f4"; empty if the descr was not a string
  bool fortran_order = false;
  std::vector<int64_t> shape;  // () for a scalar
};

// Parses the header dict text (the bytes after header_len, padding included).
// DataLoss, naming the character position, if it is not a well-formed dict
// with the three keys; does not judge whether the dtype or shape is supported.
absl::StatusOr<NpyHeader> ParseNpyHeader(std::string_view text);

// Reads the first min(n, max_rows) rows of an n × d array as floats.
absl::StatusOr<VectorSet<float>> ReadNpy(const std::string& path,
                                         size_t max_rows = std::numeric_limits<size_t>::max());

}  // namespace tqdb::io

#endif  // TQDB_IO_NPY_FILE_H_
