// The two ends of Score's copy-free response path, each against protobuf as
// the oracle: the server's ResultWriter must serialize what protobuf would
// parse as the FillTensor response, and the client's ReadTensorFloats must
// read, from any valid encoding split anywhere, what protobuf parses.
#include <cstdint>
#include <algorithm>
#include <bit>
#include <cstring>
#include <string>
#include <vector>

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <gtest/gtest.h>

#include "client/internal/tensor_reader.h"
#include "common/fp16.h"
#include "common/testing.h"
#include "server/internal/tensor.h"
#include "tqdb/v1/tqdb.pb.h"

namespace tqdb {
namespace {

namespace pb = ::tqdb::v1;
using client::internal::ReadTensorFloats;
using server::internal::ResultForm;

constexpr int kLogits = pb::ScoreResponse::kLogitsFieldNumber;

// Wire encoding by hand, for encodings protobuf's serializer never makes.
void PutVarint(std::string* s, uint64_t v) {
  for (; v >= 0x80; v >>= 7) s->push_back(static_cast<char>(v | 0x80));
  s->push_back(static_cast<char>(v));
}
void PutTag(std::string* s, int field, int wire_type) {
  PutVarint(s, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type));
}
void PutVarintField(std::string* s, int field, uint64_t v) {
  PutTag(s, field, 0);
  PutVarint(s, v);
}
void PutBytesField(std::string* s, int field, const std::string& bytes) {
  PutTag(s, field, 2);
  PutVarint(s, bytes.size());
  *s += bytes;
}
void PutFixed32Field(std::string* s, int field, uint32_t v) {
  PutTag(s, field, 5);
  s->append(reinterpret_cast<const char*>(&v), 4);
}
void PutFixed64Field(std::string* s, int field, uint64_t v) {
  PutTag(s, field, 1);
  s->append(reinterpret_cast<const char*>(&v), 8);
}

std::string FloatBytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}
std::string HalfBytes(const std::vector<float>& v) {
  std::string out;
  for (float f : v) {
    const uint16_t h = FloatToHalf(f);
    out.append(reinterpret_cast<const char*>(&h), 2);
  }
  return out;
}

std::vector<float> RandomFloats(size_t n, uint32_t seed) {
  return testing::UniformFloats(n, seed, -4.0f, 4.0f);
}

// What a client must get from a parsed tensor: `values`, or `data` as
// floats, element by element with the scalar conversions.
std::vector<float> Elements(const pb::Tensor& t) {
  if (t.data().empty()) return {t.values().begin(), t.values().end()};
  const size_t width = t.dtype() == pb::DTYPE_F32 ? 4 : 2;
  std::vector<float> out(t.data().size() / width);
  for (size_t i = 0; i < out.size(); ++i) {
    const char* e = t.data().data() + width * i;
    uint16_t h;
    std::memcpy(&h, e, 2);
    if (t.dtype() == pb::DTYPE_F32) {
      std::memcpy(&out[i], e, 4);
    } else {
      out[i] = t.dtype() == pb::DTYPE_F16 ? HalfToFloat(h) : Bf16ToFloat(h);
    }
  }
  return out;
}

// Every encoding below, read in blocks of these sizes: 1 splits every
// varint and element, 3 and 7 split them unevenly.
constexpr int kBlockSizes[] = {1, 3, 7, 1 << 20};

absl::StatusOr<std::vector<float>> ReadInBlocks(const std::string& bytes, int block) {
  google::protobuf::io::ArrayInputStream in(bytes.data(), static_cast<int>(bytes.size()), block);
  return ReadTensorFloats(&in, kLogits);
}

struct Case {
  std::string name;
  std::string bytes;
};

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

TEST(ResultWriterTest, SerializesWhatProtobufParsesAsTheFilledTensor) {
  const ResultForm forms[] = {{false, storage::DType::kF32},
                              {true, storage::DType::kF32},
                              {true, storage::DType::kF16},
                              {true, storage::DType::kBF16}};
  for (const ResultForm& form : forms) {
    for (size_t n : {size_t{0}, size_t{6}, size_t{4099}}) {  // 4099: a tail past 8-wide F16C
      SCOPED_TRACE(::testing::Message() << "packed=" << form.packed
                                      << " dtype=" << static_cast<int>(form.dtype) << " n=" << n);
      const std::vector<float> values = RandomFloats(n, static_cast<uint32_t>(n));
      const std::vector<int64_t> shape = {1, static_cast<int64_t>(n)};
      server::internal::ResultWriter writer(form);
      std::copy(values.begin(), values.end(), writer.Floats(n));
      pb::ScoreResponse rest;
      rest.set_begin(300);
      rest.set_end(300 + n);
      grpc::ByteBuffer buffer = writer.Finish(rest, kLogits, shape);

      pb::ScoreResponse parsed;
      ASSERT_TRUE(parsed.ParseFromString(Flatten(buffer)));
      pb::ScoreResponse expected = rest;
      server::internal::FillTensor(values, shape, form, expected.mutable_logits());
      EXPECT_EQ(parsed.SerializeAsString(), expected.SerializeAsString());

      // The client's reader, on the slices as they are.
      grpc::ProtoBufferReader reader(&buffer);
      auto read = ReadTensorFloats(&reader, kLogits);
      ASSERT_OK(read.status());
      EXPECT_EQ(*read, Elements(expected.logits()));
    }
  }
}

TEST(TensorReaderTest, ReadsWhatProtobufParsesFromAnyEncoding) {
  const std::vector<float> a = RandomFloats(5, 1);
  const std::vector<float> b = RandomFloats(3, 2);
  std::vector<Case> cases;

  // What protobuf's serializer makes, in each form.
  for (const ResultForm form : {ResultForm{false, storage::DType::kF32},
                                ResultForm{true, storage::DType::kF32},
                                ResultForm{true, storage::DType::kF16},
                                ResultForm{true, storage::DType::kBF16}}) {
    pb::ScoreResponse r;
    r.set_begin(7);
    r.set_end(12);
    server::internal::FillTensor(a, {1, 5}, form, r.mutable_logits());
    cases.push_back({"serialized dtype " + std::to_string(static_cast<int>(form.dtype)) +
                           (form.packed ? " data" : " values"),
                       r.SerializeAsString()});
  }
  {  // Unpacked values, and unknown fields of every wire type around them.
    std::string tensor;
    PutVarintField(&tensor, 40, 5);
    for (float f : a) PutFixed32Field(&tensor, pb::Tensor::kValuesFieldNumber, std::bit_cast<uint32_t>(f));
    PutFixed64Field(&tensor, 41, 1);
    std::string msg;
    PutFixed32Field(&msg, 97, 3);
    PutBytesField(&msg, 96, "skip me");
    PutBytesField(&msg, kLogits, tensor);
    PutFixed64Field(&msg, 98, 4);
    PutVarintField(&msg, pb::ScoreResponse::kEndFieldNumber, 99);
    cases.push_back({"unpacked values, unknown fields", msg});
  }
  {  // Values over several occurrences and forms: they concatenate.
    std::string t1, t2;
    PutBytesField(&t1, pb::Tensor::kValuesFieldNumber, FloatBytes({a[0], a[1]}));
    PutFixed32Field(&t1, pb::Tensor::kValuesFieldNumber, std::bit_cast<uint32_t>(a[2]));
    PutBytesField(&t2, pb::Tensor::kValuesFieldNumber, FloatBytes({a[3], a[4]}));
    std::string msg;
    PutBytesField(&msg, kLogits, t1);
    PutVarintField(&msg, pb::ScoreResponse::kBeginFieldNumber, 1);
    PutBytesField(&msg, kLogits, t2);
    cases.push_back({"values split over two tensor occurrences", msg});
  }
  {  // The last data wins; the dtype may come after it, in another occurrence.
    std::string t1, t2;
    PutVarintField(&t1, pb::Tensor::kDtypeFieldNumber, pb::DTYPE_F32);
    PutBytesField(&t1, pb::Tensor::kDataFieldNumber, FloatBytes(a));
    PutBytesField(&t2, pb::Tensor::kDataFieldNumber, HalfBytes(b));
    PutVarintField(&t2, pb::Tensor::kDtypeFieldNumber, pb::DTYPE_F16);
    std::string msg;
    PutBytesField(&msg, kLogits, t1);
    PutBytesField(&msg, kLogits, t2);
    cases.push_back({"data replaced, dtype last", msg});
  }
  {  // Data and values: data, when not empty, is the tensor.
    std::string t;
    PutBytesField(&t, pb::Tensor::kValuesFieldNumber, FloatBytes(b));
    PutBytesField(&t, pb::Tensor::kDataFieldNumber, FloatBytes(a));
    PutVarintField(&t, pb::Tensor::kDtypeFieldNumber, pb::DTYPE_F32);
    std::string msg;
    PutBytesField(&msg, kLogits, t);
    cases.push_back({"data and values", msg});
  }
  cases.push_back({"no tensor", std::string()});

  for (const auto& [name, bytes] : cases) {
    pb::ScoreResponse parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes)) << name;
    const std::vector<float> expected = Elements(parsed.logits());
    for (int block : kBlockSizes) {
      SCOPED_TRACE(::testing::Message() << name << ", blocks of " << block);
      auto read = ReadInBlocks(bytes, block);
      ASSERT_OK(read.status());
      EXPECT_EQ(*read, expected);
    }
  }
}

TEST(TensorReaderTest, RejectsMalformedBytes) {
  const std::vector<float> a = RandomFloats(5, 3);
  std::vector<Case> cases;
  auto with_tensor = [](const std::string& tensor) {
    std::string msg;
    PutBytesField(&msg, kLogits, tensor);
    return msg;
  };
  {
    std::string t;
    PutBytesField(&t, pb::Tensor::kDataFieldNumber, FloatBytes(a).substr(0, 6));
    PutVarintField(&t, pb::Tensor::kDtypeFieldNumber, pb::DTYPE_F32);
    cases.push_back({"f32 data of 6 bytes", with_tensor(t)});
  }
  {
    std::string t;
    PutBytesField(&t, pb::Tensor::kDataFieldNumber, FloatBytes(a));
    cases.push_back({"data without a dtype", with_tensor(t)});
  }
  {
    std::string t;
    PutBytesField(&t, pb::Tensor::kValuesFieldNumber, FloatBytes(a).substr(0, 6));
    cases.push_back({"packed values of 6 bytes", with_tensor(t)});
  }
  {
    std::string t;
    PutBytesField(&t, pb::Tensor::kDataFieldNumber, FloatBytes(a));
    PutVarintField(&t, pb::Tensor::kDtypeFieldNumber, pb::DTYPE_F32);
    std::string whole = with_tensor(t);
    cases.push_back({"cut inside the data", whole.substr(0, whole.size() - 1)});
    // The tensor's length says one byte more than the message holds.
    std::string longer;
    PutTag(&longer, kLogits, 2);
    PutVarint(&longer, t.size() + 1);
    longer += t;
    cases.push_back({"tensor longer than the message", longer});
  }
  {
    // A data field that claims a gigabyte: refused before any allocation.
    std::string t;
    PutTag(&t, pb::Tensor::kDataFieldNumber, 2);
    PutVarint(&t, uint64_t{1} << 30);
    t += "abcd";
    cases.push_back({"data longer than its tensor", with_tensor(t)});
  }
  {
    std::string msg;
    PutTag(&msg, 9, 3);  // a group start: not in tqdb's messages
    cases.push_back({"group", msg});
  }
  for (const auto& [name, bytes] : cases) {
    for (int block : kBlockSizes) {
      SCOPED_TRACE(::testing::Message() << name << ", blocks of " << block);
      EXPECT_STATUS_CODE(ReadInBlocks(bytes, block), absl::StatusCode::kInternal);
    }
  }
}

}  // namespace
}  // namespace tqdb
