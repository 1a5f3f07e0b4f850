#include "server/internal/tensor.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <utility>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <grpcpp/support/slice.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "storage/dtype.h"

namespace tqdb::server::internal {
namespace {

static_assert(std::endian::native == std::endian::little,
              "Tensor.data is little-endian; a big-endian host needs byte swaps");

std::string ShapeString(absl::Span<const Dim> dims) {
  std::vector<std::string> parts;
  for (const Dim& d : dims) {
    parts.push_back(d.size < 0 ? std::string(d.name) : absl::StrCat(d.name, "=", d.size));
  }
  return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
}

// The wire tag of a length-delimited field (wire type 2).
uint32_t LengthDelimitedTag(int field) { return (static_cast<uint32_t>(field) << 3) | 2u; }

float ElementAt(const TensorView& view, size_t i) {
  return view.packed ? storage::ElementAt(view.bytes.data(), view.dtype, i) : view.floats[i];
}

// The element type a proto DType names; nullopt for UNSPECIFIED and values
// outside the enum.
std::optional<storage::DType> FromProto(tqdb::v1::DType dtype) {
  switch (dtype) {
    case tqdb::v1::DTYPE_F32:
      return storage::DType::kF32;
    case tqdb::v1::DTYPE_F16:
      return storage::DType::kF16;
    case tqdb::v1::DTYPE_BF16:
      return storage::DType::kBF16;
    default:
      return std::nullopt;
  }
}

tqdb::v1::DType ToProto(storage::DType dtype) {
  switch (dtype) {
    case storage::DType::kF16:
      return tqdb::v1::DTYPE_F16;
    case storage::DType::kBF16:
      return tqdb::v1::DTYPE_BF16;
    case storage::DType::kF32:
      break;
  }
  return tqdb::v1::DTYPE_F32;
}

}  // namespace

absl::StatusOr<TensorView> ViewTensor(const tqdb::v1::Tensor& tensor, absl::string_view what) {
  TensorView view;
  if (!tensor.data().empty() && tensor.values_size() > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": set either values or data, not both"));
  }
  if (!tensor.data().empty()) {
    view.packed = true;
    std::optional<storage::DType> dtype = FromProto(tensor.dtype());
    if (!dtype.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": data needs dtype DTYPE_F32, DTYPE_F16 or DTYPE_BF16"));
    }
    view.dtype = *dtype;
    const size_t element = storage::DTypeBytes(view.dtype);
    if (tensor.data().size() % element != 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", tensor.data().size(),
                                                     " bytes of data is not a whole number of ",
                                                     element, "-byte elements"));
    }
    view.size = tensor.data().size() / element;
    view.bytes = absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(tensor.data().data()),
                                     tensor.data().size());
  } else {
    view.size = static_cast<size_t>(tensor.values_size());
    view.floats = absl::MakeConstSpan(tensor.values().data(), view.size);
  }
  view.shape.assign(tensor.shape().begin(), tensor.shape().end());
  if (!view.shape.empty()) {
    int64_t product = 1;
    for (int64_t d : view.shape) {
      if (d < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": negative dimension in shape [", absl::StrJoin(view.shape, ", "), "]"));
      }
      product *= d;
    }
    if (product != static_cast<int64_t>(view.size)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": shape [",
                                                     absl::StrJoin(view.shape, ", "), "] is ",
                                                     product, " elements, got ", view.size));
    }
  }
  return view;
}

absl::StatusOr<int64_t> CheckShape(const TensorView& view, absl::string_view what,
                                   absl::Span<const Dim> expected) {
  int64_t fixed = 1;
  int free_dim = -1;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i].size < 0) {
      free_dim = static_cast<int>(i);
    } else {
      fixed *= expected[i].size;
    }
  }
  const int64_t n = static_cast<int64_t>(view.size);
  int64_t free_size = 1;
  bool ok;
  if (free_dim >= 0) {
    ok = fixed > 0 && n > 0 && n % fixed == 0;
    if (ok) free_size = n / fixed;
  } else {
    ok = n == fixed;
  }
  if (ok && !view.shape.empty()) {
    // Compare from the last dimension; extra leading dimensions of the
    // expectation must be 1 (omitted).
    std::vector<int64_t> want;
    for (const Dim& d : expected) want.push_back(d.size < 0 ? free_size : d.size);
    const size_t given = view.shape.size();
    if (given > want.size()) {
      ok = false;
    } else {
      const size_t skip = want.size() - given;
      for (size_t i = 0; i < skip; ++i) ok = ok && want[i] == 1;
      for (size_t i = 0; i < given; ++i) ok = ok && view.shape[i] == want[skip + i];
    }
  }
  if (!ok) {
    std::string got = view.shape.empty()
                          ? absl::StrCat(view.size, " elements")
                          : absl::StrCat("shape [", absl::StrJoin(view.shape, ", "), "] (",
                                         view.size, " elements)");
    std::string want = free_dim >= 0
                           ? absl::StrCat("a positive multiple of ", fixed, " elements")
                           : absl::StrCat(fixed, " elements");
    return absl::InvalidArgumentError(absl::StrCat(what, ": expected shape ",
                                                   ShapeString(expected), " (", want,
                                                   "), got ", got));
  }
  return free_size;
}

absl::StatusOr<std::vector<float>> ToFloats(const TensorView& view, absl::string_view what) {
  size_t bad = view.size;
  if (view.packed) {
    bad = storage::FirstNonFinite(view.bytes.data(), view.dtype, view.size);
  } else {
    bad = static_cast<size_t>(std::find_if(view.floats.begin(), view.floats.end(),
                                           [](float v) { return !std::isfinite(v); }) -
                              view.floats.begin());
  }
  if (bad < view.size) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": element ", bad, " is not finite (", ElementAt(view, bad), ")"));
  }
  if (!view.packed) return std::vector<float>(view.floats.begin(), view.floats.end());
  std::vector<float> out(view.size);
  storage::ToFloat(view.bytes.data(), view.dtype, 0, view.size, out.data());
  return out;
}

absl::StatusOr<ResultForm> ResultFormFor(bool queries_packed, tqdb::v1::DType result_dtype) {
  if (result_dtype == tqdb::v1::DTYPE_UNSPECIFIED) return ResultForm{queries_packed};
  std::optional<storage::DType> dtype = FromProto(result_dtype);
  if (!dtype.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "result_dtype must be DTYPE_F32, DTYPE_F16 or DTYPE_BF16 (or unset), got ",
        static_cast<int>(result_dtype)));
  }
  return ResultForm{true, *dtype};
}

float* ResultWriter::Floats(size_t n) {
  n_ = n;
  floats_.reset(new float[n]);
  return floats_.get();
}

grpc::ByteBuffer ResultWriter::Finish(const google::protobuf::MessageLite& rest, int field,
                                      absl::Span<const int64_t> shape) {
  tqdb::v1::Tensor head;
  head.mutable_shape()->Assign(shape.begin(), shape.end());
  int payload_field = tqdb::v1::Tensor::kValuesFieldNumber;
  size_t payload_bytes = n_ * sizeof(float);
  std::unique_ptr<uint8_t[]> halves;
  if (form_.packed) {
    head.set_dtype(ToProto(form_.dtype));
    payload_field = tqdb::v1::Tensor::kDataFieldNumber;
    if (form_.dtype != storage::DType::kF32) {
      payload_bytes = n_ * storage::DTypeBytes(form_.dtype);
      halves.reset(new uint8_t[payload_bytes]);
      storage::FromFloat(floats_.get(), n_, form_.dtype, halves.get());
    }
  }
  // rest, then field `field` (length-delimited) holding the head and the
  // payload field: fields may come in any order, and a message field may be
  // split, so this is a valid encoding of the whole response.
  using google::protobuf::io::CodedOutputStream;
  const std::string tensor_head = head.SerializeAsString();
  const uint32_t payload_tag = LengthDelimitedTag(payload_field);
  const size_t tensor_bytes = tensor_head.size() + CodedOutputStream::VarintSize32(payload_tag) +
                              CodedOutputStream::VarintSize64(payload_bytes) + payload_bytes;
  std::string prefix = rest.SerializeAsString();
  {
    google::protobuf::io::StringOutputStream out(&prefix);
    CodedOutputStream coded(&out);
    coded.WriteTag(LengthDelimitedTag(field));
    coded.WriteVarint64(tensor_bytes);
    coded.WriteString(tensor_head);
    coded.WriteTag(payload_tag);
    coded.WriteVarint64(payload_bytes);
  }
  grpc::Slice slices[2] = {grpc::Slice(prefix), grpc::Slice()};
  if (halves != nullptr) {
    slices[1] = grpc::Slice(halves.release(), payload_bytes,
                            [](void* p) { delete[] static_cast<uint8_t*>(p); });
  } else {
    slices[1] = grpc::Slice(floats_.release(), payload_bytes,
                            [](void* p) { delete[] static_cast<float*>(p); });
  }
  return grpc::ByteBuffer(slices, 2);
}

void FillTensor(absl::Span<const float> values, std::vector<int64_t> shape, ResultForm form,
                tqdb::v1::Tensor* out) {
  out->Clear();
  out->mutable_shape()->Assign(shape.begin(), shape.end());
  if (!form.packed) {
    out->mutable_values()->Assign(values.begin(), values.end());
    return;
  }
  out->set_dtype(ToProto(form.dtype));
  if (values.empty()) return;
  std::string* data = out->mutable_data();
  data->resize(values.size() * storage::DTypeBytes(form.dtype));
  storage::FromFloat(values.data(), values.size(), form.dtype,
                     reinterpret_cast<uint8_t*>(data->data()));
}

void FillTensor(absl::Span<const float> values, std::vector<int64_t> shape, bool packed,
                tqdb::v1::Tensor* out) {
  FillTensor(values, std::move(shape), ResultForm{packed}, out);
}

}  // namespace tqdb::server::internal
