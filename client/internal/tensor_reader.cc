#include "client/internal/tensor_reader.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cstdint>
#include <cstring>
#include <utility>

#include <google/protobuf/io/coded_stream.h>

#include "absl/status/status.h"
#include "common/fp16.h"
#include "tqdb/v1/tqdb.pb.h"

namespace tqdb::client::internal {
namespace {

namespace pb = ::tqdb::v1;
using google::protobuf::io::CodedInputStream;

static_assert(std::endian::native == std::endian::little,
              "Tensor.data and packed floats are little-endian");

// The protobuf wire types of tqdb's messages (groups are not used).
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

constexpr uint32_t Tag(int field, WireType type) {
  return (static_cast<uint32_t>(field) << 3) | type;
}

bool SkipField(CodedInputStream& in, uint32_t tag) {
  switch (tag & 7) {
    case kVarint: {
      uint64_t v;
      return in.ReadVarint64(&v);
    }
    case kFixed64: {
      uint64_t v;
      return in.ReadLittleEndian64(&v);
    }
    case kLengthDelimited: {
      uint32_t n;
      return in.ReadVarint32(&n) && in.Skip(static_cast<int>(n));
    }
    case kFixed32: {
      uint32_t v;
      return in.ReadLittleEndian32(&v);
    }
    default:
      return false;
  }
}

// A Tensor's parts as they arrive; `data` holds the data field's bytes in
// floats' storage so f32 data is the result as it stands.
struct TensorParts {
  std::vector<float> values;
  std::vector<float> data;
  size_t data_bytes = 0;
  int64_t dtype = pb::DTYPE_UNSPECIFIED;
};

// Reads `bytes` bytes into `out`'s storage from float `at` on; false, before
// allocating, if the tensor does not hold that many more.
bool ReadInto(CodedInputStream& in, uint32_t bytes, size_t at, std::vector<float>* out) {
  if (bytes > static_cast<uint32_t>(std::max(0, in.BytesUntilLimit()))) return false;
  out->resize(at + (bytes + sizeof(float) - 1) / sizeof(float));
  return bytes == 0 || in.ReadRaw(out->data() + at, static_cast<int>(bytes));
}

// Reads the Tensor's fields up to the current limit, merging into `t` as
// protobuf merges a repeated occurrence of a message field.
bool ReadTensor(CodedInputStream& in, TensorParts* t) {
  while (const uint32_t tag = in.ReadTag()) {
    bool ok = true;
    switch (tag) {
      case Tag(pb::Tensor::kValuesFieldNumber, kLengthDelimited): {  // packed
        uint32_t n = 0;
        ok = in.ReadVarint32(&n) && n % sizeof(float) == 0 &&
             ReadInto(in, n, t->values.size(), &t->values);
        break;
      }
      case Tag(pb::Tensor::kValuesFieldNumber, kFixed32): {  // one unpacked element
        uint32_t bits = 0;
        ok = in.ReadLittleEndian32(&bits);
        t->values.push_back(std::bit_cast<float>(bits));
        break;
      }
      case Tag(pb::Tensor::kDataFieldNumber, kLengthDelimited): {  // the last one wins
        uint32_t n = 0;
        ok = in.ReadVarint32(&n) && ReadInto(in, n, 0, &t->data);
        t->data_bytes = n;
        break;
      }
      case Tag(pb::Tensor::kDtypeFieldNumber, kVarint): {
        uint64_t v = 0;
        ok = in.ReadVarint64(&v);
        t->dtype = static_cast<int64_t>(v);
        break;
      }
      default:
        ok = SkipField(in, tag);
    }
    if (!ok) return false;
  }
  return in.ConsumedEntireMessage();
}

absl::Status Malformed() { return absl::InternalError("the server sent a malformed response"); }

}  // namespace

absl::StatusOr<std::vector<float>> ReadTensorFloats(google::protobuf::io::ZeroCopyInputStream* in,
                                                    int field) {
  CodedInputStream coded(in);
  TensorParts t;
  while (const uint32_t tag = coded.ReadTag()) {
    if (tag != Tag(field, kLengthDelimited)) {
      if (!SkipField(coded, tag)) return Malformed();
      continue;
    }
    uint32_t n = 0;
    if (!coded.ReadVarint32(&n) || n > static_cast<uint32_t>(INT_MAX)) return Malformed();
    const CodedInputStream::Limit limit = coded.PushLimit(static_cast<int>(n));
    // A stream that ends inside the tensor also ends ReadTensor's loop.
    if (!ReadTensor(coded, &t) || coded.BytesUntilLimit() != 0) return Malformed();
    coded.PopLimit(limit);
  }
  if (!coded.ConsumedEntireMessage()) return Malformed();
  if (t.data_bytes == 0) return std::move(t.values);

  if (t.dtype == pb::DTYPE_F32 && t.data_bytes % sizeof(float) == 0) return std::move(t.data);
  return DataToFloats(t.dtype, reinterpret_cast<const char*>(t.data.data()), t.data_bytes);
}

absl::StatusOr<std::vector<float>> DataToFloats(int64_t dtype, const char* data, size_t bytes) {
  const bool half = dtype == pb::DTYPE_F16 || dtype == pb::DTYPE_BF16;
  const size_t width = half ? 2 : sizeof(float);
  if ((!half && dtype != pb::DTYPE_F32) || bytes % width != 0) {
    return absl::InternalError("the server sent a tensor that is not f32, f16 or bf16");
  }
  std::vector<float> out(bytes / width);
  if (!half) {
    std::memcpy(out.data(), data, bytes);
    return out;
  }
  if (dtype == pb::DTYPE_F16) {
    HalvesToFloats(reinterpret_cast<const uint8_t*>(data), out.size(), out.data());
    return out;
  }
  for (size_t i = 0; i < out.size(); ++i) {
    uint16_t h;
    std::memcpy(&h, data + 2 * i, 2);
    out[i] = Bf16ToFloat(h);
  }
  return out;
}

}  // namespace tqdb::client::internal
