// ReadTensorFloats: the elements of one tqdb.v1.Tensor field of a serialized
// response, read straight off gRPC's received slices. Parsing the response
// with protobuf copies a Score result's megabytes into the tensor's `data`
// string before they reach the caller's floats; this copies f32 elements
// once, from the slices into the result.
//
// Thread-safety: pure functions.
#ifndef TQDB_CLIENT_INTERNAL_TENSOR_READER_H_
#define TQDB_CLIENT_INTERNAL_TENSOR_READER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include <google/protobuf/io/zero_copy_stream.h>

#include "absl/status/statusor.h"

namespace tqdb::client::internal {

// The elements, as floats, of the Tensor in field `field` of the message
// `in` holds: `data` converted from its dtype (f32, f16, bf16) when it is
// not empty, else `values` — what parsing the message and reading that
// Tensor would give, for any valid encoding (fields in any order, repeated
// or merged occurrences, packed or unpacked values). Other fields are
// skipped; an absent tensor is empty. InternalError if the bytes are not a
// valid message or the tensor's data is not whole elements of f32, f16 or
// bf16.
absl::StatusOr<std::vector<float>> ReadTensorFloats(google::protobuf::io::ZeroCopyInputStream* in,
                                                    int field);

// A Tensor's `data` (`bytes` bytes of `dtype`, a tqdb.v1.DType value) as
// floats. InternalError if the dtype is not f32, f16 or bf16 or the bytes are
// not whole elements.
absl::StatusOr<std::vector<float>> DataToFloats(int64_t dtype, const char* data, size_t bytes);

}  // namespace tqdb::client::internal

#endif  // TQDB_CLIENT_INTERNAL_TENSOR_READER_H_
