#include "index/scan/attend.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "index/scan/internal/attend_kernels.h"
#include "index/scan/internal/fastscan_kernels.h"
#include "index/scan/internal/group_table.h"
#include "index/scan/internal/validate.h"

namespace tqdb::index {
namespace {

using internal::kBlockVectors;
using internal::kPairCodeBytes;

inline uint8_t Nibble(const uint8_t* block_nibbles, int group, size_t lane) {
  const uint8_t byte = block_nibbles[(group / 2) * kPairCodeBytes + lane];
  return group % 2 ? byte >> 4 : byte & 15;
}

absl::Status Validate(const CodeBlocks& keys, const CodeBlocks& values,
                      absl::Span<const float> queries, const AttendOptions& o,
                      const ExactTail& tail) {
  const size_t d = static_cast<size_t>(keys.codec().dim());
  if (values.codec().dim() != keys.codec().dim()) {
    return absl::InvalidArgumentError(absl::StrCat("keys have dim ", d, " but values have dim ",
                                                   values.codec().dim()));
  }
  if (keys.size() != values.size()) {
    return absl::InvalidArgumentError(absl::StrCat("keys hold ", keys.size(),
                                                   " tokens but values hold ", values.size()));
  }
  if (values.codec().format().mode != QuantMode::kMse) {
    return absl::InvalidArgumentError("value formats must be MSE formats (no QJL)");
  }
  // Values are read from their codes (AttendReadsValueCodes) or else from
  // their nibbles: the blocks must keep those.
  const bool from_codes = AttendReadsValueCodes(values.codec().format());
  if (values.keep() == (from_codes ? CodeBlocks::Keep::kNibbles : CodeBlocks::Keep::kCodes)) {
    return absl::InvalidArgumentError(from_codes ? "values kept without codes, which Attend reads"
                                                 : "values kept without nibbles, which Attend "
                                                   "reads for this format");
  }
  if (absl::Status s = internal::ValidateQueries(queries, d); !s.ok()) return s;
  if (o.begin > o.end) return absl::InvalidArgumentError("token range has begin > end");
  if (!std::isfinite(o.scale)) return absl::InvalidArgumentError("scale is not finite");
  if (tail.n > 0 && (tail.keys == nullptr || tail.values == nullptr)) {
    return absl::InvalidArgumentError("exact tail has tokens but no keys or values");
  }
  for (size_t i = 0; i < tail.n * d; ++i) {
    if (!std::isfinite(tail.keys[i]) || !std::isfinite(tail.values[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("exact tail token ", i / d, " coordinate ", i % d, " is not finite"));
    }
  }
  if (std::min(o.end, keys.size()) <= std::min(o.begin, keys.size()) && tail.n == 0) {
    return absl::InvalidArgumentError("no token takes part in attention");
  }
  return absl::OkStatus();
}

// Tokens per softmax tile: logits and weights of a GQA group stay in L1.
constexpr size_t kTileBlocks = 8;
constexpr size_t kTileTokens = kTileBlocks * kBlockVectors;
// Blocks ahead to prefetch: one tile.
constexpr size_t kPrefetchBlocks = kTileBlocks;


// Rows n × d of the rotated-domain values s·c[idx] of lanes [lane0, lane0 + n)
// of value block `block`, from its nibbles (any MSE format).
void DecodeRows(const CodeBlocks& values, size_t block, size_t lane0, size_t n, float* rows,
                std::vector<uint8_t>* scratch) {
  const ScanLayout& vl = values.layout();
  const int d = values.codec().dim();
  const uint8_t* nib = values.BlockNibbles(block, scratch);
  const float* w = values.BlockWeights(block);
  for (const ScanLayout::Run& run : vl.runs()) {
    for (int k = 2 * run.first_pair; k < 2 * (run.first_pair + run.n_pairs); ++k) {
      const ScanLayout::Group& group = vl.groups()[k];
      if (group.kind != ScanLayout::GroupKind::kCentroids &&
          group.kind != ScanLayout::GroupKind::kWideLow) {
        continue;
      }
      const float* c = values.codec().Centroids(group.outlier);
      if (group.kind == ScanLayout::GroupKind::kWideLow) {  // the pair's byte is the index
        for (size_t i = 0; i < n; ++i) {
          const size_t lane = lane0 + i;
          rows[i * d + group.first] =
              w[run.weight * kBlockVectors + lane] * c[nib[(k / 2) * kPairCodeBytes + lane]];
        }
        continue;
      }
      const int gmask = (1 << group.bits) - 1;
      for (size_t i = 0; i < n; ++i) {
        const size_t lane = lane0 + i;
        const float s = w[run.weight * kBlockVectors + lane];
        const uint8_t nibble = Nibble(nib, k, lane);
        for (int f = 0; f < group.count; ++f) {
          rows[i * d + group.first + f] = s * c[(nibble >> (group.bits * f)) & gmask];
        }
      }
    }
  }
}

// block_logits (attend_kernels.h) for keys that are not fast-scannable, from
// 256-entry pair tables: out[q·out_stride + v] += w[v] · Σ_p tables[q·table_stride + 256p + byte].
void WideBlockLogits(const internal::FastScanKernels& kernels, const uint8_t* codes,
                     const float* tables, size_t table_stride, size_t nq, int n_pairs,
                     const float* w, float* out, size_t out_stride) {
  float sums[kBlockVectors];
  for (size_t q = 0; q < nq; ++q) {
    kernels.pair_table_sums(codes, tables + q * table_stride, n_pairs, sums);
    for (int v = 0; v < kBlockVectors; ++v) out[q * out_stride + v] += w[v] * sums[v];
  }
}

}  // namespace

// Single-scale formats whose index bytes are packed 1-, 2- or 4-bit fields
// (the formats whose codes CodeBlocks can rebuild) take the packed fast path
// (internal/attend_kernels.h); the rest decode blocks to rows.
bool AttendReadsValueCodes(const Format& f) {
  return CodeBlocks::CanRebuildCodes(f) && f.NumScales() == 1;
}

absl::Status Attend(const CodeBlocks& keys, const CodeBlocks& values,
                    absl::Span<const float> queries, const AttendOptions& options,
                    const ExactTail& tail, float* out) {
  if (absl::Status s = Validate(keys, values, queries, options, tail); !s.ok()) return s;
  const internal::AttendKernels* kernels = internal::GetAttendKernels(options.isa);
  if (kernels == nullptr) kernels = internal::AttendScalar();  // unsupported ISA
  const internal::FastScanKernels* scan_kernels = internal::GetFastScanKernels(options.isa);
  if (scan_kernels == nullptr) scan_kernels = internal::GetFastScanKernels(Isa::kScalar);
  const int d = keys.codec().dim();
  const size_t nq = queries.size() / d;
  const size_t begin = std::min(options.begin, keys.size());
  const size_t end = std::min(options.end, keys.size());
  const float scale = options.scale != 0.0f ? options.scale : 1.0f / std::sqrt(float(d));
  const ScanLayout& kl = keys.layout();
  const auto& kgroups = kl.groups();

  // Per query: the key tables with the logit scale folded in, 16 floats a
  // group (fast-scannable keys) or 256 a pair (group_table.h).
  const bool fast_keys = kl.fast_scan();
  const size_t table_stride =
      fast_keys ? kgroups.size() * 16 : static_cast<size_t>(kl.n_pairs()) * internal::kPairTableSize;
  std::vector<float> tables(nq * table_stride);
  // Dot runs (ScanLayout::Run::dot) decode their nibbles instead: per query,
  // the scaled rotated coordinate of every group (0 for padding), and per run
  // its codebook padded to 16 floats.
  const size_t value_stride = kgroups.size();
  std::vector<float> dot_values(fast_keys ? nq * value_stride : 0, 0.0f);
  std::vector<float> dot_centroids(16 * kl.runs().size(), 0.0f);
  for (size_t r = 0; fast_keys && r < kl.runs().size(); ++r) {
    const ScanLayout::Run& run = kl.runs()[r];
    if (run.dot) {
      std::copy_n(keys.codec().Centroids(run.outlier), 1 << run.bits, &dot_centroids[16 * r]);
    }
  }
  Codec::Query rotated;
  for (size_t g = 0; g < nq; ++g) {
    keys.codec().PrepareQuery(&queries[g * d], &rotated);
    for (size_t r = 0; fast_keys && r < kl.runs().size(); ++r) {
      const ScanLayout::Run& run = kl.runs()[r];
      for (int k = 2 * run.first_pair; run.dot && k < 2 * (run.first_pair + run.n_pairs); ++k) {
        if (kgroups[k].kind == ScanLayout::GroupKind::kCentroids) {
          dot_values[g * value_stride + k] = scale * rotated.rotated[kgroups[k].first];
        }
      }
    }
    float* tg = &tables[g * table_stride];
    for (int p = 0; !fast_keys && p < kl.n_pairs(); ++p) {
      internal::PairTable(kl, p, keys.codec(), rotated, &tg[p * internal::kPairTableSize]);
    }
    for (size_t k = 0; fast_keys && k < kgroups.size(); ++k) {
      internal::GroupTable(kgroups[k], keys.codec(), rotated, &tg[k * 16]);
    }
    for (size_t i = 0; i < table_stride; ++i) tg[i] *= scale;
  }
  // Centered keys (code_blocks.h) score ⟨q, k − μ_K⟩: add ⟨q, μ_K⟩ back so the
  // coded logits agree with the exact tail's (alone it would cancel in softmax).
  std::vector<float> key_shift(nq, 0.0f);
  if (!keys.center().empty()) {
    for (size_t g = 0; g < nq; ++g) {
      double dot = 0;
      for (int j = 0; j < d; ++j) dot += double{queries[g * d + j]} * keys.center()[j];
      key_shift[g] = static_cast<float>(scale * dot);
    }
  }

  // Values: accumulators in the rotated domain (kernel order on the packed
  // path), rescaled whenever a query's running max rises.
  const Format& vf = values.codec().format();
  const bool packed = AttendReadsValueCodes(vf);
  const size_t acc_stride = packed ? internal::KernelOrderFloats(d, vf.bits) : d;
  std::vector<float> acc(nq * acc_stride, 0.0f);
  float value_table[16];
  const float* centroids = values.codec().Centroids(false);
  for (int n = 0; n < 16; ++n) value_table[n] = centroids[n & ((1 << vf.bits) - 1)];
  const size_t index_offset = static_cast<size_t>(vf.NumScales()) * vf.ScaleBytes();
  const int index_bytes = (d * vf.bits + 7) / 8;
  const size_t code_bytes = values.codec().code_bytes();

  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  std::vector<float> max(nq, kNegInf);
  std::vector<double> mass(nq, 0.0);  // Σ e^(logit − max) over coded tokens so far
  std::vector<float> logits(nq * kTileTokens), weights(nq * kTileTokens);
  std::vector<float> value_scale(kTileTokens), rows(packed ? 0 : kBlockVectors * d);
  const size_t end_block = (end + kBlockVectors - 1) / kBlockVectors;
  const size_t key_block_bytes = static_cast<size_t>(kl.n_pairs()) * kPairCodeBytes;
  // The open blocks' nibbles, if they are read.
  std::vector<uint8_t> open_key_block, open_value_block;
  for (size_t tb = begin / kBlockVectors; begin < end && tb < end_block; tb += kTileBlocks) {
    const size_t te = std::min(tb + kTileBlocks, end_block);
    const size_t first = tb * kBlockVectors;
    std::fill(logits.begin(), logits.end(), 0.0f);
    for (size_t b = tb; b < te; ++b) {
      const uint8_t* nib = keys.BlockNibbles(b, &open_key_block);
      const float* w = keys.BlockWeights(b);
      if (b + kPrefetchBlocks < std::min(end_block, keys.full_blocks())) {
        internal::Prefetch(keys.FullBlockNibbles(b + kPrefetchBlocks), key_block_bytes);
      }
      for (size_t r = 0; r < kl.runs().size(); ++r) {
        const ScanLayout::Run& run = kl.runs()[r];
        if (fast_keys && run.dot) {
          kernels->block_logits_dot(nib + run.first_pair * kPairCodeBytes, &dot_centroids[16 * r],
                                    &dot_values[2 * static_cast<size_t>(run.first_pair)],
                                    value_stride, static_cast<int>(nq), run.n_pairs,
                                    w + run.weight * kBlockVectors,
                                    &logits[(b - tb) * kBlockVectors], kTileTokens);
          continue;
        }
        if (!fast_keys) {
          WideBlockLogits(*scan_kernels, nib + run.first_pair * kPairCodeBytes,
                          &tables[run.first_pair * internal::kPairTableSize], table_stride, nq,
                          run.n_pairs, w + run.weight * kBlockVectors,
                          &logits[(b - tb) * kBlockVectors], kTileTokens);
          continue;
        }
        kernels->block_logits(nib + run.first_pair * kPairCodeBytes,
                              &tables[2 * static_cast<size_t>(run.first_pair) * 16], table_stride,
                              static_cast<int>(nq), run.n_pairs, w + run.weight * kBlockVectors,
                              &logits[(b - tb) * kBlockVectors], kTileTokens);
      }
      if (packed) {
        std::copy_n(values.BlockWeights(b), kBlockVectors, &value_scale[(b - tb) * kBlockVectors]);
      }
    }
    // Tokens [lo, hi) of the tile take part.
    const size_t lo = std::max(begin, first) - first, hi = std::min(end, te * kBlockVectors) - first;
    for (size_t g = 0; g < nq; ++g) {
      float* lg = &logits[g * kTileTokens];
      for (size_t i = lo; i < hi; ++i) lg[i] += key_shift[g];
      const float tile_max = kernels->max(lg + lo, static_cast<int>(hi - lo));
      if (tile_max > max[g]) {
        const float factor = std::exp(max[g] - tile_max);  // 0 on the first tile
        for (size_t j = 0; j < acc_stride; ++j) acc[g * acc_stride + j] *= factor;
        mass[g] *= factor;
        max[g] = tile_max;
      }
      mass[g] += kernels->exp_weights(lg + lo, static_cast<int>(hi - lo), max[g],
                                      packed ? &value_scale[lo] : nullptr,
                                      &weights[g * kTileTokens + lo]);
    }
    for (size_t b = tb; b < te; ++b) {
      const size_t t0 = std::max(begin, b * kBlockVectors);
      const size_t t1 = std::min(end, (b + 1) * kBlockVectors);
      const float* w = &weights[t0 - first];
      if (packed && b + kPrefetchBlocks < end_block) {
        internal::Prefetch(values.Code((b + kPrefetchBlocks) * kBlockVectors),
                           kBlockVectors * code_bytes);
      }
      if (packed) {
        kernels->values_packed(values.Code(t0) + index_offset, code_bytes, static_cast<int>(t1 - t0),
                               w, kTileTokens, static_cast<int>(nq), value_table, vf.bits,
                               index_bytes, acc.data(), acc_stride);
      } else {
        DecodeRows(values, b, t0 % kBlockVectors, t1 - t0, rows.data(), &open_value_block);
        kernels->values_rows(rows.data(), static_cast<int>(t1 - t0), d, w, kTileTokens,
                             static_cast<int>(nq), acc.data(), acc_stride);
      }
    }
  }

  // The exact tail joins the same softmax.
  std::vector<float> tail_acc(nq * d, 0.0f), tail_logits(tail.n);
  std::vector<double> tail_mass(nq, 0.0);
  for (size_t g = 0; g < nq && tail.n > 0; ++g) {
    for (size_t t = 0; t < tail.n; ++t) {
      float dot = 0.0f;
      for (int j = 0; j < d; ++j) dot += queries[g * d + j] * tail.keys[t * d + j];
      tail_logits[t] = scale * dot;
    }
    const float tail_max = *std::max_element(tail_logits.begin(), tail_logits.end());
    if (tail_max > max[g]) {
      const float factor = std::exp(max[g] - tail_max);
      for (size_t j = 0; j < acc_stride; ++j) acc[g * acc_stride + j] *= factor;
      mass[g] *= factor;
      max[g] = tail_max;
    }
    for (size_t t = 0; t < tail.n; ++t) {
      const float p = std::exp(tail_logits[t] - max[g]);
      tail_mass[g] += p;
      for (int j = 0; j < d; ++j) tail_acc[g * d + j] += p * tail.values[t * d + j];
    }
  }

  std::vector<float> natural(d);
  for (size_t g = 0; g < nq; ++g) {
    const float* a = &acc[g * acc_stride];
    if (packed) {
      for (int j = 0; j < d; ++j) natural[j] = a[internal::KernelPosition(j, vf.bits)];
      a = natural.data();
    }
    float* o = &out[g * d];
    values.codec().InverseRotate(a, o);
    const float inv = static_cast<float>(1.0 / (mass[g] + tail_mass[g]));
    // Centered values: Σ_coded p_t·μ_V.
    const float coded = static_cast<float>(mass[g]);
    for (int j = 0; j < d; ++j) {
      const float mu = values.center().empty() ? 0.0f : coded * values.center()[j];
      o[j] = (o[j] + tail_acc[g * d + j] + mu) * inv;
    }
  }
  return absl::OkStatus();
}

}  // namespace tqdb::index
