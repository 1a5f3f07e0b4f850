// Lloyd-Max codebooks for one coordinate of a uniformly random unit vector.
//
// A coordinate x of a vector drawn uniformly from the unit sphere S^{d-1} has
// density f_d(x) ∝ (1 − x²)^((d−3)/2) on [−1, 1] (TurboQuant, arXiv 2504.19874,
// Lemma 1). For each (d, b) this module computes the 2^b-level Lloyd-Max
// quantizer of f_d: centroids c_0 < … < c_{2^b−1} and decision boundaries
// t_k = (c_k + c_{k+1}) / 2 that minimise E[(x − Q(x))²].
//
// Determinism: stored codes index these centroids, so they must be identical
// on every machine, compiler and standard library forever. The solver uses
// only IEEE-754 +, −, ×, ÷ and sqrt (correctly rounded everywhere), fixed
// quadrature nodes written as literals and a fixed iteration schedule; no
// libm transcendental (exp, log, pow, lgamma) is called. It assumes IEEE
// double arithmetic rounding to nearest, without flush-to-zero, extended
// precision or contraction into FMA (the build passes -ffp-contract=off).
// Changing any of this changes stored data: golden values in
// tests/index/codebook_test.cc pin it.
//
// Thread-safety: GetCodebook is thread-safe; the returned reference is valid
// for the life of the process (codebooks are computed once and cached).
#ifndef TQDB_INDEX_CODEC_CODEBOOK_H_
#define TQDB_INDEX_CODEC_CODEBOOK_H_

#include <vector>

namespace tqdb::index {

inline constexpr int kMinCodebookDim = 2;
inline constexpr int kMaxCodebookDim = 65536;
inline constexpr int kMinCodebookBits = 1;
inline constexpr int kMaxCodebookBits = 8;

struct Codebook {
  int dim = 0;   // d of the sphere the coordinate comes from.
  int bits = 0;  // b; there are 2^b levels.
  // 2^b centroids, strictly ascending, antisymmetric (c_k = −c_{2^b−1−k}).
  std::vector<double> centroids;
  // 2^b − 1 decision boundaries, t_k = (c_k + c_{k+1}) / 2, strictly ascending.
  std::vector<double> boundaries;
  // The same values rounded to float, as the kernels use them (strictly
  // ascending too).
  std::vector<float> centroids_f;
  std::vector<float> boundaries_f;
  // E[(x − Q(x))²] for one coordinate under f_d, by quadrature with the
  // double centroids (the float ones differ by < 1e-7 relative). The expected
  // squared error of a whole unit vector quantized this way is dim times it.
  double coord_distortion = 0.0;
};

// The Lloyd-Max codebook for (dim, bits), computed on first use and cached.
// REQUIRES: kMinCodebookDim <= dim <= kMaxCodebookDim and
//           kMinCodebookBits <= bits <= kMaxCodebookBits (callers validate;
//           Format::Validate does). Violations abort in debug builds.
const Codebook& GetCodebook(int dim, int bits);

}  // namespace tqdb::index

#endif  // TQDB_INDEX_CODEC_CODEBOOK_H_
