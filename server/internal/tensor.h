// Request tensors (tqdb.v1.Tensor) to store inputs and store outputs to
// response tensors: validation of dtype, size, shape and finiteness, and the
// f16/bf16 -> f32 conversion of queries.
//
// Thread-safety: pure functions; a TensorView borrows its proto's storage
// and is valid while the proto is; a ResultWriter belongs to one thread.
#ifndef TQDB_SERVER_INTERNAL_TENSOR_H_
#define TQDB_SERVER_INTERNAL_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/message_lite.h>
#include <grpcpp/support/byte_buffer.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "storage/options.h"
#include "tqdb/v1/tqdb.pb.h"

namespace tqdb::server::internal {

// The elements of a request tensor, in place.
struct TensorView {
  bool packed = false;  // elements came as `data` (else as `values`)
  storage::DType dtype = storage::DType::kF32;
  size_t size = 0;                  // elements
  absl::Span<const float> floats;   // !packed
  absl::Span<const uint8_t> bytes;  // packed: size * DTypeBytes(dtype) bytes
  std::vector<int64_t> shape;       // as given (may be empty)
};

// One expected dimension: a name for messages and a size (-1: any, > 0).
struct Dim {
  absl::string_view name;
  int64_t size;
};

// Checks `tensor` (named `what` in messages) and views it. InvalidArgument if
// both values and data are set, data is set without a valid dtype or with a
// size not a multiple of the element size, or the given shape's product is
// not the element count.
absl::StatusOr<TensorView> ViewTensor(const tqdb::v1::Tensor& tensor, absl::string_view what);

// Checks the view against `expected` (at most one dimension -1) and returns
// the size of the -1 dimension (or 1 if none). InvalidArgument, naming the
// expected shape, if the element count is not the expected product (a
// positive multiple for a -1 dimension), or a given shape differs from it.
// A given shape may omit leading dimensions of size 1.
absl::StatusOr<int64_t> CheckShape(const TensorView& view, absl::string_view what,
                                   absl::Span<const Dim> expected);

// The elements as floats. InvalidArgument if one is NaN or infinite.
absl::StatusOr<std::vector<float>> ToFloats(const TensorView& view, absl::string_view what);

// How a response tensor carries its elements: `values` (packed = false) or
// `data` of `dtype`.
struct ResultForm {
  bool packed = false;
  storage::DType dtype = storage::DType::kF32;
};

// The form of a Score or Attend result: that of the queries (packed: f32
// bytes) unless `result_dtype` names a type. InvalidArgument for a value
// outside the DType enum.
absl::StatusOr<ResultForm> ResultFormFor(bool queries_packed, tqdb::v1::DType result_dtype);

// A response whose one large tensor is written in place and sent without a
// copy. Floats(n) returns room for the tensor's n elements: for f32 results
// (`values` or f32 `data`) the very buffer gRPC sends, else a scratch buffer
// that Finish rounds to nearest even into f16/bf16. Finish serializes the
// rest of the response and the tensor's head (shape, dtype and the payload's
// tag and length) into a small slice, and hands the payload to gRPC as a
// second slice that owns it. A protobuf response would copy the megabytes of
// a Score result twice: into its bytes field, then into gRPC's slices.
// Use: Floats once, fill every element, Finish once.
class ResultWriter {
 public:
  explicit ResultWriter(ResultForm form) : form_(form) {}
  float* Floats(size_t n);
  // `rest`: the response without the tensor; `field`: the tensor's field
  // number in it. Parsed, the result equals `rest` with that field set to
  // what FillTensor(elements, shape, form) makes.
  grpc::ByteBuffer Finish(const google::protobuf::MessageLite& rest, int field,
                          absl::Span<const int64_t> shape);

 private:
  ResultForm form_;
  size_t n_ = 0;
  std::unique_ptr<float[]> floats_;
};

// Fills `out` with `values` and `shape` in `form` (f16/bf16 rounded to
// nearest even).
void FillTensor(absl::Span<const float> values, std::vector<int64_t> shape, ResultForm form,
                tqdb::v1::Tensor* out);
// The same as f32 bytes when `packed`, else as repeated floats.
void FillTensor(absl::Span<const float> values, std::vector<int64_t> shape, bool packed,
                tqdb::v1::Tensor* out);

}  // namespace tqdb::server::internal

#endif  // TQDB_SERVER_INTERNAL_TENSOR_H_
