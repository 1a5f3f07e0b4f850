// Codec: TurboQuant encode/decode of vector batches for one Format.
//
//   Encode (paper Algorithm 1, and Algorithm 2 for kProd):
//     u = Π·x / ‖x‖                       (rotation.h; ‖x‖ in canonical order)
//     idx_j = nearest Lloyd-Max centroid of u_j (codebook.h; bits + 1 for the
//             first outlier_channels coordinates, bits for the rest)
//     scales per ScaleRule (format.h)
//     kProd: r = u − c(idx), γ = ‖r‖, signs = sign(S·r) with S an m × d
//            N(0, 1) matrix drawn from the format's seed.
//   Decode: x̂ = Πᵀ·(s · c(idx) [+ ‖x‖·γ·√(π/2)/m · Sᵀ·signs]).
//
// Codes are bit-identical for every ISA (isa.h). Encode and Decode allocate
// nothing once the calling thread has coded a vector of this dimension.
//
// Thread-safety: a Codec is immutable and safe to share between threads.
#ifndef TQDB_INDEX_CODEC_CODEC_H_
#define TQDB_INDEX_CODEC_CODEC_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "index/codec/format.h"
#include "index/codec/isa.h"
#include "index/codec/rotation.h"

namespace tqdb::index {

namespace internal {
struct Kernels;
}

class Codec {
 public:
  // A codec for `format` using the kernels of `isa` (kBest: the best this CPU
  // has). InvalidArgument if the format is invalid or the ISA unsupported.
  // Codebooks and rotations are cached process-wide, so creating a codec for
  // a format seen before is cheap.
  static absl::StatusOr<std::shared_ptr<const Codec>> Create(const Format& format,
                                                             Isa isa = Isa::kBest);

  const Format& format() const { return format_; }
  int dim() const { return format_.dim; }
  size_t code_bytes() const { return code_bytes_; }
  Isa isa() const { return isa_; }

  // Encodes n vectors (n·dim floats, row-major) into n·code_bytes() bytes.
  // InvalidArgument, writing nothing, if any value is NaN or infinite.
  absl::Status Encode(const float* x, size_t n, uint8_t* codes) const;
  // The same without the finiteness check. REQUIRES: all values finite.
  void EncodeUnchecked(const float* x, size_t n, uint8_t* codes) const;

  // Decodes n codes into n·dim floats. Any byte string decodes (indices are
  // always in range); garbage scales give garbage values, never a crash.
  void Decode(const uint8_t* codes, size_t n, float* x) const;

  // A query prepared for inner-product estimates against codes: Π·y, and S·Π·y
  // for kProd. Reusable across codes; one per thread.
  struct Query {
    std::vector<float> rotated;    // dim floats
    std::vector<float> projected;  // QjlRows() floats (kProd only)
  };
  // REQUIRES: y holds dim() finite floats.
  void PrepareQuery(const float* y, Query* query) const;
  // The codec's estimate of ⟨y, x⟩ for the vector x behind `code`: ⟨Π·y, ĉ⟩
  // with ĉ the scaled centroids, plus the QJL term for kProd (unbiased).
  // A per-vector reference for the scan kernels, not the fast path.
  float EstimateInnerProduct(const Query& query, const uint8_t* code) const;

  // x = Πᵀ·rotated: maps a vector from the codec's rotated domain back (both
  // dim() floats; may alias). Attend accumulates there and rotates once.
  void InverseRotate(const float* rotated, float* x) const;

  // Stored scales of one code, as floats (NumScales() of them).
  void ReadScales(const uint8_t* code, float* scales) const;
  // Writes NumScales() scales into a code's scale bytes: ReadScales' inverse,
  // exact for scales that ReadScales returned.
  void WriteScales(const float* scales, uint8_t* code) const;
  // The dim() centroid indices of a code (bits + 1 wide on the outlier prefix).
  void UnpackIndices(const uint8_t* code, uint8_t* idx) const;
  // kProd only: the code's QJL sign bits (LSB-first, QjlRows() of them), and
  // the factor ‖x‖·γ·√(π/2)/m that multiplies ⟨S·Π·y, ±1⟩ in the estimate.
  const uint8_t* QjlSigns(const uint8_t* code) const { return code + layout_.signs; }
  float QjlWeight(const uint8_t* code) const;
  // The unit-sphere codebook centroids, padded to 256 floats: the outlier
  // (bits + 1) table or the regular one.
  const float* Centroids(bool outlier) const {
    return outlier ? hi_centroids_.data() : lo_centroids_.data();
  }

  Codec(const Format& format, Isa isa);  // use Create()

 private:
  // Byte offsets of the fields of one code (format.h has the layout).
  struct Layout {
    size_t hi = 0, lo = 0, gamma = 0, signs = 0;
  };
  void EncodeOne(const float* x, uint8_t* code) const;
  void DecodeOne(const uint8_t* code, float* x) const;
  // Rotated-domain reconstruction s·c(idx) (without QJL) into out[0, dim).
  void DecodeCentroids(const uint8_t* code, float* out) const;
  float ReadScalar(const uint8_t* p) const;
  void WriteScalar(float v, uint8_t* p) const;

  Format format_;
  Isa isa_;
  const internal::Kernels* kernels_;
  size_t code_bytes_;
  Layout layout_;
  int n_hi_, n_lo_, qjl_rows_;
  float qjl_coef_;  // √(π/2) / m
  std::shared_ptr<const Rotation> rotation_;
  // Padded tables for the kernels (kernels.h): hi = bits + 1, lo = bits.
  alignas(64) std::array<float, 256> hi_bounds_, lo_bounds_, hi_centroids_, lo_centroids_;
  // kProd: S (m × d) and Sᵀ (d × m), column-major.
  std::vector<float> qjl_, qjl_t_;
};

}  // namespace tqdb::index

#endif  // TQDB_INDEX_CODEC_CODEC_H_
