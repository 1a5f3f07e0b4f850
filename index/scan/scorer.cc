#include "index/scan/scorer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "index/scan/internal/fastscan_kernels.h"
#include "index/scan/internal/group_table.h"

namespace tqdb::index {

// How far ahead of the block being scored ScoreRange prefetches codes, in
// bytes: a distance in blocks was too short for small blocks (tq2's 1 KiB:
// 4 blocks ahead scanned 9 % slower than 8) and too long for large ones
// (tq4's 2 KiB: 8 blocks ahead, 10 % slower than 4).
constexpr size_t kPrefetchBytes = 8192;

using internal::kBlockVectors;
using internal::kPairCodeBytes;

namespace internal {

void GroupTable(const ScanLayout::Group& g, const Codec& codec, const Codec::Query& q, float* t) {
  std::fill(t, t + 16, 0.0f);
  if (g.kind == ScanLayout::GroupKind::kPad) return;
  const int used = 1 << (g.count * g.bits);
  const float* c = codec.Centroids(g.outlier);
  const int mask = (1 << g.bits) - 1;
  for (int n = 0; n < used; ++n) {
    float sum = 0.0f;
    for (int i = 0; i < g.count; ++i) {
      const int k = g.first + i;
      const int field = (n >> (g.bits * i)) & mask;
      sum += g.kind == ScanLayout::GroupKind::kQjlSigns
                 ? (field ? q.projected[k] : -q.projected[k])
                 : q.rotated[k] * c[field];
    }
    t[n] = sum;
  }
  for (int n = used; n < 16; ++n) t[n] = t[0];  // never indexed; keeps min/max honest
}

void PairTable(const ScanLayout& layout, int p, const Codec& codec, const Codec::Query& q,
               float* t) {
  const ScanLayout::Group& lo = layout.groups()[2 * static_cast<size_t>(p)];
  if (lo.kind == ScanLayout::GroupKind::kWideLow) {
    const float* c = codec.Centroids(lo.outlier);
    const int used = 1 << lo.bits;
    for (int n = 0; n < kPairTableSize; ++n) t[n] = n < used ? q.rotated[lo.first] * c[n] : 0.0f;
    return;
  }
  float lo_table[16], hi_table[16];
  GroupTable(lo, codec, q, lo_table);
  GroupTable(layout.groups()[2 * static_cast<size_t>(p) + 1], codec, q, hi_table);
  for (int n = 0; n < kPairTableSize; ++n) t[n] = lo_table[n & 15] + hi_table[n >> 4];
}

}  // namespace internal

namespace {

// The dot representation of run r (scorer.h): levels, int8 values, and the
// dequantizing step, offset and rounding bound.
void PrepareDotRun(const Codec& codec, const ScanLayout& layout, size_t r,
                   const Codec::Query& q, PreparedQuery* query) {
  const ScanLayout::Run& run = layout.runs()[r];
  const int used = 1 << run.bits;
  const float* c = codec.Centroids(run.outlier);
  const float c_min = *std::min_element(c, c + used), c_max = *std::max_element(c, c + used);
  double level_step = (double{c_max} - c_min) / 255.0;
  if (!(level_step > 0)) level_step = 1.0;  // one distinct centroid: every level 0
  uint8_t* levels = &query->dot_levels[16 * r];
  double c_abs = 0.0, c_err = 0.0;
  for (int k = 0; k < used; ++k) {
    const double level = std::min(255.0, std::nearbyint((double{c[k]} - c_min) / level_step));
    levels[k] = static_cast<uint8_t>(level);
    c_abs = std::max(c_abs, std::fabs(double{c[k]}));
    c_err = std::max(c_err, std::fabs(c_min + level_step * level - c[k]));
  }
  const auto* groups = &layout.groups()[2 * static_cast<size_t>(run.first_pair)];
  const int n_groups = 2 * run.n_pairs;
  double y_max = 0.0;
  for (int g = 0; g < n_groups; ++g) {
    if (groups[g].kind != ScanLayout::GroupKind::kPad) {
      y_max = std::max(y_max, std::fabs(double{q.rotated[groups[g].first]}));
    }
  }
  // As for the tables: a degenerate step gives all-zero values.
  double step = y_max / 127.0;
  if (!(step >= 1e-300 && step <= 1e300)) step = 1.0;
  int8_t* values = &query->dot_values[query->dot_offset[r]];
  double sum = 0.0, bound = 0.0;
  for (int g = 0; g < n_groups; ++g) {
    if (groups[g].kind == ScanLayout::GroupKind::kPad) {
      values[g] = 0;
      continue;
    }
    const double y = q.rotated[groups[g].first];
    const double s = std::clamp(std::nearbyint(y / step), -127.0, 127.0);
    values[g] = static_cast<int8_t>(s);
    sum += s;
    bound += std::fabs(y - step * s) * c_abs + std::fabs(step * s) * c_err;
  }
  query->dot_delta[r] = static_cast<float>(step * level_step);
  query->dot_bias[r] = static_cast<float>(step * c_min * sum);
  query->dot_bound[r] = static_cast<float>(bound);
}

}  // namespace

void PrepareQuery(const Codec& codec, const ScanLayout& layout, const float* y,
                  PreparedQuery* query) {
  Codec::Query q;
  codec.PrepareQuery(y, &q);
  if (!layout.fast_scan()) {
    query->pair_tables.resize(static_cast<size_t>(layout.n_pairs()) * internal::kPairTableSize);
    for (int p = 0; p < layout.n_pairs(); ++p) {
      internal::PairTable(layout, p, codec, q, &query->pair_tables[p * internal::kPairTableSize]);
    }
    return;
  }
  const auto& groups = layout.groups();
  const auto& runs = layout.runs();
  std::vector<float> tables(groups.size() * 16);
  for (size_t g = 0; g < groups.size(); ++g) {
    internal::GroupTable(groups[g], codec, q, &tables[g * 16]);
  }

  query->lut_offset.resize(runs.size());
  size_t lut_bytes = 0;
  for (size_t r = 0; r < runs.size(); ++r) {
    query->lut_offset[r] = lut_bytes;
    if (!runs[r].dot) lut_bytes += internal::LutBytes(runs[r].n_pairs);
  }
  query->luts.assign(lut_bytes, 0);
  query->delta.assign(runs.size(), 0.0f);
  query->bias.assign(runs.size(), 0.0f);
  for (size_t r = 0; r < runs.size(); ++r) {
    if (runs[r].dot) continue;
    const size_t g0 = 2 * static_cast<size_t>(runs[r].first_pair);
    const size_t g1 = g0 + 2 * static_cast<size_t>(runs[r].n_pairs);
    double range = 0.0;
    for (size_t g = g0; g < g1; ++g) {
      const float* t = &tables[g * 16];
      range = std::max(range, double{*std::max_element(t, t + 16)} - *std::min_element(t, t + 16));
    }
    // In double, so a tiny or huge query cannot make the step 0 or infinite
    // (which would turn levels into NaN); a degenerate step gives all-zero
    // levels and the score falls back to the table offsets.
    double step = range / 255.0;
    if (!(step >= 1e-300 && step <= 1e300)) step = 1.0;
    const float delta = static_cast<float>(step);
    float bias = 0.0f;
    for (size_t g = g0; g < g1; ++g) {
      const float* t = &tables[g * 16];
      const float lo = *std::min_element(t, t + 16);
      bias += lo;
      // Pair (g − g0)/2 of the run: the low nibble's table, or the high one's.
      uint8_t* lut = &query->luts[query->lut_offset[r] +
                                  internal::LutOffset(static_cast<int>((g - g0) / 2), (g - g0) % 2)];
      for (int n = 0; n < 16; ++n) {
        const double level = std::nearbyint((double{t[n]} - lo) / step);
        lut[n] = lut[16 + n] = static_cast<uint8_t>(level >= 0 && level <= 255 ? level : 255);
      }
    }
    query->delta[r] = delta;
    query->bias[r] = bias;
  }

  query->dot_offset.assign(runs.size(), 0);
  size_t dot_bytes = 0;
  for (size_t r = 0; r < runs.size(); ++r) {
    query->dot_offset[r] = dot_bytes;
    if (runs[r].dot) dot_bytes += internal::DotValueBytes(runs[r].n_pairs);
  }
  query->dot_values.assign(dot_bytes, 0);
  query->dot_levels.assign(16 * runs.size(), 0);
  query->dot_delta.assign(runs.size(), 0.0f);
  query->dot_bias.assign(runs.size(), 0.0f);
  query->dot_bound.assign(runs.size(), 0.0f);
  for (size_t r = 0; r < runs.size(); ++r) {
    if (runs[r].dot) PrepareDotRun(codec, layout, r, q, query);
  }
}

void ScoreBlocks(const CodeBlocks& blocks, const PreparedQuery* queries, int nq,
                 size_t block_begin, size_t block_end, float* out, size_t stride, Isa isa) {
  const size_t begin = block_begin * kBlockVectors;
  const size_t end = std::min(block_end * kBlockVectors, blocks.size());
  if (begin < end) ScoreRange(blocks, queries, nq, begin, end, 1.0f, out, stride, isa);
}

void ScoreRange(const CodeBlocks& blocks, const PreparedQuery* queries, int nq, size_t begin,
                size_t end, float out_scale, float* out, size_t stride, Isa isa) {
  const size_t block_begin = begin / kBlockVectors;
  const size_t block_end = (end + kBlockVectors - 1) / kBlockVectors;
  const internal::FastScanKernels* kernels = internal::GetFastScanKernels(isa);
  if (kernels == nullptr) kernels = internal::GetFastScanKernels(Isa::kScalar);  // unsupported ISA
  const bool fast = blocks.layout().fast_scan();
  const auto& runs = blocks.layout().runs();
  std::vector<const uint8_t*> luts(nq);
  // Per dot run, its queries' values, steps and offsets side by side.
  std::vector<const int8_t*> dot_values(runs.size() * nq);
  std::vector<float> dot_delta(runs.size() * nq), dot_bias(runs.size() * nq);
  for (size_t r = 0; r < runs.size(); ++r) {
    if (!fast || !runs[r].dot) continue;
    for (int q = 0; q < nq; ++q) {
      dot_values[r * nq + q] = &queries[q].dot_values[queries[q].dot_offset[r]];
      dot_delta[r * nq + q] = queries[q].dot_delta[r];
      dot_bias[r * nq + q] = queries[q].dot_bias[r];
    }
  }
  std::vector<float> sums(kBlockVectors);
  std::vector<uint16_t> acc(static_cast<size_t>(nq) * kBlockVectors);
  std::vector<float> score(static_cast<size_t>(nq) * kBlockVectors);
  const size_t block_bytes = static_cast<size_t>(blocks.layout().n_pairs()) * kPairCodeBytes;
  const size_t ahead_blocks = std::max<size_t>(1, kPrefetchBytes / block_bytes);
  std::vector<uint8_t> open_block;  // the open block's nibbles, if it is scanned
  const size_t prefetch_end = std::min(block_end, blocks.full_blocks());
  // The first blocks of the range too, whose loads would otherwise wait on
  // memory: ranges of 1,024 tq4 vectors (nq = 4) score 15–30 % faster.
  for (size_t b = block_begin; b < std::min(block_begin + ahead_blocks, prefetch_end); ++b) {
    internal::Prefetch(blocks.FullBlockNibbles(b), block_bytes);
  }
  const size_t weights_per_block = static_cast<size_t>(blocks.layout().n_weights()) * kBlockVectors;
  CodeBlocks::FullBlockRun chunk{};  // full blocks [chunk_first, chunk_first + chunk.count)
  size_t chunk_first = 0;
  for (size_t b = block_begin; b < block_end; ++b) {
    const uint8_t* nibbles;
    const float* weights;
    if (b < blocks.full_blocks()) {
      if (b >= chunk_first + chunk.count) {
        chunk = blocks.FullBlocksFrom(b);
        chunk_first = b;
      }
      nibbles = chunk.nibbles + (b - chunk_first) * block_bytes;
      weights = chunk.weights + (b - chunk_first) * weights_per_block;
    } else {
      nibbles = blocks.BlockNibbles(b, &open_block);
      weights = blocks.BlockWeights(b);
    }
    // Ask for a later block's codes while this one is scored: the hardware
    // prefetchers alone leave a single scanning core short of bandwidth.
    if (b + ahead_blocks < chunk_first + chunk.count) {
      internal::Prefetch(nibbles + ahead_blocks * block_bytes, block_bytes);
    } else if (b + ahead_blocks < prefetch_end) {
      internal::Prefetch(blocks.FullBlockNibbles(b + ahead_blocks), block_bytes);
    }
    const size_t first = b * kBlockVectors;
    // A block wholly in the range is scored in place in `out`; the first and
    // last may be partial and go through `score`.
    const bool whole = first >= begin && first + kBlockVectors <= end;
    float* base = whole ? out + (first - begin) : score.data();
    const size_t row = whole ? stride : kBlockVectors;
    // Copied from zeros, not filled: GCC expands a 128-byte fill into rep
    // stos, whose start-up cost was a sixth of tq2's per-block overhead.
    static constexpr float kZeros[kBlockVectors] = {};
    for (int q = 0; q < nq; ++q) std::memcpy(base + q * row, kZeros, sizeof(kZeros));
    for (size_t r = 0; r < runs.size(); ++r) {
      const auto& run = runs[r];
      const uint8_t* codes = nibbles + run.first_pair * kPairCodeBytes;
      const float* w = weights + run.weight * kBlockVectors;
      if (!fast) {
        for (int q = 0; q < nq; ++q) {
          kernels->pair_table_sums(
              codes, &queries[q].pair_tables[run.first_pair * internal::kPairTableSize],
              run.n_pairs, sums.data());
          float* sq = base + q * row;
          for (int v = 0; v < kBlockVectors; ++v) sq[v] += w[v] * sums[v];
        }
        continue;
      }
      if (run.dot) {
        kernels->dot(codes, &queries[0].dot_levels[16 * r], &dot_values[r * nq], nq, run.n_pairs,
                     w, &dot_delta[r * nq], &dot_bias[r * nq], base, row);
        continue;
      }
      for (int q = 0; q < nq; ++q) luts[q] = queries[q].luts.data() + queries[q].lut_offset[r];
      if (nq == 1) {
        kernels->accumulate_scaled(codes, luts[0], run.n_pairs, w, queries[0].delta[r],
                                   queries[0].bias[r], base);
        continue;
      }
      kernels->accumulate_multi(codes, luts.data(), nq, run.n_pairs, acc.data());
      for (int q = 0; q < nq; ++q) {
        kernels->add_scaled(&acc[q * kBlockVectors], w, queries[q].delta[r], queries[q].bias[r],
                            base + q * row);
      }
    }
    if (whole) {
      if (out_scale != 1.0f) {
        for (int q = 0; q < nq; ++q) {
          float* dst = base + q * row;
          for (int v = 0; v < kBlockVectors; ++v) dst[v] *= out_scale;
        }
      }
      continue;
    }
    // Vectors [lo, hi) of this block are in the range.
    const size_t count = std::min<size_t>(kBlockVectors, blocks.size() - first);
    const size_t lo = std::max(begin, first) - first, hi = std::min(end, first + count) - first;
    for (int q = 0; q < nq; ++q) {
      const float* sq = &score[q * kBlockVectors];
      float* dst = out + static_cast<size_t>(q) * stride + (first + lo - begin);
      for (size_t v = lo; v < hi; ++v) dst[v - lo] = out_scale * sq[v];
    }
  }
}

float ErrorBound(const CodeBlocks& blocks, const PreparedQuery& query, size_t i) {
  if (!blocks.layout().fast_scan()) return 0.0f;  // exact float tables
  const auto& runs = blocks.layout().runs();
  const float* weights = blocks.BlockWeights(i / kBlockVectors);
  float bound = 0.0f;
  for (size_t r = 0; r < runs.size(); ++r) {
    const float w = weights[runs[r].weight * kBlockVectors + i % kBlockVectors];
    // A table run: 2·n_pairs groups × Δ/2.
    const float run_bound = runs[r].dot ? query.dot_bound[r] : query.delta[r] * runs[r].n_pairs;
    bound += std::fabs(w) * run_bound;
  }
  return bound;
}

}  // namespace tqdb::index
