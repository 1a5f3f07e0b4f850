// Lloyd-Max codebooks for f_d(x) ∝ (1 − x²)^((d−3)/2); see codebook.h.
//
// Numerics, all in double with only +, −, ×, ÷ and sqrt so that every result is
// bit-identical everywhere:
//  * f is even, so only the positive half [0, 1] is solved; the negative half
//    is its exact mirror. The unnormalised g(x) = (1 − x²)^((d−3)/2) (g(0) = 1,
//    so nothing overflows) is integrated; normalisation cancels in every ratio.
//  * [0, 1/2] is integrated in x. [1/2, 1] is integrated in u = sqrt(1 − x),
//    where g dx = 2u (u²(2 − u²))^((d−3)/2) du is smooth for every d ≥ 2 (the
//    sqrt and, for d = 2, 1/sqrt endpoint singularities of g disappear) and
//    x = 1 − u² ≥ 1/2 has no cancellation.
//  * Both parts are cut into fixed panels of width σ/2 (σ = 1/sqrt(d)), so a
//    16-point Gauss-Legendre rule per panel resolves the near-Gaussian bulk of
//    large d far below double rounding, and panels are short relative to the
//    distance to the singularities at ±1 (and ±sqrt2 in u) for small d. Beyond
//    40σ, g < e^−798 underflows, so the support is cut there. Each Lloyd cell
//    is integrated on its exact end points, piece by piece over the panels.
//  * Lloyd's iteration converges like 1 − O(4^−b) per step, far too slowly for
//    b = 8, so the optimality conditions (each centroid is the mean of its
//    cell, cells end at midpoints) are solved by Newton's method, whose
//    Jacobian is tridiagonal. Levels are refined one bit at a time: the 2^b
//    solution, each cell split at its centroid, seeds the 2^(b+1) solve.
//    Iteration stops on a fixed rule (a full Newton step ≤ 1e-10 σ, see
//    kNewtonTolerance), never on time, so the sequence of operations is a
//    function of (d, b) alone.
#include "index/codec/codebook.h"

#include <algorithm>
#include <cassert>
#include <cfloat>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

// Reassociation, fused multiply-adds or extended-precision intermediates would
// change the bits. The build passes -ffp-contract=off to every file; clang
// also honours the standard pragma, so this file does not depend on the flag.
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif
#ifdef __FAST_MATH__
#error "codebook.cc must not be compiled with -ffast-math"
#endif
static_assert(FLT_EVAL_METHOD == 0, "double arithmetic must round to double");
static_assert(std::numeric_limits<double>::is_iec559, "IEEE-754 double required");

namespace tqdb::index {
namespace {

// 16-point Gauss-Legendre rule on [−1, 1]: the positive nodes and their
// weights (the rule is symmetric). Hex literals are the round-to-nearest
// doubles of the values in the comments (computed to 50 digits by Newton's
// method on P_16), so no decimal-to-binary conversion is involved.
constexpr double kGaussNode[8] = {
    0x1.852bd6676a9f9p-4,  // 0.095012509837637440185
    0x1.205cae642337cp-2,  // 0.28160355077925891323
    0x1.d50259a43a772p-2,  // 0.45801677765722738634
    0x1.3c5a466d5e8b8p-1,  // 0.61787624440264374845
    0x1.82c45dda4726bp-1,  // 0.75540440835500303390
    0x1.bb3403514e483p-1,  // 0.86563120238783174388
    0x1.e39f56616f9b0p-1,  // 0.94457502307323257608
    0x1.fa92c264d787ep-1,  // 0.98940093499164993260
};
constexpr double kGaussWeight[8] = {
    0x1.83feae80e4dfcp-3,  // 0.18945061045506849629
    0x1.75f8c77e0c00fp-3,  // 0.18260341504492358887
    0x1.5a6ebbb5a75fcp-3,  // 0.16915651939500253819
    0x1.325f61bca3cbfp-3,  // 0.14959598881657673208
    0x1.fe7af2bad386ap-4,  // 0.12462897125553387205
    0x1.85c4ee79cc258p-4,  // 0.095158511682492784810
    0x1.fdfb1a2c1265dp-5,  // 0.062253523938647892863
    0x1.bcddab4b7c211p-6,  // 0.027152459411754094852
};

constexpr double kSplitX = 0.5;       // x-space below, u-space above.
constexpr double kTailSigmas = 40.0;  // g(40σ) < e^−798: exactly 0 in double.
// Newton stops after a full step ≤ 1e-10 σ. Convergence is quadratic, so the
// error left after such a step is ~1e-20 σ, below the ~1e-13 σ at which
// rounding noise (in the integrals, amplified by the ill-conditioned
// Jacobian for b = 8) jitters further steps; a smaller tolerance could then
// never be met. This takes 1 to 6 steps per level for all d.
constexpr double kNewtonTolerance = 1e-10;
constexpr int kMaxNewtonSteps = 100;  // A safety cap; never reached.

// Integrals of g over one cell, taken about a chosen center c.
struct Moments {
  double mass = 0.0;    // ∫ g
  double first = 0.0;   // ∫ (x − c) g
  double second = 0.0;  // ∫ (x − c)² g
};

// A number v in (0, 1], held as its complement c = 1 − v while c ≤ 1/2 (so a
// v near 1 keeps full relative precision in c) and as v itself otherwise.
struct NearOne {
  bool complement;
  double value;
};

NearOne Multiply(NearOne a, NearOne b) {
  if (a.complement && b.complement) {  // (1 − a)(1 − b) = 1 − (a + b − ab).
    const double c = (a.value + b.value) - a.value * b.value;
    return c <= 0.5 ? NearOne{true, c} : NearOne{false, 1.0 - c};  // 1 − c is exact.
  }
  if (a.complement) return {false, b.value - a.value * b.value};
  if (b.complement) return {false, a.value - b.value * a.value};
  return {false, a.value * b.value};
}

// g on the positive half, with the fixed quadrature panels.
class HalfDensity {
 public:
  explicit HalfDensity(int dim)
      : dim_(dim),
        sigma_(1.0 / std::sqrt(static_cast<double>(dim))),
        upper_(std::min(1.0, kTailSigmas * sigma_)) {
    x_end_ = std::min(kSplitX, upper_);
    x_panels_ = PanelCount(x_end_);
    if (upper_ > kSplitX) {
      u_lo_ = std::sqrt(1.0 - upper_);
      u_hi_ = std::sqrt(1.0 - kSplitX);
      u_panels_ = PanelCount(u_hi_ - u_lo_);
    }
  }

  double sigma() const { return sigma_; }
  double upper() const { return upper_; }  // End of the support after the cut.

  // g(x) = (1 − x²)^((d−3)/2) for 0 ≤ x < 1.
  double AtX(double x) const { return Power((1.0 - x) * (1.0 + x), x * x); }

  // Moments of g over [a, b] ⊆ [0, upper()] about `center`.
  Moments Integrate(double a, double b, double center) const {
    Moments m;
    if (a < x_end_) AddPanels(a, b, 0.0, x_end_, x_panels_, /*in_u=*/false, center, &m);
    if (b > kSplitX) {  // x in [max(a, 1/2), b] is u in [sqrt(1 − b), ...].
      const double ua = std::sqrt(1.0 - b);
      const double ub = std::sqrt(1.0 - std::max(a, kSplitX));
      AddPanels(ua, ub, u_lo_, u_hi_, u_panels_, /*in_u=*/true, center, &m);
    }
    return m;
  }

 private:
  int PanelCount(double length) const {
    return std::max(1, static_cast<int>(std::ceil(length / (0.5 * sigma_))));
  }

  // y^((d−3)/2) for y = 1 − z in [0, 1], both given to full relative
  // precision: an integer power by binary powering (a fixed sequence of
  // operations), times sqrt(y) when d − 3 is odd. v^k amplifies a relative
  // error in v k-fold, and for large d the bulk has y = 1 − O(1/d), so factors
  // near 1 are carried as their complements (NearOne); the result is then
  // accurate to O(ε log d) instead of O(ε d). Underflow to 0 is harmless:
  // such terms are far below the rounding of any sum they enter.
  double Power(double y, double z) const {
    if (dim_ == 2) return 1.0 / std::sqrt(y);
    NearOne result{/*complement=*/true, 0.0};
    NearOne base = z <= 0.5 ? NearOne{true, z} : NearOne{false, y};
    for (int k = (dim_ - 3) / 2; k > 0; k >>= 1) {
      if (k & 1) result = Multiply(result, base);
      base = Multiply(base, base);
    }
    const double power = result.complement ? 1.0 - result.value : result.value;
    return (dim_ - 3) % 2 == 1 ? power * std::sqrt(y) : power;
  }

  // Adds the pieces of [a, b] cut by `n` equal panels of [lo, hi].
  void AddPanels(double a, double b, double lo, double hi, int n, bool in_u, double center,
                 Moments* m) const {
    for (int i = 0; i < n; ++i) {
      const double piece_lo = std::max(a, i == 0 ? lo : lo + (hi - lo) * i / n);
      const double piece_hi = std::min(b, i + 1 == n ? hi : lo + (hi - lo) * (i + 1) / n);
      if (piece_lo < piece_hi) AddPiece(piece_lo, piece_hi, in_u, center, m);
    }
  }

  // Adds the Gauss-Legendre moments of one piece [lo, hi] of a panel, in x or
  // in u (then g dx = 2u (u²(2 − u²))^((d−3)/2) du and x = 1 − u²).
  void AddPiece(double lo, double hi, bool in_u, double center, Moments* m) const {
    const double mid = 0.5 * (lo + hi);
    const double half = 0.5 * (hi - lo);
    for (int i = 0; i < 8; ++i) {
      for (const double t : {mid - half * kGaussNode[i], mid + half * kGaussNode[i]}) {
        double x, w;
        if (in_u) {
          const double uu = t * t;
          x = 1.0 - uu;
          // For d = 2, 2u / sqrt(u²(2 − u²)) simplifies to 2 / sqrt(2 − u²).
          w = dim_ == 2 ? 2.0 / std::sqrt(2.0 - uu) : 2.0 * t * Power(uu * (2.0 - uu), x * x);
        } else {
          x = t;
          w = AtX(t);
        }
        w *= half * kGaussWeight[i];
        const double dx = x - center;
        m->mass += w;
        m->first += w * dx;
        m->second += w * dx * dx;
      }
    }
  }

  int dim_;
  double sigma_;
  double upper_;
  double x_end_ = 0.0;  // x-panels split [0, x_end_] evenly.
  int x_panels_ = 0;
  double u_lo_ = 0.0;  // u-panels split [u_lo_, u_hi_] evenly.
  double u_hi_ = 0.0;
  int u_panels_ = 0;
};

// Cell edges s_0 = 0 < s_1 < … < s_n = upper for positive centroids p.
std::vector<double> CellEdges(const HalfDensity& g, const std::vector<double>& p) {
  std::vector<double> s(p.size() + 1);
  s[0] = 0.0;
  for (size_t j = 1; j < p.size(); ++j) s[j] = 0.5 * (p[j - 1] + p[j]);
  s[p.size()] = g.upper();
  return s;
}

// Mean of g over [a, b].
double Centroid(const HalfDensity& g, double a, double b) {
  const double mid = 0.5 * (a + b);
  const Moments m = g.Integrate(a, b, mid);
  return mid + m.first / m.mass;
}

// Newton's method on R_j(p) = ∫_{s_j}^{s_{j+1}} (x − p_j) g dx = 0, where
// s_j = (p_{j−1} + p_j)/2. Since ∂R_j/∂s_{j+1} = (s_{j+1} − p_j) g(s_{j+1}),
// ∂R_j/∂s_j = (p_j − s_j) g(s_j) and ∂R_j/∂p_j = −mass_j + (those two)/2,
// the Jacobian is tridiagonal and (weakly) diagonally dominant: O(n) per step.
void SolveNewton(const HalfDensity& g, std::vector<double>* p) {
  const size_t n = p->size();
  const double tolerance = kNewtonTolerance * g.sigma();
  std::vector<double> sub(n), diag(n), sup(n), rhs(n), lloyd(n), next(n);
  for (int step = 0; step < kMaxNewtonSteps; ++step) {
    const std::vector<double> s = CellEdges(g, *p);
    for (size_t j = 0; j < n; ++j) {
      const Moments m = g.Integrate(s[j], s[j + 1], (*p)[j]);
      sub[j] = j > 0 ? 0.5 * ((*p)[j] - s[j]) * g.AtX(s[j]) : 0.0;
      sup[j] = j + 1 < n ? 0.5 * (s[j + 1] - (*p)[j]) * g.AtX(s[j + 1]) : 0.0;
      diag[j] = sub[j] + sup[j] - m.mass;
      rhs[j] = -m.first;
      lloyd[j] = (*p)[j] + m.first / m.mass;
    }
    // Thomas algorithm (no pivoting needed under diagonal dominance).
    for (size_t j = 1; j < n; ++j) {
      const double factor = sub[j] / diag[j - 1];
      diag[j] -= factor * sup[j - 1];
      rhs[j] -= factor * rhs[j - 1];
    }
    std::vector<double>& delta = rhs;
    delta[n - 1] /= diag[n - 1];
    for (size_t j = n - 1; j-- > 0;) delta[j] = (delta[j] - sup[j] * delta[j + 1]) / diag[j];
    // Damping: halve the step until the centroids stay ordered in (0, upper);
    // should that fail, take a plain Lloyd step, which always keeps the order.
    double max_step = 0.0;
    for (const double d : delta) max_step = std::max(max_step, std::fabs(d));
    double lambda = 1.0;
    bool ordered = false;
    for (int halvings = 0;; ++halvings, lambda *= 0.5) {
      for (size_t j = 0; j < n; ++j) next[j] = (*p)[j] + lambda * delta[j];
      ordered = next[0] > 0.0 && next[n - 1] < g.upper();
      for (size_t j = 1; j < n; ++j) ordered = ordered && next[j - 1] < next[j];
      if (ordered || halvings == 30) break;
    }
    if (!ordered) next = lloyd;
    p->swap(next);
    if (ordered && lambda == 1.0 && max_step <= tolerance) return;
  }
}

std::unique_ptr<Codebook> Compute(int dim, int bits) {
  const HalfDensity g(dim);
  // Positive centroids, refined one bit at a time (1 bit: mean of [0, 1]).
  // Newton also polishes the 1-bit mean, which Centroid takes about the
  // middle of [0, upper], far from the mean for large d (cancellation).
  std::vector<double> p = {Centroid(g, 0.0, g.upper())};
  SolveNewton(g, &p);
  for (int b = 2; b <= bits; ++b) {
    const std::vector<double> s = CellEdges(g, p);
    std::vector<double> split;
    for (size_t j = 0; j < p.size(); ++j) {
      split.push_back(Centroid(g, s[j], p[j]));
      split.push_back(Centroid(g, p[j], s[j + 1]));
    }
    p.swap(split);
    SolveNewton(g, &p);
  }

  auto book = std::make_unique<Codebook>();
  book->dim = dim;
  book->bits = bits;
  const size_t half = p.size();
  book->centroids.resize(2 * half);
  for (size_t j = 0; j < half; ++j) {
    book->centroids[half + j] = p[j];
    book->centroids[half - 1 - j] = -p[j];  // Exact antisymmetry.
  }
  for (size_t k = 0; k + 1 < 2 * half; ++k) {
    book->boundaries.push_back((book->centroids[k] + book->centroids[k + 1]) / 2);
  }
  for (const double c : book->centroids) book->centroids_f.push_back(static_cast<float>(c));
  for (const double t : book->boundaries) book->boundaries_f.push_back(static_cast<float>(t));
  // By symmetry the positive half's error/mass ratio is the whole line's.
  const std::vector<double> s = CellEdges(g, p);
  double mass = 0.0;
  double error = 0.0;
  for (size_t j = 0; j < half; ++j) {
    const Moments m = g.Integrate(s[j], s[j + 1], p[j]);
    mass += m.mass;
    error += m.second;
  }
  book->coord_distortion = error / mass;
  return book;
}

}  // namespace

const Codebook& GetCodebook(int dim, int bits) {
  assert(dim >= kMinCodebookDim && dim <= kMaxCodebookDim);
  assert(bits >= kMinCodebookBits && bits <= kMaxCodebookBits);
  // std::mutex rather than absl::Mutex: the system abseil is not built with
  // TSan instrumentation, so TSan builds would report false races through it.
  struct Cache {
    std::mutex mu;
    // Guarded by mu. Never erased and never freed, so references stay valid.
    std::map<std::pair<int, int>, std::unique_ptr<Codebook>> books;
  };
  static Cache* const cache = new Cache;
  const std::pair<int, int> key(dim, bits);
  {
    std::lock_guard<std::mutex> lock(cache->mu);
    const auto it = cache->books.find(key);
    if (it != cache->books.end()) return *it->second;
  }
  // Computed outside the lock so that a slow (d, 8) does not stall lookups of
  // other codebooks. A racing thread may compute the same (bit-identical)
  // codebook; only the first one inserted is kept and returned to everyone.
  std::unique_ptr<Codebook> book = Compute(dim, bits);
  std::lock_guard<std::mutex> lock(cache->mu);
  return *cache->books.try_emplace(key, std::move(book)).first->second;
}

}  // namespace tqdb::index
