#include "index/codec/format.h"

#include <charconv>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "index/codec/codebook.h"

namespace tqdb::index {
namespace {

// Serialized layout (little-endian, kSerializedFormatBytes = 40):
//   0 u32 version   4 u32 dim        8 u64 seed
//  16 u8 mode      17 u8 bits       18 u8 rotation  19 u8 hadamard_rounds
//  20 u8 scale_type 21 u8 scale_rule 22 u16 zero
//  24 u32 outlier_channels  28 u32 scale_block  32 u32 qjl_rows  36 u32 zero
template <typename T>
void PutLE(std::string* out, size_t offset, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    (*out)[offset + i] = static_cast<char>(static_cast<uint64_t>(v) >> (8 * i) & 0xff);
  }
}
template <typename T>
T GetLE(std::string_view in, size_t offset) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    v |= static_cast<uint64_t>(static_cast<uint8_t>(in[offset + i])) << (8 * i);
  }
  return static_cast<T>(v);
}

// Debian's abseil keeps its own string_view type; StrCat needs it.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

size_t BitBytes(size_t n_bits) { return (n_bits + 7) / 8; }

// The base preset a format is named after, before modifiers.
struct Base {
  std::string name;
  Format format;
};

Format TurboBase(int dim, int bits) {
  Format f;
  f.dim = dim;
  f.bits = bits;
  f.scale_type = ScalarType::kF16;
  f.scale_rule = ScaleRule::kLeastSquares;
  f.scale_block = std::min(dim, bits == 4 ? 64 : 32);
  return f;
}

absl::StatusOr<Base> ParseBase(std::string_view s, int dim) {
  Base base;
  base.format.dim = dim;
  auto parse_int = [](std::string_view t, int* v) {
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), *v);
    return ec == std::errc() && p == t.data() + t.size();
  };
  int b = 0;
  if (s.rfind("turbo", 0) == 0 && parse_int(s.substr(5), &b) && b >= 2 && b <= 4) {
    base.format = TurboBase(dim, b);
  } else if (s.rfind("tq", 0) == 0) {
    std::string_view rest = s.substr(2);
    if (!rest.empty() && rest.back() == 'p') {
      if (!parse_int(rest.substr(0, rest.size() - 1), &b) || b < 2) {
        return absl::InvalidArgumentError(absl::StrCat("bad format name '", AV(s), "'"));
      }
      base.format.mode = QuantMode::kProd;
      base.format.bits = b - 1;
    } else if (rest.size() > 2 && rest.substr(rest.size() - 2) == ".5") {
      if (!parse_int(rest.substr(0, rest.size() - 2), &b)) {
        return absl::InvalidArgumentError(absl::StrCat("bad format name '", AV(s), "'"));
      }
      base.format.bits = b;
      base.format.outlier_channels = dim / 2;
    } else if (parse_int(rest, &b)) {
      base.format.bits = b;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("bad format name '", AV(s), "'"));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown format '", AV(s), "': expected tq<b>, tq<b>.5, tq<b>p or turbo2|3|4"));
  }
  base.name = std::string(s);
  return base;
}

absl::Status ApplyModifier(std::string_view m, Format* f) {
  auto number = [&](int* v) {
    auto [p, ec] = std::from_chars(m.data() + 1, m.data() + m.size(), *v);
    return m.size() > 1 && ec == std::errc() && p == m.data() + m.size();
  };
  int v = 0;
  if (m == "f16") f->scale_type = ScalarType::kF16;
  else if (m == "f32") f->scale_type = ScalarType::kF32;
  else if (m == "norm") f->scale_rule = ScaleRule::kNorm;
  else if (m == "ipc") f->scale_rule = ScaleRule::kUnbiasedIp;
  else if (m == "ls") f->scale_rule = ScaleRule::kLeastSquares;
  else if (m == "haar") f->rotation = RotationKind::kHaar;
  else if (m[0] == 'r' && number(&v)) f->hadamard_rounds = v;
  else if (m[0] == 'b' && number(&v)) f->scale_block = v;
  else if (m[0] == 'o' && number(&v)) f->outlier_channels = v;
  else if (m[0] == 'm' && number(&v)) f->qjl_rows = v;
  else return absl::InvalidArgumentError(absl::StrCat("unknown format modifier '-", AV(m), "'"));
  return absl::OkStatus();
}

}  // namespace

absl::Status Format::Validate() const {
  auto bad = [](auto&&... args) { return absl::InvalidArgumentError(absl::StrCat(args...)); };
  if (version < 1 || version > kFormatVersion) {
    return bad("format version ", version, " is not supported (1…", kFormatVersion, ")");
  }
  if (dim < kMinCodebookDim || dim > kMaxDim) {
    return bad("dim must be in [", kMinCodebookDim, ", ", kMaxDim, "], got ", dim);
  }
  if (bits < 1 || bits > 8) return bad("bits must be in [1, 8], got ", bits);
  if (mode != QuantMode::kMse && mode != QuantMode::kProd) return bad("unknown quant mode");
  if (rotation != RotationKind::kHadamard && rotation != RotationKind::kHaar) {
    return bad("unknown rotation kind");
  }
  if (hadamard_rounds < 1 || hadamard_rounds > 4) {
    return bad("hadamard_rounds must be in [1, 4], got ", hadamard_rounds);
  }
  if (scale_type != ScalarType::kF32 && scale_type != ScalarType::kF16) {
    return bad("unknown scale type");
  }
  if (scale_rule != ScaleRule::kNorm && scale_rule != ScaleRule::kUnbiasedIp &&
      scale_rule != ScaleRule::kLeastSquares) {
    return bad("unknown scale rule");
  }
  if (outlier_channels < 0 || outlier_channels > dim) {
    return bad("outlier_channels must be in [0, dim=", dim, "], got ", outlier_channels);
  }
  if (outlier_channels > 0 && bits + 1 > 8) {
    return bad("outlier channels need bits + 1 <= 8, got bits = ", bits);
  }
  if (scale_block < 0 || scale_block > dim) {
    return bad("scale_block must be in [0, dim=", dim, "], got ", scale_block);
  }
  if (scale_block > 0 && scale_rule == ScaleRule::kNorm) {
    return bad("per-block scales need scale rule ipc or ls, not norm");
  }
  if (mode == QuantMode::kProd) {
    if (scale_block != 0 || scale_rule != ScaleRule::kNorm) {
      return bad("inner-product (QJL) formats use one norm per vector");
    }
    if (qjl_rows < 0 || qjl_rows > 4 * kMaxDim) {
      return bad("qjl_rows must be in [0, ", 4 * kMaxDim, "], got ", qjl_rows);
    }
  } else if (qjl_rows != 0) {
    return bad("qjl_rows is only meaningful for inner-product (QJL) formats");
  }
  return absl::OkStatus();
}

int Format::NumScales() const { return scale_block == 0 ? 1 : (dim + scale_block - 1) / scale_block; }

size_t Format::CodeBytes() const {
  size_t bytes = static_cast<size_t>(NumScales()) * ScaleBytes();
  bytes += BitBytes(static_cast<size_t>(outlier_channels) * (bits + 1));
  bytes += BitBytes(static_cast<size_t>(dim - outlier_channels) * bits);
  if (mode == QuantMode::kProd) bytes += ScaleBytes() + BitBytes(QjlRows());
  return bytes;
}

double Format::BitsPerValue() const { return 8.0 * static_cast<double>(CodeBytes()) / dim; }

std::string Format::Name() const {
  Format base;
  std::string name;
  if (mode == QuantMode::kProd) {
    name = absl::StrCat("tq", bits + 1, "p");
    base.mode = QuantMode::kProd;
    base.bits = bits;
  } else if (bits >= 2 && bits <= 4 && outlier_channels == 0 &&
             scale_block == TurboBase(dim, bits).scale_block) {
    name = absl::StrCat("turbo", bits);
    base = TurboBase(dim, bits);
  } else {
    base.bits = bits;
    if (outlier_channels == dim / 2 && outlier_channels > 0 && bits < 8) {
      name = absl::StrCat("tq", bits, ".5");
      base.outlier_channels = dim / 2;
    } else {
      name = absl::StrCat("tq", bits);
    }
  }
  if (scale_type != base.scale_type) {
    absl::StrAppend(&name, scale_type == ScalarType::kF16 ? "-f16" : "-f32");
  }
  if (scale_rule != base.scale_rule) {
    absl::StrAppend(&name, scale_rule == ScaleRule::kNorm         ? "-norm"
                           : scale_rule == ScaleRule::kUnbiasedIp ? "-ipc"
                                                                  : "-ls");
  }
  if (rotation == RotationKind::kHaar) absl::StrAppend(&name, "-haar");
  if (hadamard_rounds != base.hadamard_rounds) absl::StrAppend(&name, "-r", hadamard_rounds);
  if (scale_block != base.scale_block) absl::StrAppend(&name, "-b", scale_block);
  if (outlier_channels != base.outlier_channels) absl::StrAppend(&name, "-o", outlier_channels);
  if (qjl_rows != base.qjl_rows) absl::StrAppend(&name, "-m", qjl_rows);
  return name;
}

std::string Format::Serialize() const {
  std::string out(kSerializedFormatBytes, '\0');
  PutLE<uint32_t>(&out, 0, version);
  PutLE<uint32_t>(&out, 4, static_cast<uint32_t>(dim));
  PutLE<uint64_t>(&out, 8, seed);
  PutLE<uint8_t>(&out, 16, static_cast<uint8_t>(mode));
  PutLE<uint8_t>(&out, 17, static_cast<uint8_t>(bits));
  PutLE<uint8_t>(&out, 18, static_cast<uint8_t>(rotation));
  PutLE<uint8_t>(&out, 19, static_cast<uint8_t>(hadamard_rounds));
  PutLE<uint8_t>(&out, 20, static_cast<uint8_t>(scale_type));
  PutLE<uint8_t>(&out, 21, static_cast<uint8_t>(scale_rule));
  PutLE<uint32_t>(&out, 24, static_cast<uint32_t>(outlier_channels));
  PutLE<uint32_t>(&out, 28, static_cast<uint32_t>(scale_block));
  PutLE<uint32_t>(&out, 32, static_cast<uint32_t>(qjl_rows));
  return out;
}

absl::StatusOr<Format> Format::Deserialize(std::string_view in) {
  if (in.size() != kSerializedFormatBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "serialized format must be ", kSerializedFormatBytes, " bytes, got ", in.size()));
  }
  Format f;
  f.version = GetLE<uint32_t>(in, 0);
  if (f.version > kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "format version ", f.version, " is newer than this build (", kFormatVersion, ")"));
  }
  f.dim = static_cast<int>(GetLE<uint32_t>(in, 4));
  f.seed = GetLE<uint64_t>(in, 8);
  f.mode = static_cast<QuantMode>(GetLE<uint8_t>(in, 16));
  f.bits = GetLE<uint8_t>(in, 17);
  f.rotation = static_cast<RotationKind>(GetLE<uint8_t>(in, 18));
  f.hadamard_rounds = GetLE<uint8_t>(in, 19);
  f.scale_type = static_cast<ScalarType>(GetLE<uint8_t>(in, 20));
  f.scale_rule = static_cast<ScaleRule>(GetLE<uint8_t>(in, 21));
  f.outlier_channels = static_cast<int>(GetLE<uint32_t>(in, 24));
  f.scale_block = static_cast<int>(GetLE<uint32_t>(in, 28));
  f.qjl_rows = static_cast<int>(GetLE<uint32_t>(in, 32));
  if (GetLE<uint16_t>(in, 22) != 0 || GetLE<uint32_t>(in, 36) != 0) {
    return absl::InvalidArgumentError("serialized format has non-zero reserved bytes");
  }
  TQDB_RETURN_IF_ERROR(f.Validate());
  return f;
}

absl::StatusOr<Format> ParseFormat(std::string_view name, int dim, uint64_t seed) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t dash = name.find('-', start);
    parts.push_back(name.substr(start, dash - start));
    if (dash == std::string_view::npos) break;
    start = dash + 1;
  }
  TQDB_ASSIGN_OR_RETURN(Base base, ParseBase(parts[0], dim));
  Format f = base.format;
  f.seed = seed;
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].empty()) return absl::InvalidArgumentError("empty format modifier");
    TQDB_RETURN_IF_ERROR(ApplyModifier(parts[i], &f));
  }
  TQDB_RETURN_IF_ERROR(f.Validate());
  return f;
}

std::vector<std::string> PresetNames() {
  return {"tq1",  "tq2",  "tq2.5", "tq3",    "tq3.5",  "tq4",    "tq8",
          "tq3p", "tq4p", "turbo2", "turbo3", "turbo4"};
}

}  // namespace tqdb::index
