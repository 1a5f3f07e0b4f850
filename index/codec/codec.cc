#include "index/codec/codec.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "index/codec/codebook.h"
#include "common/fp16.h"
#include "index/codec/internal/kernels.h"
#include "index/codec/internal/scratch.h"
#include "index/codec/internal/streams.h"
#include "index/codec/prng.h"

static_assert(std::endian::native == std::endian::little, "codes are stored little-endian");

namespace tqdb::index {
namespace {

using internal::Scratch;

constexpr double kSqrtHalfPi = 1.2533141373155002512;  // √(π/2)

void FillTables(int dim, int bits, std::array<float, 256>* bounds,
                std::array<float, 256>* centroids) {
  bounds->fill(std::numeric_limits<float>::infinity());
  centroids->fill(0.0f);
  if (bits < 1 || bits > 8) return;  // unused table (no outlier channels)
  const Codebook& cb = GetCodebook(dim, bits);
  std::copy(cb.boundaries_f.begin(), cb.boundaries_f.end(), bounds->begin());
  std::copy(cb.centroids_f.begin(), cb.centroids_f.end(), centroids->begin());
}

size_t BitBytes(size_t bits) { return (bits + 7) / 8; }

}  // namespace

absl::StatusOr<std::shared_ptr<const Codec>> Codec::Create(const Format& format, Isa isa) {
  TQDB_RETURN_IF_ERROR(format.Validate());
  if (!IsaSupported(isa)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ISA ", IsaName(isa), " is not supported by this CPU or build"));
  }
  return std::make_shared<const Codec>(format, ResolveIsa(isa));
}

Codec::Codec(const Format& format, Isa isa)
    : format_(format),
      isa_(isa),
      kernels_(internal::GetKernels(isa)),
      code_bytes_(format.CodeBytes()),
      n_hi_(format.outlier_channels),
      n_lo_(format.dim - format.outlier_channels),
      qjl_rows_(format.QjlRows()),
      qjl_coef_(qjl_rows_ > 0 ? static_cast<float>(kSqrtHalfPi / qjl_rows_) : 0.0f),
      rotation_(Rotation::Get(format.rotation, format.dim, format.hadamard_rounds, format.seed)) {
  layout_.hi = static_cast<size_t>(format.NumScales()) * format.ScaleBytes();
  layout_.lo = layout_.hi + BitBytes(static_cast<size_t>(n_hi_) * (format.bits + 1));
  layout_.gamma = layout_.lo + BitBytes(static_cast<size_t>(n_lo_) * format.bits);
  layout_.signs = layout_.gamma + format.ScaleBytes();
  FillTables(format.dim, n_hi_ > 0 ? format.bits + 1 : 0, &hi_bounds_, &hi_centroids_);
  FillTables(format.dim, format.bits, &lo_bounds_, &lo_centroids_);
  if (qjl_rows_ > 0) {
    const size_t m = qjl_rows_, d = format.dim;
    qjl_.resize(m * d);
    qjl_t_.resize(m * d);
    Rng rng(DeriveSeed(format.seed, internal::kStreamQjl, d, m));
    for (size_t i = 0; i < m; ++i) {  // row-major draw order: S[i][j]
      for (size_t j = 0; j < d; ++j) {
        const float s = static_cast<float>(rng.Gaussian());
        qjl_[j * m + i] = s;    // column-major S
        qjl_t_[i * d + j] = s;  // column-major Sᵀ
      }
    }
  }
}

float Codec::ReadScalar(const uint8_t* p) const {
  if (format_.scale_type == ScalarType::kF32) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  return HalfToFloat(h);
}

void Codec::WriteScalar(float v, uint8_t* p) const {
  if (format_.scale_type == ScalarType::kF32) {
    std::memcpy(p, &v, 4);
  } else {
    const uint16_t h = FloatToHalf(v);
    std::memcpy(p, &h, 2);
  }
}

absl::Status Codec::Encode(const float* x, size_t n, uint8_t* codes) const {
  const size_t total = n * static_cast<size_t>(dim());
  for (size_t i = 0; i < total; ++i) {
    if (!std::isfinite(x[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vector ", i / dim(), " coordinate ", i % dim(), " is not finite (", x[i], ")"));
    }
  }
  EncodeUnchecked(x, n, codes);
  return absl::OkStatus();
}

void Codec::EncodeUnchecked(const float* x, size_t n, uint8_t* codes) const {
  for (size_t v = 0; v < n; ++v) {
    EncodeOne(x + v * dim(), codes + v * code_bytes_);
  }
}

void Codec::EncodeOne(const float* x, uint8_t* code) const {
  const internal::Kernels& k = *kernels_;
  const int d = dim();
  Scratch& scratch = Scratch::Get();
  float* y = scratch.Floats(Scratch::kRotated, d);
  uint8_t* idx = scratch.Bytes(d);

  const float norm = std::sqrt(k.dot(x, x, d));
  rotation_->Forward(x, y, *kernels_);
  const float inv = norm > 0.0f ? 1.0f / norm : 0.0f;
  k.quantize(y, n_hi_, inv, hi_bounds_.data(), format_.bits + 1, idx);
  k.quantize(y + n_hi_, n_lo_, inv, lo_bounds_.data(), format_.bits, idx + n_hi_);

  // Scales.
  if (format_.scale_rule == ScaleRule::kNorm) {
    WriteScalar(norm, code);
  } else {
    float* c = scratch.Floats(Scratch::kCentroids, d);
    k.lookup(idx, n_hi_, hi_centroids_.data(), format_.bits + 1, 1.0f, c);
    k.lookup(idx + n_hi_, n_lo_, lo_centroids_.data(), format_.bits, 1.0f, c + n_hi_);
    const int block = format_.scale_block ? format_.scale_block : d;
    for (int b0 = 0, s = 0; b0 < d; b0 += block, ++s) {
      const int len = std::min(block, d - b0);
      const float yc = k.dot(y + b0, c + b0, len);
      float scale = 0.0f;
      if (format_.scale_rule == ScaleRule::kUnbiasedIp) {
        if (yc > 0.0f) scale = k.dot(y + b0, y + b0, len) / yc;
      } else {
        const float cc = k.dot(c + b0, c + b0, len);
        if (cc > 0.0f) scale = yc / cc;
      }
      WriteScalar(scale, code + static_cast<size_t>(s) * format_.ScaleBytes());
    }
  }
  k.pack(idx, n_hi_, format_.bits + 1, code + layout_.hi);
  k.pack(idx + n_hi_, n_lo_, format_.bits, code + layout_.lo);

  if (format_.mode == QuantMode::kProd) {
    float* c = scratch.Floats(Scratch::kCentroids, d);
    float* r = scratch.Floats(Scratch::kResidual, d);
    float* proj = scratch.Floats(Scratch::kProjection, qjl_rows_);
    k.lookup(idx, d, lo_centroids_.data(), format_.bits, 1.0f, c);  // kProd has no outliers
    for (int i = 0; i < d; ++i) r[i] = y[i] * inv - c[i];
    WriteScalar(std::sqrt(k.dot(r, r, d)), code + layout_.gamma);
    k.matvec(qjl_.data(), qjl_rows_, d, r, proj);
    k.sign_pack(proj, qjl_rows_, code + layout_.signs);
  }
}

void Codec::ReadScales(const uint8_t* code, float* scales) const {
  for (int s = 0; s < format_.NumScales(); ++s) {
    scales[s] = ReadScalar(code + static_cast<size_t>(s) * format_.ScaleBytes());
  }
}

void Codec::WriteScales(const float* scales, uint8_t* code) const {
  for (int s = 0; s < format_.NumScales(); ++s) {
    WriteScalar(scales[s], code + static_cast<size_t>(s) * format_.ScaleBytes());
  }
}

void Codec::UnpackIndices(const uint8_t* code, uint8_t* idx) const {
  kernels_->unpack(code + layout_.hi, n_hi_, format_.bits + 1, idx);
  kernels_->unpack(code + layout_.lo, n_lo_, format_.bits, idx + n_hi_);
}

float Codec::QjlWeight(const uint8_t* code) const {
  return ReadScalar(code) * ReadScalar(code + layout_.gamma) * qjl_coef_;
}

void Codec::DecodeCentroids(const uint8_t* code, float* out) const {
  const internal::Kernels& k = *kernels_;
  const int d = dim();
  uint8_t* idx = Scratch::Get().Bytes(d);
  UnpackIndices(code, idx);
  const int block = format_.scale_block ? format_.scale_block : d;
  for (int b0 = 0, s = 0; b0 < d; b0 += block, ++s) {
    const int b1 = std::min(d, b0 + block);
    const float scale = ReadScalar(code + static_cast<size_t>(s) * format_.ScaleBytes());
    // A block may straddle the outlier/regular boundary at n_hi_.
    if (b0 < n_hi_) {
      k.lookup(idx + b0, std::min(b1, n_hi_) - b0, hi_centroids_.data(), format_.bits + 1, scale,
                 out + b0);
    }
    if (b1 > n_hi_) {
      const int a = std::max(b0, n_hi_);
      k.lookup(idx + a, b1 - a, lo_centroids_.data(), format_.bits, scale, out + a);
    }
  }
}

void Codec::Decode(const uint8_t* codes, size_t n, float* x) const {
  for (size_t v = 0; v < n; ++v) DecodeOne(codes + v * code_bytes_, x + v * dim());
}

void Codec::DecodeOne(const uint8_t* code, float* x) const {
  const int d = dim();
  Scratch& scratch = Scratch::Get();
  float* c = scratch.Floats(Scratch::kCentroids, d);
  DecodeCentroids(code, c);
  if (format_.mode == QuantMode::kProd) {
    float* z = scratch.Floats(Scratch::kProjection, qjl_rows_);
    float* t = scratch.Floats(Scratch::kResidual, d);
    const uint8_t* signs = code + layout_.signs;
    for (int i = 0; i < qjl_rows_; ++i) z[i] = (signs[i / 8] >> (i % 8)) & 1 ? 1.0f : -1.0f;
    kernels_->matvec(qjl_t_.data(), d, qjl_rows_, z, t);
    const float coef = QjlWeight(code);
    for (int i = 0; i < d; ++i) c[i] += coef * t[i];
  }
  rotation_->Inverse(c, x, *kernels_);
}

void Codec::InverseRotate(const float* rotated, float* x) const {
  rotation_->Inverse(rotated, x, *kernels_);
}

void Codec::PrepareQuery(const float* y, Query* query) const {
  query->rotated.resize(dim());
  rotation_->Forward(y, query->rotated.data(), *kernels_);
  query->projected.resize(qjl_rows_);
  if (qjl_rows_ > 0) {
    kernels_->matvec(qjl_.data(), qjl_rows_, dim(), query->rotated.data(),
                     query->projected.data());
  }
}

float Codec::EstimateInnerProduct(const Query& query, const uint8_t* code) const {
  const int d = dim();
  float* c = Scratch::Get().Floats(Scratch::kCentroids, d);
  DecodeCentroids(code, c);
  float ip = kernels_->dot(query.rotated.data(), c, d);
  if (format_.mode == QuantMode::kProd) {
    const uint8_t* signs = code + layout_.signs;
    float acc = 0.0f;
    for (int i = 0; i < qjl_rows_; ++i) {
      acc += (signs[i / 8] >> (i % 8)) & 1 ? query.projected[i] : -query.projected[i];
    }
    ip += QjlWeight(code) * acc;
  }
  return ip;
}

}  // namespace tqdb::index
