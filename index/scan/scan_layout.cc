#include "index/scan/scan_layout.h"

#include <algorithm>

#include "common/status.h"
#include "index/scan/internal/fastscan_kernels.h"

namespace tqdb::index {
namespace {

// Coordinates per nibble for b-bit indices.
int PerNibble(int bits) { return 4 % bits == 0 ? 4 / bits : 1; }

}  // namespace

absl::StatusOr<ScanLayout> ScanLayout::Create(const Format& format) {
  TQDB_RETURN_IF_ERROR(format.Validate());
  const int hi_bits = format.bits + 1;
  ScanLayout layout;
  layout.format_ = format;
  layout.n_weights_ = format.NumScales() + (format.mode == QuantMode::kProd ? 1 : 0);

  std::vector<Group> run;  // groups of the current run
  auto close_run = [&](int weight) {
    if (run.size() % 2) run.push_back(Group{});  // pad to whole pairs
    // A dot run: one-coordinate centroid groups sharing a codebook.
    const auto first = std::find_if(run.begin(), run.end(),
                                     [](const Group& g) { return g.kind != GroupKind::kPad; });
    const bool dot = first != run.end() && std::all_of(run.begin(), run.end(), [&](const Group& g) {
      return g.kind == GroupKind::kPad ||
             (g.kind == GroupKind::kCentroids && g.count == 1 && g.outlier == first->outlier);
    });
    const bool outlier = dot && first->outlier;
    const uint8_t bits = dot ? first->bits : 0;
    for (size_t g = 0; g < run.size(); g += 2 * internal::kMaxPairsPerRun) {
      const size_t end = std::min(run.size(), g + 2 * internal::kMaxPairsPerRun);
      layout.runs_.push_back(
          Run{layout.n_pairs(), static_cast<int>(end - g) / 2, weight, dot, outlier, bits});
      layout.groups_.insert(layout.groups_.end(), run.begin() + g, run.begin() + end);
    }
    run.clear();
  };
  auto add_coords = [&](int begin, int end, int bits, bool outlier) {
    if (bits > 4) {
      layout.fast_scan_ = false;
      if (run.size() % 2) run.push_back(Group{});  // a wide coordinate is a whole pair
      for (int j = begin; j < end; ++j) {
        const auto b = static_cast<uint8_t>(bits);
        run.push_back(Group{GroupKind::kWideLow, 1, b, outlier, j});
        run.push_back(Group{GroupKind::kWideHigh, 1, b, outlier, j});
      }
      return;
    }
    const int per = PerNibble(bits);
    for (int j = begin; j < end; j += per) {
      run.push_back(Group{GroupKind::kCentroids, static_cast<uint8_t>(std::min(per, end - j)),
                          static_cast<uint8_t>(bits), outlier, j});
    }
  };
  const int d = format.dim, n_hi = format.outlier_channels;
  const int block = format.scale_block ? format.scale_block : d;
  for (int b0 = 0, s = 0; b0 < d; b0 += block, ++s) {
    const int b1 = std::min(d, b0 + block);
    if (b0 < n_hi) add_coords(b0, std::min(b1, n_hi), hi_bits, true);
    if (b1 > n_hi) add_coords(std::max(b0, n_hi), b1, format.bits, false);
    close_run(s);
  }
  if (format.mode == QuantMode::kProd) {
    const int m = format.QjlRows();
    for (int i = 0; i < m; i += 4) {
      run.push_back(Group{GroupKind::kQjlSigns, static_cast<uint8_t>(std::min(4, m - i)), 1,
                          false, i});
    }
    close_run(format.NumScales());
  }
  return layout;
}

void ScanLayout::ToNibbles(const uint8_t* idx, const uint8_t* signs, uint8_t* nibbles) const {
  for (size_t g = 0; g < groups_.size(); ++g) {
    const Group& group = groups_[g];
    uint8_t v = 0;
    if (group.kind == GroupKind::kWideLow || group.kind == GroupKind::kWideHigh) {
      const uint8_t index = idx[group.first];
      nibbles[g] = group.kind == GroupKind::kWideLow ? index & 15 : index >> 4;
      continue;
    }
    for (int i = 0; i < group.count; ++i) {
      const int k = group.first + i;
      const int bit_or_index =
          group.kind == GroupKind::kQjlSigns ? (signs[k / 8] >> (k % 8)) & 1 : idx[k];
      v |= static_cast<uint8_t>(bit_or_index << (group.bits * i));
    }
    nibbles[g] = v;
  }
}

}  // namespace tqdb::index
