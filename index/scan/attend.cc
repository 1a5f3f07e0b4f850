#include "index/scan/attend.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
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

}  // namespace

absl::Status Attend(const CodeBlocks& keys, const CodeBlocks& values,
                    absl::Span<const float> queries, const AttendOptions& options,
                    const ExactTail& tail, float* out) {
  if (absl::Status s = Validate(keys, values, queries, options, tail); !s.ok()) return s;
  const int d = keys.codec().dim();
  const size_t n_queries = queries.size() / d;
  const size_t begin = std::min(options.begin, keys.size());
  const size_t end = std::min(options.end, keys.size());
  const size_t n_coded = end - begin;
  const float scale = options.scale != 0.0f ? options.scale : 1.0f / std::sqrt(float(d));
  const ScanLayout& kl = keys.layout();
  const ScanLayout& vl = values.layout();
  const auto& kgroups = kl.groups();
  const auto& vgroups = vl.groups();

  // Per query: key tables; logits of coded tokens then tail tokens.
  std::vector<float> tables(n_queries * kgroups.size() * 16);
  std::vector<Codec::Query> rotated(n_queries);
  for (size_t g = 0; g < n_queries; ++g) {
    keys.codec().PrepareQuery(&queries[g * d], &rotated[g]);
    for (size_t k = 0; k < kgroups.size(); ++k) {
      internal::GroupTable(kgroups[k], keys.codec(), rotated[g],
                           &tables[(g * kgroups.size() + k) * 16]);
    }
  }
  // Centered keys (code_blocks.h) score ⟨q, k − μ_K⟩: add ⟨q, μ_K⟩ back so the
  // coded logits agree with the exact tail's (alone it would cancel in softmax).
  std::vector<float> key_shift(n_queries, 0.0f);
  if (!keys.center().empty()) {
    for (size_t g = 0; g < n_queries; ++g) {
      double dot = 0;
      for (int j = 0; j < d; ++j) dot += double{queries[g * d + j]} * keys.center()[j];
      key_shift[g] = static_cast<float>(dot);
    }
  }
  const size_t n_tokens = n_coded + tail.n;
  std::vector<float> logits(n_queries * n_tokens);
  for (size_t t = begin; t < end; ++t) {
    const size_t block = t / kBlockVectors, lane = t % kBlockVectors;
    const uint8_t* nib = keys.BlockNibbles(block);
    const float* w = keys.BlockWeights(block);
    for (size_t g = 0; g < n_queries; ++g) {
      const float* tg = &tables[g * kgroups.size() * 16];
      float logit = 0.0f;
      for (const ScanLayout::Run& run : kl.runs()) {
        float sum = 0.0f;
        for (int k = 2 * run.first_pair; k < 2 * (run.first_pair + run.n_pairs); ++k) {
          sum += tg[k * 16 + Nibble(nib, k, lane)];
        }
        logit += w[run.weight * kBlockVectors + lane] * sum;
      }
      logits[g * n_tokens + (t - begin)] = scale * (logit + key_shift[g]);
    }
  }
  for (size_t t = 0; t < tail.n; ++t) {
    for (size_t g = 0; g < n_queries; ++g) {
      float dot = 0.0f;
      for (int j = 0; j < d; ++j) dot += queries[g * d + j] * tail.keys[t * d + j];
      logits[g * n_tokens + n_coded + t] = scale * dot;
    }
  }
  // Softmax weights, in place.
  for (size_t g = 0; g < n_queries; ++g) {
    float* lg = &logits[g * n_tokens];
    const float max = *std::max_element(lg, lg + n_tokens);
    double sum = 0.0;
    for (size_t t = 0; t < n_tokens; ++t) {
      lg[t] = std::exp(lg[t] - max);
      sum += lg[t];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (size_t t = 0; t < n_tokens; ++t) lg[t] *= inv;
  }
  // Values: Σ p_t·v̂_t in the value codec's rotated domain (per coordinate:
  // scale of its block × centroid of its index), then Πᵀ once.
  std::vector<float> acc(n_queries * d, 0.0f);
  for (size_t t = begin; t < end; ++t) {
    const size_t block = t / kBlockVectors, lane = t % kBlockVectors;
    const uint8_t* nib = values.BlockNibbles(block);
    const float* w = values.BlockWeights(block);
    for (const ScanLayout::Run& run : vl.runs()) {
      const float s = w[run.weight * kBlockVectors + lane];
      for (int k = 2 * run.first_pair; k < 2 * (run.first_pair + run.n_pairs); ++k) {
        const ScanLayout::Group& group = vgroups[k];
        if (group.kind != ScanLayout::GroupKind::kCentroids) continue;
        const float* c = values.codec().Centroids(group.outlier);
        const int gmask = (1 << group.bits) - 1;
        const uint8_t n = Nibble(nib, k, lane);
        for (int i = 0; i < group.count; ++i) {
          const float v = s * c[(n >> (group.bits * i)) & gmask];
          for (size_t g = 0; g < n_queries; ++g) {
            acc[g * d + group.first + i] += logits[g * n_tokens + (t - begin)] * v;
          }
        }
      }
    }
  }
  std::vector<float> tail_acc(n_queries * d, 0.0f);
  for (size_t t = 0; t < tail.n; ++t) {
    for (size_t g = 0; g < n_queries; ++g) {
      const float p = logits[g * n_tokens + n_coded + t];
      for (int j = 0; j < d; ++j) tail_acc[g * d + j] += p * tail.values[t * d + j];
    }
  }
  for (size_t g = 0; g < n_queries; ++g) {
    values.codec().InverseRotate(&acc[g * d], &out[g * d]);
    for (int j = 0; j < d; ++j) out[g * d + j] += tail_acc[g * d + j];
    if (!values.center().empty()) {  // centered values: Σ_coded p_t·μ_V
      double coded_mass = 0;
      for (size_t t = 0; t < n_coded; ++t) coded_mass += logits[g * n_tokens + t];
      for (int j = 0; j < d; ++j) {
        out[g * d + j] += static_cast<float>(coded_mass) * values.center()[j];
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace tqdb::index
