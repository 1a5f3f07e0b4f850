// ScanLayout: how one format's codes are laid out for fast scanning.
//
// Scoring a TurboQuant code is a sum of per-coordinate table lookups:
//   ⟨y, x̂⟩ = Σ_blocks s_B · Σ_{j∈B} (Π·y)_j · c[idx_j]   (+ QJL term)
// Fast scan evaluates it with 16-entry uint8 tables indexed by 4-bit nibbles,
// so the layout packs every code into a stream of nibbles ("groups"):
//   - b = 1, 2, 4: 4/b coordinates per nibble (tq1: 4, tq2: 2, tq4: 1), the
//     nibble's table holding every combination of their centroids;
//   - b = 3: one coordinate per nibble (values 0…7);
//   - QJL sign bits: 4 rows per nibble, the table holding ±(S·Π·y) sums;
//   - b = 5 … 8 ("wide" coordinates, tq5+ and the outliers of tq4.5): one
//     coordinate per nibble pair, its low nibble then its high nibble, so
//     the pair's byte is the index itself.
// Consecutive groups that share a per-vector weight (a scale, or the QJL factor
// ‖x‖·γ·√(π/2)/m) form a run, padded to an even count, at most
// kMaxPairsPerRun pairs (longer ones split, keeping the weight). A vector's
// score is Σ_runs weight_run · (Δ_run · acc_run + bias_run), where acc_run is
// the kernel's integer sum and Δ, bias dequantize the run's tables.
//
// A wide coordinate's centroid is not a sum of per-nibble terms, so layouts
// with wide groups are not fast-scannable (fast_scan() is false): scorer.h and
// attend.h score them with exact float tables of 256 entries per pair instead,
// an order of magnitude slower than the nibble kernels. Every valid format has
// a layout.
// Thread-safety: immutable after Create.
#ifndef TQDB_INDEX_SCAN_SCAN_LAYOUT_H_
#define TQDB_INDEX_SCAN_SCAN_LAYOUT_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "index/codec/format.h"

namespace tqdb::index {

class ScanLayout {
 public:
  // kWideLow and kWideHigh: the low and high nibble of one wide coordinate,
  // always groups 2p and 2p + 1 of one pair.
  enum class GroupKind : uint8_t { kPad, kCentroids, kQjlSigns, kWideLow, kWideHigh };
  struct Group {
    GroupKind kind = GroupKind::kPad;
    uint8_t count = 0;  // coordinates or QJL rows in this nibble, 1…4 (1 if wide)
    uint8_t bits = 0;   // bits per coordinate (kCentroids, kWide*)
    bool outlier = false;  // coordinates from the outlier prefix (bits + 1 codebook)
    int first = 0;      // first coordinate or row
  };
  struct Run {
    int first_pair = 0;
    int n_pairs = 0;
    int weight = 0;  // index into the per-vector weights
    // Every group is padding or one coordinate of at most 4 bits from one
    // codebook (`outlier` says which): its nibble is the centroid index, so
    // the run can be scored by int8 dot products as well (scorer.h).
    bool dot = false;
    bool outlier = false;
    uint8_t bits = 0;  // a dot run's index bits: its codebook has 2^bits centroids
  };

  static absl::StatusOr<ScanLayout> Create(const Format& format);

  const Format& format() const { return format_; }
  // True when no group is wide: the nibble kernels (fastscan_kernels.h) apply.
  bool fast_scan() const { return fast_scan_; }
  int n_pairs() const { return static_cast<int>(groups_.size() / 2); }
  // Per-vector weights: the NumScales() scales, then the QJL factor (kProd).
  int n_weights() const { return n_weights_; }
  const std::vector<Group>& groups() const { return groups_; }
  const std::vector<Run>& runs() const { return runs_; }

  // The nibble stream of one vector (2·n_pairs() values < 16) from its
  // indices (dim bytes, as Codec unpacks them) and QJL sign bits (LSB-first).
  void ToNibbles(const uint8_t* idx, const uint8_t* signs, uint8_t* nibbles) const;

 private:
  Format format_;
  int n_weights_ = 0;
  bool fast_scan_ = true;
  std::vector<Group> groups_;
  std::vector<Run> runs_;
};

}  // namespace tqdb::index

#endif  // TQDB_INDEX_SCAN_SCAN_LAYOUT_H_
