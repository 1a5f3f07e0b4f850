// Random orthogonal rotations Π of R^d, deterministic in (kind, d, rounds, seed).
//
// kHadamard (default): `rounds` rounds of
//     x[0, n)     ← (1/√n) · H_n · (D_r  ⊙ x[0, n))
//     x[d−n, d)   ← (1/√n) · H_n · (D'_r ⊙ x[d−n, d))     (only if n < d)
//   with n = 2^⌊log2 d⌋, H_n the Walsh–Hadamard matrix (fast transform,
//   O(n log n)) and D, D' random ±1 diagonals. For d a power of two this is the
//   usual randomized Hadamard transform. Otherwise the two overlapping blocks
//   (n > d/2, so they cover every coordinate) make an exactly orthogonal d × d
//   map with no padding: codes stay d coordinates long (padding 96 → 128 or
//   1536 → 2048 would store 33% more), at the cost of two n-point transforms
//   per round instead of one. One round leaves outputs [0, d−n) independent of
//   inputs [n, d); from two rounds on (the default) every output depends on
//   every input (tests/index/rotation_test.cc checks both).
// kHaar: a dense Haar-random orthogonal matrix (modified Gram–Schmidt, twice,
//   on a Gaussian matrix; R's diagonal is positive, which is the sign fix that
//   makes Q Haar-distributed). O(d²) per vector and O(d³) to build.
//
// Thread-safety: a Rotation is immutable; Get is thread-safe.
#ifndef TQDB_INDEX_CODEC_ROTATION_H_
#define TQDB_INDEX_CODEC_ROTATION_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "index/codec/format.h"
#include "index/codec/isa.h"

namespace tqdb::index {

namespace internal {
struct Kernels;
}

class Rotation {
 public:
  // The rotation for these parameters, built once per process and cached.
  // REQUIRES: 2 <= dim <= kMaxDim, 1 <= rounds <= 4 (Format::Validate checks).
  static std::shared_ptr<const Rotation> Get(RotationKind kind, int dim, int rounds,
                                             uint64_t seed);

  int dim() const { return dim_; }
  RotationKind kind() const { return kind_; }

  // y = Π·x; x and y hold dim() floats and may be the same buffer.
  void Forward(const float* x, float* y, Isa isa = Isa::kBest) const;
  // x = Πᵀ·y; y and x hold dim() floats and may be the same buffer.
  void Inverse(const float* y, float* x, Isa isa = Isa::kBest) const;

  // The same with an explicit kernel table (callers inside index/ that hold
  // one already, so the hot path does not resolve the ISA per vector).
  void Forward(const float* x, float* y, const internal::Kernels& kernels) const;
  void Inverse(const float* y, float* x, const internal::Kernels& kernels) const;

  Rotation(RotationKind kind, int dim, int rounds, uint64_t seed);  // use Get()

 private:
  void Apply(const float* in, float* out, const internal::Kernels& k, bool inverse) const;

  RotationKind kind_;
  int dim_;
  int rounds_;
  int log2n_;         // kHadamard: n = 2^log2n_ ≤ dim < 2n
  float scale_;       // kHadamard: 1/√n
  // kHadamard: per round, n signs for the head block then n for the tail.
  std::vector<float> signs_;
  // kHaar: Π column-major, and Πᵀ column-major (= Π row-major).
  std::vector<float> forward_;
  std::vector<float> inverse_;
};

}  // namespace tqdb::index

#endif  // TQDB_INDEX_CODEC_ROTATION_H_
