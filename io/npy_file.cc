#include "io/npy_file.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

static_assert(std::endian::native == std::endian::little,
              "this reader assumes a little-endian host");

namespace tqdb::io {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicBytes = 6;
// Far above any real header (numpy writes well under 1 KiB); bounds what a
// corrupt header_len can make us allocate.
constexpr uint32_t kMaxHeaderBytes = 1 << 20;

// IEEE binary16 → binary32, exact for every input (subnormals, ±inf, NaN).
float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: mant · 2^-24
    const float mag = static_cast<float>(mant) * 0x1.0p-24f;
    return std::bit_cast<float>(std::bit_cast<uint32_t>(mag) | sign);
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

// Recursive-descent parser for the subset of Python literals npy headers use:
// a dict of string keys whose values are strings, True/False/None, integers,
// tuples of integers, or (for structured dtypes) lists, which are skipped.
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view text) : text_(text) {}

  absl::StatusOr<NpyHeader> Parse() {
    NpyHeader header;
    bool have_descr = false, have_order = false, have_shape = false;
    SkipSpace();
    if (!Consume('{')) return Error("expected '{'");
    while (true) {
      SkipSpace();
      if (Consume('}')) break;
      const size_t key_pos = pos_;
      std::optional<std::string> key = String();
      if (!key) return Error("expected a quoted key");
      SkipSpace();
      if (!Consume(':')) return Error("expected ':' after a key");
      SkipSpace();
      bool* seen = nullptr;
      if (*key == "descr") {
        seen = &have_descr;
        if (Peek() == '[') {  // a structured dtype: a list of fields
          if (!SkipBracketed()) return Error("unterminated list");
          header.descr.clear();
        } else {
          std::optional<std::string> descr = String();
          if (!descr) return Error("expected a string or list for 'descr'");
          header.descr = *descr;
        }
      } else if (*key == "fortran_order") {
        seen = &have_order;
        if (Word("True")) {
          header.fortran_order = true;
        } else if (Word("False")) {
          header.fortran_order = false;
        } else {
          return Error("expected True or False for 'fortran_order'");
        }
      } else if (*key == "shape") {
        seen = &have_shape;
        std::optional<std::vector<int64_t>> shape = Tuple();
        if (!shape) return Error("expected a tuple of non-negative integers for 'shape'");
        header.shape = *shape;
      } else if (!SkipValue()) {
        return Error(absl::StrCat("cannot parse the value of key '", *key, "'"));
      }
      if (seen != nullptr) {
        if (*seen) {
          pos_ = key_pos;
          return Error(absl::StrCat("duplicate key '", *key, "'"));
        }
        *seen = true;
      }
      SkipSpace();
      if (Consume(',')) continue;
      SkipSpace();
      if (Consume('}')) break;
      return Error("expected ',' or '}'");
    }
    SkipSpace();
    if (pos_ != text_.size()) return Error("unexpected text after the dict");
    if (!have_descr) return absl::DataLossError("npy header has no 'descr' key");
    if (!have_order) return absl::DataLossError("npy header has no 'fortran_order' key");
    if (!have_shape) return absl::DataLossError("npy header has no 'shape' key");
    return header;
  }

 private:
  absl::Status Error(std::string_view what) const {
    return absl::DataLossError(
        absl::StrCat("malformed npy header at character ", pos_, ": ", std::string(what)));
  }
  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool Consume(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }
  // Whitespace, including the '\n' that ends the header and NUL padding
  // some writers use.
  void SkipSpace() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
            text_[pos_] == '\r' || text_[pos_] == '\0')) {
      ++pos_;
    }
  }
  // A bare word (True, False, None) not followed by an identifier character.
  bool Word(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    const size_t end = pos_ + word.size();
    if (end < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[end])) ||
                               text_[end] == '_')) {
      return false;
    }
    pos_ = end;
    return true;
  }
  // A '…' or "…" string; a backslash takes the next character literally.
  std::optional<std::string> String() {
    const char quote = Peek();
    if (quote != '\'' && quote != '"') return std::nullopt;
    const size_t start = pos_++;
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
      out += text_[pos_++];
    }
    if (pos_ >= text_.size()) {
      pos_ = start;
      return std::nullopt;
    }
    ++pos_;  // closing quote
    return out;
  }
  // A non-negative decimal integer, with an optional Python 2 'L' suffix.
  std::optional<int64_t> Integer() {
    if (!std::isdigit(static_cast<unsigned char>(Peek()))) return std::nullopt;
    int64_t value = 0;
    while (std::isdigit(static_cast<unsigned char>(Peek()))) {
      const int digit = text_[pos_++] - '0';
      if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) return std::nullopt;
      value = value * 10 + digit;
    }
    if (Peek() == 'L' || Peek() == 'l') ++pos_;
    return value;
  }
  // ( ), (n,), (n, d), (n, d,) … of integers.
  std::optional<std::vector<int64_t>> Tuple() {
    if (!Consume('(')) return std::nullopt;
    std::vector<int64_t> values;
    while (true) {
      SkipSpace();
      if (Consume(')')) return values;
      std::optional<int64_t> v = Integer();
      if (!v) return std::nullopt;
      values.push_back(*v);
      SkipSpace();
      if (Consume(',')) continue;
      if (Consume(')')) return values;
      return std::nullopt;
    }
  }
  // Skips from an opening bracket to its matching close, over strings.
  bool SkipBracketed() {
    int depth = 0;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '\'' || c == '"') {
        if (!String()) return false;
        continue;
      }
      ++pos_;
      if (c == '[' || c == '(' || c == '{') ++depth;
      if (c == ']' || c == ')' || c == '}') {
        if (--depth == 0) return true;
      }
    }
    return false;
  }
  // Any value of an unknown key.
  bool SkipValue() {
    const char c = Peek();
    if (c == '\'' || c == '"') return String().has_value();
    if (c == '[' || c == '(' || c == '{') return SkipBracketed();
    if (Word("True") || Word("False") || Word("None")) return true;
    if (c == '-') ++pos_;
    return Integer().has_value();
  }

  std::string_view text_;
  size_t pos_ = 0;
};

enum class Dtype { kF32, kF16, kU8 };

absl::StatusOr<Dtype> ParseDtype(const std::string& path, const std::string& descr) {
  if (descr.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": structured dtypes are not supported (expected '<f4', '<f2' or "
                           "'|u1')"));
  }
  if (descr.size() == 3 && descr.substr(1) == "u1" && std::strchr("|<>=", descr[0])) {
    return Dtype::kU8;  // one byte: the byte order mark means nothing
  }
  if (descr == "<f4") return Dtype::kF32;
  if (descr == "<f2") return Dtype::kF16;
  if (descr == ">f4" || descr == ">f2") {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": big-endian dtype '", descr, "' is not supported (save with astype('<",
        descr.substr(1), "'))"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path, ": unsupported dtype '", descr, "' (expected '<f4', '<f2' or '|u1')"));
}

size_t DtypeBytes(Dtype t) {
  switch (t) {
    case Dtype::kF32:
      return 4;
    case Dtype::kF16:
      return 2;
    case Dtype::kU8:
      return 1;
  }
  return 0;
}

}  // namespace

absl::StatusOr<NpyHeader> ParseNpyHeader(std::string_view text) {
  return HeaderParser(text).Parse();
}

absl::StatusOr<VectorSet<float>> ReadNpy(const std::string& path, size_t max_rows) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));

  // Preamble: magic, version, header length.
  unsigned char preamble[kMagicBytes + 2];
  in.read(reinterpret_cast<char*>(preamble), sizeof(preamble));
  if (static_cast<size_t>(in.gcount()) != sizeof(preamble)) {
    return absl::DataLossError(absl::StrCat(path, ": truncated npy preamble (", in.gcount(),
                                            " of ", sizeof(preamble), " bytes)"));
  }
  if (std::memcmp(preamble, kMagic, kMagicBytes) != 0) {
    return absl::DataLossError(absl::StrCat(path, ": not an npy file (bad magic)"));
  }
  const int major = preamble[kMagicBytes], minor = preamble[kMagicBytes + 1];
  if (major < 1 || major > 3 || minor != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": unsupported npy format version ",
                                                   major, ".", minor,
                                                   " (expected 1.0, 2.0 or 3.0)"));
  }
  const size_t len_bytes = major == 1 ? 2 : 4;
  unsigned char len_buf[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(len_buf), static_cast<std::streamsize>(len_bytes));
  if (static_cast<size_t>(in.gcount()) != len_bytes) {
    return absl::DataLossError(absl::StrCat(path, ": truncated npy header length"));
  }
  const uint32_t header_len = uint32_t{len_buf[0]} | uint32_t{len_buf[1]} << 8 |
                              uint32_t{len_buf[2]} << 16 | uint32_t{len_buf[3]} << 24;
  if (header_len > kMaxHeaderBytes) {
    return absl::DataLossError(
        absl::StrCat(path, ": npy header length ", header_len, " exceeds ", kMaxHeaderBytes));
  }
  std::string text(header_len, '\0');
  in.read(text.data(), header_len);
  if (static_cast<size_t>(in.gcount()) != header_len) {
    return absl::DataLossError(absl::StrCat(path, ": truncated npy header (", in.gcount(), " of ",
                                            header_len, " bytes)"));
  }
  const uint64_t data_offset = sizeof(preamble) + len_bytes + header_len;

  // Header: what the array is.
  absl::StatusOr<NpyHeader> header = ParseNpyHeader(text);
  if (!header.ok()) {
    return absl::DataLossError(absl::StrCat(path, ": ", header.status().message()));
  }
  absl::StatusOr<Dtype> dtype = ParseDtype(path, header->descr);
  if (!dtype.ok()) return dtype.status();
  if (header->fortran_order) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": fortran_order is True; only C-order arrays are supported "
              "(save np.ascontiguousarray(x))"));
  }
  if (header->shape.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": shape (", absl::StrJoin(header->shape, ", "), ") is not 2-D (n, d)"));
  }
  const int64_t n = header->shape[0], d = header->shape[1];
  if (d < 1 || d > std::numeric_limits<int>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": shape (", n, ", ", d, ") needs 1 <= d <= ",
                     std::numeric_limits<int>::max()));
  }
  const size_t value_bytes = DtypeBytes(*dtype);
  const uint64_t row_bytes = static_cast<uint64_t>(d) * value_bytes;
  if (n > 0 && static_cast<uint64_t>(n) > (uint64_t{1} << 62) / row_bytes) {
    return absl::DataLossError(
        absl::StrCat(path, ": shape (", n, ", ", d, ") is implausibly large"));
  }

  // Data: read the rows wanted in one go.
  const size_t rows = std::min<uint64_t>(static_cast<uint64_t>(n), max_rows);
  VectorSet<float> set;
  set.n = rows;
  set.dim = static_cast<int>(d);
  set.data.resize(rows * static_cast<size_t>(d));
  const size_t want = rows * row_bytes;
  std::vector<char> raw;
  char* dst = reinterpret_cast<char*>(set.data.data());
  if (*dtype != Dtype::kF32) {
    raw.resize(want);
    dst = raw.data();
  }
  in.read(dst, static_cast<std::streamsize>(want));
  const size_t got = static_cast<size_t>(in.gcount());
  if (got != want) {
    const size_t row = got / row_bytes;
    return absl::DataLossError(absl::StrCat(
        path, ": truncated npy data: row ", row, " at byte offset ", data_offset + row * row_bytes,
        " has ", got - row * row_bytes, " of ", row_bytes, " bytes (shape (", n, ", ", d, "))"));
  }
  if (rows == static_cast<size_t>(n) && in.peek() != std::char_traits<char>::eof()) {
    return absl::DataLossError(absl::StrCat(path,
                                            ": unexpected bytes after the last row at byte offset ",
                                            data_offset + want, " (shape (", n, ", ", d, "))"));
  }
  if (*dtype == Dtype::kF16) {
    for (size_t i = 0; i < set.data.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, &raw[2 * i], 2);
      set.data[i] = HalfToFloat(h);
    }
  } else if (*dtype == Dtype::kU8) {
    for (size_t i = 0; i < set.data.size(); ++i) {
      set.data[i] = static_cast<float>(static_cast<unsigned char>(raw[i]));
    }
  }
  return set;
}

}  // namespace tqdb::io
