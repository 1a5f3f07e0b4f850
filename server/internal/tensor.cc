#include "server/internal/tensor.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <utility>

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

ResultWriter::ResultWriter(ResultForm form, tqdb::v1::Tensor* out) : form_(form), out_(out) {
  out_->Clear();
}

float* ResultWriter::Floats(size_t n) {
  n_ = n;
  if (!form_.packed) {
    out_->mutable_values()->Resize(static_cast<int>(n), 0.0f);
    return out_->mutable_values()->mutable_data();
  }
  if (form_.dtype == storage::DType::kF32) {
    // Floats in the bytes field's own (heap, suitably aligned) storage.
    std::string* data = out_->mutable_data();
    data->resize(n * sizeof(float));
    return reinterpret_cast<float*>(data->data());
  }
  scratch_.reset(new float[n]);
  return scratch_.get();
}

void ResultWriter::Finish(std::vector<int64_t> shape) {
  if (form_.packed) {
    out_->set_dtype(ToProto(form_.dtype));
    if (form_.dtype != storage::DType::kF32) {
      std::string* data = out_->mutable_data();
      data->resize(n_ * storage::DTypeBytes(form_.dtype));
      storage::FromFloat(scratch_.get(), n_, form_.dtype, reinterpret_cast<uint8_t*>(data->data()));
      scratch_.reset();
    }
  }
  out_->mutable_shape()->Assign(shape.begin(), shape.end());
}

void FillTensor(absl::Span<const float> values, std::vector<int64_t> shape, ResultForm form,
                tqdb::v1::Tensor* out) {
  ResultWriter writer(form, out);
  std::copy(values.begin(), values.end(), writer.Floats(values.size()));
  writer.Finish(std::move(shape));
}

void FillTensor(absl::Span<const float> values, std::vector<int64_t> shape, bool packed,
                tqdb::v1::Tensor* out) {
  FillTensor(values, std::move(shape), ResultForm{packed}, out);
}

}  // namespace tqdb::server::internal
