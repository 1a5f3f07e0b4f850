#include "index/codec/rotation.h"

#include <cassert>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "index/codec/internal/kernels.h"
#include "index/codec/internal/scratch.h"
#include "index/codec/internal/streams.h"
#include "index/codec/prng.h"

namespace tqdb::index {
namespace {

// A Haar-random d × d orthogonal matrix, column-major, in double.
std::vector<double> HaarMatrix(int d, uint64_t seed) {
  Rng rng(DeriveSeed(seed, internal::kStreamHaar, static_cast<uint64_t>(d)));
  const size_t dd = static_cast<size_t>(d);
  std::vector<double> q(dd * dd);
  for (double& v : q) v = rng.Gaussian();  // column j = q[j·d, (j+1)·d)
  for (size_t j = 0; j < dd; ++j) {
    double* qj = &q[j * dd];
    for (int pass = 0; pass < 2; ++pass) {  // Gram–Schmidt twice is enough
      for (size_t i = 0; i < j; ++i) {
        const double* qi = &q[i * dd];
        double r = 0.0;
        for (size_t k = 0; k < dd; ++k) r += qi[k] * qj[k];
        for (size_t k = 0; k < dd; ++k) qj[k] -= r * qi[k];
      }
    }
    double norm2 = 0.0;
    for (size_t k = 0; k < dd; ++k) norm2 += qj[k] * qj[k];
    const double inv = 1.0 / std::sqrt(norm2);  // R_jj > 0: the sign fix
    for (size_t k = 0; k < dd; ++k) qj[k] *= inv;
  }
  return q;
}

}  // namespace

Rotation::Rotation(RotationKind kind, int dim, int rounds, uint64_t seed)
    : kind_(kind), dim_(dim), rounds_(rounds), log2n_(0), scale_(1.0f) {
  assert(dim >= 2 && dim <= kMaxDim && rounds >= 1 && rounds <= 4);
  if (kind == RotationKind::kHadamard) {
    while ((2 << log2n_) <= dim) ++log2n_;
    const int n = 1 << log2n_;
    scale_ = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
    signs_.resize(static_cast<size_t>(rounds) * 2 * n);
    for (int r = 0; r < rounds; ++r) {
      Rng rng(DeriveSeed(seed, internal::kStreamHadamard, static_cast<uint64_t>(dim),
                         static_cast<uint64_t>(r)));
      for (int i = 0; i < 2 * n; ++i) {
        signs_[static_cast<size_t>(r) * 2 * n + i] = (rng.Next() >> 63) ? -1.0f : 1.0f;
      }
    }
  } else {
    const std::vector<double> q = HaarMatrix(dim, seed);
    const size_t d = static_cast<size_t>(dim);
    forward_.resize(d * d);
    inverse_.resize(d * d);
    for (size_t j = 0; j < d; ++j) {
      for (size_t i = 0; i < d; ++i) {
        forward_[j * d + i] = static_cast<float>(q[j * d + i]);  // Π[i][j] = q_j[i]
        inverse_[i * d + j] = static_cast<float>(q[j * d + i]);  // Πᵀ[j][i]
      }
    }
  }
}

std::shared_ptr<const Rotation> Rotation::Get(RotationKind kind, int dim, int rounds,
                                              uint64_t seed) {
  using Key = std::tuple<int, int, int, uint64_t>;
  static std::mutex mu;
  static auto* cache = new std::map<Key, std::shared_ptr<const Rotation>>();
  if (kind == RotationKind::kHaar) rounds = 1;  // rounds only shape Hadamard rotations
  const Key key{static_cast<int>(kind), dim, rounds, seed};
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache->find(key);
  if (it == cache->end()) {
    it = cache->emplace(key, std::make_shared<const Rotation>(kind, dim, rounds, seed)).first;
  }
  return it->second;
}

void Rotation::Forward(const float* x, float* y, Isa isa) const {
  Forward(x, y, *internal::GetKernels(isa));
}

void Rotation::Inverse(const float* y, float* x, Isa isa) const {
  Inverse(y, x, *internal::GetKernels(isa));
}

void Rotation::Forward(const float* x, float* y, const internal::Kernels& k) const {
  Apply(x, y, k, /*inverse=*/false);
}

void Rotation::Inverse(const float* y, float* x, const internal::Kernels& k) const {
  Apply(y, x, k, /*inverse=*/true);
}

void Rotation::Apply(const float* in, float* out, const internal::Kernels& k, bool inverse) const {
  if (kind_ == RotationKind::kHaar) {
    float* tmp = internal::Scratch::Get().Floats(internal::Scratch::kRotation, dim_);
    std::memcpy(tmp, in, sizeof(float) * dim_);
    k.matvec(inverse ? inverse_.data() : forward_.data(), dim_, dim_, tmp, out);
    return;
  }
  if (out != in) std::memcpy(out, in, sizeof(float) * dim_);
  const int n = 1 << log2n_;
  const size_t stride = 2 * static_cast<size_t>(n);
  if (n == dim_) {  // all rounds in one call, kept in registers by the SIMD twins
    k.hadamard(out, log2n_, signs_.data(), stride, rounds_, scale_, inverse);
    return;
  }
  // Round r is head block then tail block; the inverse undoes them in reverse.
  for (int i = 0; i < rounds_; ++i) {
    const int r = inverse ? rounds_ - 1 - i : i;
    const float* signs = &signs_[r * stride];
    float* first = inverse ? out + (dim_ - n) : out;
    float* second = inverse ? out : out + (dim_ - n);
    k.hadamard(first, log2n_, inverse ? signs + n : signs, stride, 1, scale_, inverse);
    k.hadamard(second, log2n_, inverse ? signs : signs + n, stride, 1, scale_, inverse);
  }
}

}  // namespace tqdb::index
