#include "index/scan/searcher.h"

#include <algorithm>
#include <cmath>
#include <limits>
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

// Queries scored together: each block's codes are read and decoded once for
// the batch (scorer.h; scores do not depend on the batch).
constexpr size_t kBatchQueries = 8;

// One query of a batch: the query as given (for reranking), its squared norm
// (L2), the shift ⟨q, μ⟩ added back to centered inner products, and its heap
// of the best `keep` by code score (the top is the worst kept).
struct QueryState {
  std::vector<float> query;
  double qq = 0.0;
  double shift = 0.0;
  std::vector<Hit> heap;
};

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
  auto worse = [](const Hit& a, const Hit& b) { return Before(a, b); };

  for (size_t q0 = 0; q0 < nq; q0 += kBatchQueries) {
    const size_t batch = std::min(kBatchQueries, nq - q0);
    std::vector<QueryState> state(batch);
    std::vector<PreparedQuery> prepared(batch);
    for (size_t b = 0; b < batch; ++b) {
      QueryState& st = state[b];
      st.query.assign(queries.begin() + (q0 + b) * d, queries.begin() + (q0 + b + 1) * d);
      for (float v : st.query) st.qq += double{v} * v;
      if (options.metric == Metric::kCosine && st.qq > 0) {
        const float inv = static_cast<float>(1.0 / std::sqrt(st.qq));
        for (float& v : st.query) v *= inv;
      }
      // Codes hold x − μ (code_blocks.h). IP and cosine score ⟨q, x − μ⟩ and
      // add ⟨q, μ⟩ back; L2 scores q − μ against x − μ, which is the same
      // distance. Reranking uses the raw vectors and the query as given.
      const std::vector<float>& mu = blocks.center();
      std::vector<float> scored = st.query;
      if (!mu.empty()) {
        for (int j = 0; j < d; ++j) {
          if (l2) {
            scored[j] -= mu[j];
          } else {
            st.shift += double{st.query[j]} * mu[j];
          }
        }
        if (l2) {
          st.qq = 0;
          for (float v : scored) st.qq += double{v} * v;
        }
      }
      PrepareQuery(blocks.codec(), blocks.layout(), scored.data(), &prepared[b]);
    }

    // Scores come a chunk of blocks at a time (ScoreBlocks sets up its scratch
    // once per call) and feed the heaps straight away.
    constexpr size_t kChunkBlocks = 256;
    constexpr size_t kChunk = kChunkBlocks * internal::kBlockVectors;
    std::vector<float> chunk_scores(batch * kChunk);
    for (size_t b0 = 0; b0 < blocks.num_blocks(); b0 += kChunkBlocks) {
      const size_t b1 = std::min(blocks.num_blocks(), b0 + kChunkBlocks);
      ScoreBlocks(blocks, prepared.data(), static_cast<int>(batch), b0, b1, chunk_scores.data(),
                  kChunk);
      const size_t first = b0 * internal::kBlockVectors;
      const size_t count = std::min(blocks.size(), b1 * internal::kBlockVectors) - first;
      for (size_t b = 0; b < batch; ++b) {
        std::vector<Hit>& heap = state[b].heap;
        const float* scores = &chunk_scores[b * kChunk];
        const auto shift = static_cast<float>(state[b].shift);
        float floor = heap.size() < keep ? -std::numeric_limits<float>::infinity()
                                         : heap.front().score;
        for (size_t i0 = 0; i0 < count; i0 += internal::kBlockVectors) {
          const size_t i1 = std::min(count, i0 + internal::kBlockVectors);
          const float* norms =
              l2 ? blocks.BlockSquaredNorms(b0 + i0 / internal::kBlockVectors) : nullptr;
          // L2: maximise 2⟨q, x⟩ − ‖x‖² (‖q‖² is added back below).
          auto score = [&](size_t i) {
            return l2 ? 2 * scores[i] - norms[i - i0] : scores[i] + shift;
          };
          // Scores below the worst kept cannot enter a full heap. A block's
          // scores not below it are counted first, in loops that vectorize:
          // most blocks have none and are done. (Not below: a NaN score, of
          // an overflowing query, is kept as the per-score test keeps it.)
          int reaching = 0;
          for (size_t i = i0; i < i1; ++i) reaching += !(score(i) < floor);
          if (reaching == 0) continue;
          for (size_t i = i0; i < i1; ++i) {
            const float s = score(i);
            if (s < floor) continue;
            if (options.skip != nullptr && options.skip[first + i]) continue;
            const int64_t slot = static_cast<int64_t>(first + i);
            const int64_t label = options.ids != nullptr ? options.ids[slot] : slot;
            const Hit hit{s, label, slot};
            if (heap.size() < keep) {
              heap.push_back(hit);
              std::push_heap(heap.begin(), heap.end(), worse);
            } else if (Before(hit, heap.front())) {
              std::pop_heap(heap.begin(), heap.end(), worse);
              heap.back() = hit;
              std::push_heap(heap.begin(), heap.end(), worse);
            } else {
              continue;
            }
            if (heap.size() == keep) floor = heap.front().score;
          }
        }
      }
    }

    for (size_t b = 0; b < batch; ++b) {
      const QueryState& st = state[b];
      std::vector<Hit> hits = std::move(state[b].heap);
      if (options.oversample > 0 && !hits.empty()) {
        std::vector<int64_t> ids(hits.size());
        for (size_t i = 0; i < hits.size(); ++i) ids[i] = hits[i].slot;
        std::vector<float> exact(hits.size());
        internal::ExactDistances(l2 ? Metric::kL2 : Metric::kInnerProduct, st.query.data(), raw,
                                 d, ids.data(), ids.size(), exact.data());
        for (size_t i = 0; i < hits.size(); ++i) hits[i].score = l2 ? -exact[i] : exact[i];
      }
      std::sort(hits.begin(), hits.end(), Before);

      const size_t q = q0 + b;
      const float pad =
          l2 ? std::numeric_limits<float>::max() : std::numeric_limits<float>::lowest();
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
            dist = static_cast<float>(st.qq) - hits[i].score;
          }
        } else {
          label = -1;
          dist = pad;
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace tqdb::index
