#include "io/npy_file.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "common/testing.h"
#include "gtest/gtest.h"

namespace tqdb::io {
namespace {

// Bytes of an .npy file as numpy.save writes them: magic, version, header
// length, the dict padded with spaces and '\n' so the data starts at a
// multiple of 64, then `payload`.
std::string NpyBytes(int major, const std::string& dict, const std::string& payload) {
  const size_t len_bytes = major == 1 ? 2 : 4;
  const size_t preamble = 8 + len_bytes;
  std::string header = dict;
  while ((preamble + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  const uint32_t len = static_cast<uint32_t>(header.size());
  out.append(reinterpret_cast<const char*>(&len), len_bytes);
  return out + header + payload;
}

std::string Dict(const std::string& descr, const std::string& shape,
                 const std::string& order = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + order + ", 'shape': " + shape + ", }";
}

template <typename T>
std::string Payload(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

class NpyFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = (std::filesystem::path(::testing::TempDir()) / name).string();
    std::ofstream(path, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  // Expects `code` and a message containing `needle`.
  static void ExpectError(const absl::StatusOr<VectorSet<float>>& r, absl::StatusCode code,
                          const std::string& needle) {
    EXPECT_STATUS_CODE(r, code);
    EXPECT_NE(r.status().message().find(needle), std::string::npos)
        << "message lacks '" << needle << "': " << r.status();
  }
};

const std::vector<float> kSix = {1.5f, -2.0f, 0.25f, 4.0f, 1e-3f, -7.0f};

TEST_F(NpyFileTest, ReadsFloat32InEveryVersion) {
  for (int major : {1, 2, 3}) {
    SCOPED_TRACE(major);
    const std::string path = Write("f4_v" + std::to_string(major) + ".npy",
                                   NpyBytes(major, Dict("<f4", "(2, 3)"), Payload(kSix)));
    absl::StatusOr<VectorSet<float>> x = ReadNpy(path);
    ASSERT_OK(x);
    EXPECT_EQ(x->n, 2u);
    EXPECT_EQ(x->dim, 3);
    EXPECT_EQ(x->data, kSix);
    EXPECT_EQ(x->row(1)[2], -7.0f);
    absl::StatusOr<VectorSet<float>> first = ReadNpy(path, 1);
    ASSERT_OK(first);
    EXPECT_EQ(first->n, 1u);
    EXPECT_EQ(first->data, (std::vector<float>{1.5f, -2.0f, 0.25f}));
    absl::StatusOr<VectorSet<float>> by_ext = ReadVectors(path);
    ASSERT_OK(by_ext);
    EXPECT_EQ(by_ext->data, kSix);
  }
}

TEST_F(NpyFileTest, ConvertsFloat16AndUint8Exactly) {
  // 1, −2, 0.5, 65504 (largest half), 2^-24 (smallest subnormal), −0.
  const std::vector<uint16_t> halves = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000};
  absl::StatusOr<VectorSet<float>> h =
      ReadNpy(Write("f2.npy", NpyBytes(1, Dict("<f2", "(3, 2)"), Payload(halves))));
  ASSERT_OK(h);
  EXPECT_EQ(h->n, 3u);
  EXPECT_EQ(h->dim, 2);
  EXPECT_EQ(h->data, (std::vector<float>{1.0f, -2.0f, 0.5f, 65504.0f, 0x1.0p-24f, -0.0f}));
  EXPECT_TRUE(std::signbit(h->data[5]));

  const std::vector<uint8_t> bytes = {0, 1, 127, 128, 254, 255};
  absl::StatusOr<VectorSet<float>> u =
      ReadNpy(Write("u1.npy", NpyBytes(1, Dict("|u1", "(2, 3)"), Payload(bytes))));
  ASSERT_OK(u);
  EXPECT_EQ(u->data, (std::vector<float>{0, 1, 127, 128, 254, 255}));
}

TEST_F(NpyFileTest, EmptyArrayHasItsWidth) {
  absl::StatusOr<VectorSet<float>> x =
      ReadNpy(Write("empty.npy", NpyBytes(1, Dict("<f4", "(0, 7)"), "")));
  ASSERT_OK(x);
  EXPECT_EQ(x->n, 0u);
  EXPECT_EQ(x->dim, 7);
}

TEST_F(NpyFileTest, ParsesHeaderVariants) {
  // numpy's own output.
  absl::StatusOr<NpyHeader> h =
      ParseNpyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 128), }   \n");
  ASSERT_OK(h);
  EXPECT_EQ(h->descr, "<f4");
  EXPECT_FALSE(h->fortran_order);
  EXPECT_EQ(h->shape, (std::vector<int64_t>{1000, 128}));
  // Other key order, double quotes, no trailing comma, Python 2 longs,
  // an unknown key with a nested value, tabs and newlines.
  h = ParseNpyHeader(
      "{\"shape\":(3L,4L),\t\"extra\": {'a': [1, (2, 3)], 'b': None},\n"
      " \"fortran_order\":True, \"descr\":\"|u1\"}");
  ASSERT_OK(h);
  EXPECT_EQ(h->descr, "|u1");
  EXPECT_TRUE(h->fortran_order);
  EXPECT_EQ(h->shape, (std::vector<int64_t>{3, 4}));
  // 1-D and scalar shapes parse (ReadNpy rejects them later).
  h = ParseNpyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }");
  ASSERT_OK(h);
  EXPECT_EQ(h->shape, (std::vector<int64_t>{5}));
  h = ParseNpyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (), }");
  ASSERT_OK(h);
  EXPECT_TRUE(h->shape.empty());
  // A structured dtype: descr is a list, reported as an empty descr.
  h = ParseNpyHeader("{'descr': [('x', '<f4'), ('y', '<i8')], 'fortran_order': False, "
                     "'shape': (2,)}");
  ASSERT_OK(h);
  EXPECT_EQ(h->descr, "");
}

TEST_F(NpyFileTest, MalformedHeadersAreDataLoss) {
  for (const char* bad : {
           "",                                                                // nothing
           "'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)",          // no braces
           "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)",         // unclosed
           "{'descr': '<f4', 'fortran_order': False}",                         // no shape
           "{'fortran_order': False, 'shape': (2, 3)}",                        // no descr
           "{'descr': '<f4', 'shape': (2, 3)}",                                // no order
           "{'descr': '<f4', 'fortran_order': false, 'shape': (2, 3)}",        // not Python
           "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}",       // negative
           "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}",        // a list
           "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}",         // no comma
           "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 3)}",
           "{'descr': <f4, 'fortran_order': False, 'shape': (2, 3)}",          // unquoted
           "{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3)}",         // bad quote
           "{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}",         // no comma
           "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
           "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} junk",
       }) {
    SCOPED_TRACE(bad);
    absl::StatusOr<NpyHeader> h = ParseNpyHeader(bad);
    EXPECT_STATUS_CODE(h, absl::StatusCode::kDataLoss);
    // Through the file reader too: the same code, the path in the message.
    const std::string path = Write("bad_header.npy", NpyBytes(1, bad, Payload(kSix)));
    ExpectError(ReadNpy(path), absl::StatusCode::kDataLoss, path);
  }
  absl::StatusOr<NpyHeader> h =
      ParseNpyHeader("{'descr': '<f4', 'fortran_order': False, 'shape' (2, 3)}");
  EXPECT_NE(h.status().message().find("at character 49: expected ':'"), std::string::npos)
      << h.status();
}

TEST_F(NpyFileTest, UnsupportedArraysAreInvalidArgument) {
  auto read = [&](const std::string& dict, const std::string& payload = Payload(kSix)) {
    return ReadNpy(Write("unsupported.npy", NpyBytes(1, dict, payload)));
  };
  ExpectError(read(Dict("<f4", "(3, 2)", "True")), absl::StatusCode::kInvalidArgument,
              "fortran_order");
  ExpectError(read(Dict(">f4", "(2, 3)")), absl::StatusCode::kInvalidArgument, "big-endian");
  ExpectError(read(Dict(">f2", "(2, 6)")), absl::StatusCode::kInvalidArgument, "big-endian");
  ExpectError(read(Dict("<f8", "(1, 3)")), absl::StatusCode::kInvalidArgument,
              "unsupported dtype '<f8'");
  ExpectError(read(Dict("<i4", "(2, 3)")), absl::StatusCode::kInvalidArgument,
              "unsupported dtype '<i4'");
  ExpectError(read(Dict("|b1", "(2, 12)")), absl::StatusCode::kInvalidArgument,
              "unsupported dtype");
  ExpectError(read("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (6,)}"),
              absl::StatusCode::kInvalidArgument, "structured");
  ExpectError(read(Dict("<f4", "(6,)")), absl::StatusCode::kInvalidArgument, "not 2-D");
  ExpectError(read(Dict("<f4", "(1, 2, 3)")), absl::StatusCode::kInvalidArgument, "not 2-D");
  ExpectError(read(Dict("<f4", "(6, 0)")), absl::StatusCode::kInvalidArgument, "d <=");
  // Version 4.0 does not exist (yet); 1.1 neither.
  std::string v4 = NpyBytes(2, Dict("<f4", "(2, 3)"), Payload(kSix));
  v4[6] = 4;
  ExpectError(ReadNpy(Write("v4.npy", v4)), absl::StatusCode::kInvalidArgument, "version 4.0");
  std::string v11 = NpyBytes(1, Dict("<f4", "(2, 3)"), Payload(kSix));
  v11[7] = 1;
  ExpectError(ReadNpy(Write("v11.npy", v11)), absl::StatusCode::kInvalidArgument, "version 1.1");
}

TEST_F(NpyFileTest, TruncatedOrCorruptFilesAreDataLoss) {
  EXPECT_STATUS_CODE(ReadNpy("/nonexistent/base.npy"), absl::StatusCode::kNotFound);
  const std::string good = NpyBytes(1, Dict("<f4", "(2, 3)"), Payload(kSix));
  ASSERT_EQ(good.size(), 128u + 24u);  // preamble and header padded to 128 bytes
  // Data cut inside row 1: names the row and where it starts (128 + 12).
  ExpectError(ReadNpy(Write("cut_data.npy", good.substr(0, good.size() - 5))),
              absl::StatusCode::kDataLoss, "row 1 at byte offset 140 has 7 of 12 bytes");
  // ... which max_rows = 1 does not need.
  EXPECT_OK(ReadNpy(Write("cut_data.npy", good.substr(0, good.size() - 5)), 1));
  // Data missing altogether: row 0.
  ExpectError(ReadNpy(Write("no_data.npy", good.substr(0, 128))), absl::StatusCode::kDataLoss,
              "row 0 at byte offset 128");
  // Extra bytes after the last row: the shape does not describe the file.
  ExpectError(ReadNpy(Write("long.npy", good + "xyz")), absl::StatusCode::kDataLoss,
              "after the last row");
  // Cut inside the header, inside the length, inside the magic.
  ExpectError(ReadNpy(Write("cut_header.npy", good.substr(0, 40))), absl::StatusCode::kDataLoss,
              "truncated npy header (30 of 118 bytes)");
  ExpectError(ReadNpy(Write("cut_len.npy", good.substr(0, 9))), absl::StatusCode::kDataLoss,
              "header length");
  ExpectError(ReadNpy(Write("cut_magic.npy", good.substr(0, 4))), absl::StatusCode::kDataLoss,
              "preamble");
  std::string magic = good;
  magic[1] = 'X';
  ExpectError(ReadNpy(Write("magic.npy", magic)), absl::StatusCode::kDataLoss, "bad magic");
  // A header length far beyond any real header.
  std::string huge = NpyBytes(2, Dict("<f4", "(2, 3)"), Payload(kSix));
  huge[11] = 0x7f;
  ExpectError(ReadNpy(Write("huge.npy", huge)), absl::StatusCode::kDataLoss, "exceeds");
  // A shape whose byte count overflows.
  ExpectError(ReadNpy(Write("vast.npy",
                            NpyBytes(1, Dict("<f4", "(9223372036854775807, 3)"), Payload(kSix)))),
              absl::StatusCode::kDataLoss, "implausibly large");
}

}  // namespace
}  // namespace tqdb::io
