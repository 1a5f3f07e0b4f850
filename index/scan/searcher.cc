#include "index/scan/searcher.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <vector>

#include "absl/strings/str_cat.h"
#include "index/scan/internal/fastscan_kernels.h"
#include "index/scan/internal/validate.h"
#include "index/scan/scorer.h"

namespace tqdb::index {
namespace {

struct Hit {
  float score;  // larger is better (L2 distances are negated)
  int64_t label;  // reported, and the tie-breaker
  int64_t slot;   // position in the CodeBlocks
};
// Strict "a ranks before b": higher score, then lower label. NaN (codes whose
// stored scales are garbage) ranks below everything, keeping a strict weak
// order for the heap and the sort.
bool Before(const Hit& a, const Hit& b) {
  const float sa = std::isnan(a.score) ? -std::numeric_limits<float>::infinity() : a.score;
  const float sb = std::isnan(b.score) ? -std::numeric_limits<float>::infinity() : b.score;
  return sa != sb ? sa > sb : a.label < b.label;
}

absl::Status Validate(const CodeBlocks& blocks, absl::Span<const float> queries,
                      const SearchOptions& o, const float* raw) {
  const size_t d = static_cast<size_t>(blocks.codec().dim());
  if (absl::Status s = internal::ValidateQueries(queries, d); !s.ok()) return s;
  if (o.k < 1 || o.k > kMaxK) {
    return absl::InvalidArgumentError(absl::StrCat("k must be in [1, ", kMaxK, "], got ", o.k));
  }
  if (o.oversample < 0 || static_cast<int64_t>(o.k) * o.oversample > kMaxK) {
    return absl::InvalidArgumentError(absl::StrCat(
        "oversample must be >= 0 with k·oversample <= ", kMaxK, ", got ", o.oversample));
  }
  if (o.oversample > 0 && raw == nullptr) {
    return absl::InvalidArgumentError("reranking (oversample > 0) needs the raw vectors");
  }
  if (o.metric != Metric::kInnerProduct && o.metric != Metric::kCosine &&
      o.metric != Metric::kL2) {
    return absl::InvalidArgumentError("unknown metric");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Search(const CodeBlocks& blocks, absl::Span<const float> queries,
                    const SearchOptions& options, const float* raw, int64_t* labels,
                    float* distances) {
  if (absl::Status s = Validate(blocks, queries, options, raw); !s.ok()) return s;
  const int d = blocks.codec().dim();
  const size_t nq = queries.size() / d;
  const size_t k = options.k;
  const size_t keep = options.oversample > 0 ? k * options.oversample : k;
  const bool l2 = options.metric == Metric::kL2;

  for (size_t q = 0; q < nq; ++q) {
    std::vector<float> query(queries.begin() + q * d, queries.begin() + (q + 1) * d);
    double qq = 0;
    for (float v : query) qq += double{v} * v;
    if (options.metric == Metric::kCosine && qq > 0) {
      const float inv = static_cast<float>(1.0 / std::sqrt(qq));
      for (float& v : query) v *= inv;
    }
    // Codes hold x − μ (code_blocks.h). IP and cosine score ⟨q, x − μ⟩ and
    // add ⟨q, μ⟩ back; L2 scores q − μ against x − μ, which is the same
    // distance. Reranking uses the raw vectors and the query as given.
    const std::vector<float>& mu = blocks.center();
    std::vector<float> scored = query;
    double shift = 0.0;
    if (!mu.empty()) {
      for (int j = 0; j < d; ++j) {
        if (l2) {
          scored[j] -= mu[j];
        } else {
          shift += double{query[j]} * mu[j];
        }
      }
      if (l2) {
        qq = 0;
        for (float v : scored) qq += double{v} * v;
      }
    }
    PreparedQuery prepared;
    PrepareQuery(blocks.codec(), blocks.layout(), scored.data(), &prepared);

    // The best `keep` by code score; the heap's top is the worst kept.
    auto worse = [](const Hit& a, const Hit& b) { return Before(a, b); };
    std::priority_queue<Hit, std::vector<Hit>, decltype(worse)> heap(worse);
    // Scores come a chunk of blocks at a time (ScoreBlocks sets up its scratch
    // once per call) and feed the heap straight away.
    constexpr size_t kChunkBlocks = 256;
    std::vector<float> chunk_scores(kChunkBlocks * internal::kBlockVectors);
    for (size_t b0 = 0; b0 < blocks.num_blocks(); b0 += kChunkBlocks) {
      const size_t b1 = std::min(blocks.num_blocks(), b0 + kChunkBlocks);
      ScoreBlocks(blocks, &prepared, 1, b0, b1, chunk_scores.data(), chunk_scores.size());
      const size_t first = b0 * internal::kBlockVectors;
      const size_t count = std::min(blocks.size(), b1 * internal::kBlockVectors) - first;
      for (size_t i = 0; i < count; ++i) {
        if (options.skip != nullptr && options.skip[first + i]) continue;
        const int64_t slot = static_cast<int64_t>(first + i);
        const int64_t label = options.ids != nullptr ? options.ids[slot] : slot;
        // L2: maximise 2⟨q, x⟩ − ‖x‖² (‖q‖² is added back below).
        const float s = l2 ? 2 * chunk_scores[i] - blocks.SquaredNorm(first + i)
                           : chunk_scores[i] + static_cast<float>(shift);
        const Hit hit{s, label, slot};
        if (heap.size() < keep) {
          heap.push(hit);
        } else if (Before(hit, heap.top())) {
          heap.pop();
          heap.push(hit);
        }
      }
    }
    std::vector<Hit> hits;
    hits.reserve(heap.size());
    for (; !heap.empty(); heap.pop()) hits.push_back(heap.top());

    if (options.oversample > 0 && !hits.empty()) {
      std::vector<int64_t> ids(hits.size());
      for (size_t i = 0; i < hits.size(); ++i) ids[i] = hits[i].slot;
      std::vector<float> exact(hits.size());
      internal::ExactDistances(l2 ? Metric::kL2 : Metric::kInnerProduct, query.data(), raw, d,
                               ids.data(), ids.size(), exact.data());
      for (size_t i = 0; i < hits.size(); ++i) hits[i].score = l2 ? -exact[i] : exact[i];
    }
    std::sort(hits.begin(), hits.end(), Before);

    const float pad = l2 ? std::numeric_limits<float>::max() : std::numeric_limits<float>::lowest();
    for (size_t i = 0; i < k; ++i) {
      int64_t& label = labels[q * k + i];
      float& dist = distances[q * k + i];
      if (i < hits.size()) {
        label = hits[i].label;
        if (!l2) {
          dist = hits[i].score;
        } else if (options.oversample > 0) {
          dist = -hits[i].score;  // exact squared distance
        } else {
          dist = static_cast<float>(qq) - hits[i].score;
        }
      } else {
        label = -1;
        dist = pad;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace tqdb::index
