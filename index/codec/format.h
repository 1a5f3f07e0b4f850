// Format: everything needed to encode and decode a TurboQuant code, forever.
//
// A Format is a small value type. Together with tqdb's deterministic PRNG and
// codebook solver it fully determines the rotation, codebooks and QJL matrix,
// so storing a Format next to codes (the catalog does) is enough to decode
// them on any machine. Serialize() is a versioned, fixed-width little-endian
// byte string pinned by golden-byte tests.
//
// Byte layout of one encoded vector (all fields packed, no padding):
//
//   [ scales ][ hi indices ][ lo indices ][ gamma ][ qjl signs ]
//
//   scales      NumScales() × (4 bytes f32 | 2 bytes f16), little-endian.
//               One scale per vector (scale_block == 0) or one per block of
//               scale_block rotated coordinates (the last block may be short).
//   hi indices  outlier_channels indices of (bits + 1) bits each.
//   lo indices  (dim − outlier_channels) indices of `bits` bits each.
//               Each index array is a little-endian bit stream (index j in bits
//               [j·w, (j+1)·w)), padded with zero bits to a whole byte.
//   gamma       kProd only: ‖residual‖ of the unit vector, f32 | f16.
//   qjl signs   kProd only: qjl_rows sign bits (bit i = 1 ⇔ (S·r)_i ≥ 0),
//               a little-endian bit stream padded to a whole byte.
//
// The rotated coordinates 0 … outlier_channels−1 are the "outlier" channels
// coded at bits + 1. After a random rotation every coordinate has the same
// distribution, so a fixed prefix is as good as any fixed set: fractional rates
// cost no calibration and need no per-channel metadata.
//
// Thread-safety: a value type.
#ifndef TQDB_INDEX_CODEC_FORMAT_H_
#define TQDB_INDEX_CODEC_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tqdb::index {

// Version of the code format and of everything that derives from a Format
// (PRNG streams, rotation construction, codebook solver). Bump only with a
// migration: existing data decodes with the version it was written with.
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr int kMaxDim = 16384;
inline constexpr size_t kSerializedFormatBytes = 40;

enum class QuantMode : uint8_t {
  kMse = 1,   // TurboQuant_mse (paper Algorithm 1).
  kProd = 2,  // TurboQuant_prod (Algorithm 2): MSE at `bits` + 1-bit QJL.
};

enum class RotationKind : uint8_t {
  kHadamard = 1,  // Rounds of random signs + fast Walsh–Hadamard (rotation.h).
  kHaar = 2,      // Dense Haar-random orthogonal matrix (QR of a Gaussian).
};

enum class ScalarType : uint8_t { kF32 = 1, kF16 = 2 };

// How a block's stored scale s is chosen; y is the rotated (unnormalised)
// block, c the unit-codebook centroids its indices select; decode is s·c.
enum class ScaleRule : uint8_t {
  kNorm = 1,          // s = ‖y‖ = ‖x‖: the paper. Whole-vector scale only.
  kUnbiasedIp = 2,    // s = ‖y‖² / ⟨y, c⟩: makes the estimate of ⟨x, x⟩ exact
                      // (RaBitQ-style inner-product correction).
  kLeastSquares = 3,  // s = ⟨y, c⟩ / ‖c‖²: minimises ‖y − s·c‖².
};

struct Format {
  // Coordinates per vector, 1 … kMaxDim. Default: 0 (must be set).
  int dim = 0;
  // Algorithm. Default: kMse.
  QuantMode mode = QuantMode::kMse;
  // Bits per coordinate of the MSE stage, 1 … 8 (kProd adds one QJL bit per
  // row on top). Default: 4.
  int bits = 4;
  // Rotated coordinates [0, outlier_channels) are coded with bits + 1 bits.
  // 0 … dim; requires bits + 1 ≤ 8 when non-zero. Default: 0.
  int outlier_channels = 0;
  // Rotation. Default: kHadamard.
  RotationKind rotation = RotationKind::kHadamard;
  // Rounds of (signs, Hadamard) for kHadamard, 1 … 4. Default: 2 (one round
  // maps a sparse input to ±1/√d patterns; two make it Gaussian-like).
  int hadamard_rounds = 2;
  // Seed of the rotation and QJL matrix. Default: 0.
  uint64_t seed = 0;
  // Storage type of scales and gamma. Default: kF32 (key norms can be 100×
  // value norms; fp16 costs accuracy for 2 bytes).
  ScalarType scale_type = ScalarType::kF32;
  // How scales are chosen. Default: kNorm.
  ScaleRule scale_rule = ScaleRule::kNorm;
  // 0: one scale per vector; otherwise one per block of this many rotated
  // coordinates, 1 … dim (kMse, and not with kNorm). Default: 0.
  int scale_block = 0;
  // kProd: rows m of the Gaussian QJL matrix S (m × dim), 0 = dim. Default: 0.
  int qjl_rows = 0;
  // Format version the code was written with. Default: kFormatVersion.
  uint32_t version = kFormatVersion;

  // OK, or InvalidArgument naming the first bad field.
  absl::Status Validate() const;

  // Exact bytes of one encoded vector (see the layout above).
  // REQUIRES: Validate().ok().
  size_t CodeBytes() const;
  // 8 · CodeBytes() / dim: every stored bit counted, scales included.
  double BitsPerValue() const;

  int NumScales() const;
  int ScaleBytes() const { return scale_type == ScalarType::kF32 ? 4 : 2; }
  int QjlRows() const { return mode == QuantMode::kProd ? (qjl_rows ? qjl_rows : dim) : 0; }

  // Canonical name in the preset grammar (see ParseFormat), e.g. "tq4",
  // "tq3.5", "tq4p-f16", "turbo3". Parsing the name with the same dim and seed
  // gives back an equal Format.
  std::string Name() const;

  // Versioned fixed-width encoding (kSerializedBytes, little-endian), and its
  // inverse; the layout is in format.cc and pinned by a golden-byte test.
  // Deserialize: InvalidArgument on a wrong length or an invalid format,
  // FailedPrecondition on a version newer than this build understands.
  std::string Serialize() const;
  static absl::StatusOr<Format> Deserialize(std::string_view bytes);

  friend bool operator==(const Format&, const Format&) = default;
};

// Parses a format name for vectors of `dim` coordinates:
//   tq<b>        MSE at b bits (1 … 8), one f32 norm per vector
//   tq<b>.5      MSE, half the channels at b + 1 bits (b = 1 … 7)
//   tq<b>p       inner-product mode: (b − 1)-bit MSE + 1-bit QJL (b = 2 … 9)
//   turbo2|3|4   turboquant_plus-compatible rates: 2/3/4-bit MSE with one f16
//                least-squares scale per 32 (turbo2, turbo3) or 64 (turbo4)
//                coordinates: exactly 2.5, 3.5 and 4.25 bits per value
// followed by any of these modifiers, each prefixed by '-':
//   f16   scales in fp16          ipc   ScaleRule::kUnbiasedIp
//   ls    ScaleRule::kLeastSquares  haar  dense Haar rotation
//   f32   scales in fp32          norm  ScaleRule::kNorm
//   r<k>  k Hadamard rounds       b<n>  scale_block n
//   o<n>  n outlier channels      m<n>  n QJL rows
// InvalidArgument for unknown names or invalid combinations.
absl::StatusOr<Format> ParseFormat(std::string_view name, int dim, uint64_t seed = 0);

// The preset names the benchmarks and docs enumerate.
std::vector<std::string> PresetNames();

}  // namespace tqdb::index

#endif  // TQDB_INDEX_CODEC_FORMAT_H_
