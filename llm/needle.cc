#include "llm/needle.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "index/codec/codec.h"
#include "index/codec/format.h"
#include "llm/agreement.h"

namespace tqdb::llm {
namespace {

struct Trial {
  int window = 0, position = 0, head = 0;  // the query
  std::vector<float> needle;               // head_dim floats
};

float Dot(const float* a, const float* b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Every captured key of (layer, kv head), tokens × head_dim.
std::vector<float> KeyPool(const KvTrace& trace, int layer, int kv_head) {
  std::vector<float> pool;
  for (size_t w = 0; w < trace.windows.size(); ++w) {
    const float* k = trace.Keys(w, layer, kv_head);
    pool.insert(pool.end(), k, k + static_cast<size_t>(trace.windows[w].tokens) *
                                       trace.shape.head_dim);
  }
  return pool;
}

// Keys as a format stores them: decoded codes, or the keys for "fp32".
absl::Status Reconstruct(const index::Codec* codec, const std::vector<float>& keys,
                         std::vector<float>* out) {
  if (codec == nullptr) {
    *out = keys;
    return absl::OkStatus();
  }
  const size_t n = keys.size() / codec->dim();
  std::vector<uint8_t> codes(n * codec->code_bytes());
  TQDB_RETURN_IF_ERROR(codec->Encode(keys.data(), n, codes.data()));
  out->resize(keys.size());
  codec->Decode(codes.data(), n, out->data());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<NeedleResult>> MeasureNeedle(const KvTrace& trace,
                                                        const std::vector<std::string>& formats,
                                                        const NeedleOptions& options) {
  if (options.trials < 1 || !(options.margin > 0) || !(options.noise >= 0)) {
    return absl::InvalidArgumentError("needle: trials ≥ 1, margin > 0 and noise ≥ 0");
  }
  for (size_t n : options.haystack_sizes) {
    if (n == 0) return absl::InvalidArgumentError("needle: haystack sizes must be positive");
  }
  if (trace.TotalTokens() == 0) return absl::InvalidArgumentError("needle: empty trace");
  const KvShape& s = trace.shape;
  const int d = s.head_dim, group = s.num_heads / s.num_kv_heads;

  std::vector<std::shared_ptr<const index::Codec>> codecs;
  std::vector<size_t> bytes;
  for (const std::string& f : formats) {
    TQDB_ASSIGN_OR_RETURN(const size_t b, VectorBytes(f, d));
    bytes.push_back(b);
    if (f == "fp32") {
      codecs.push_back(nullptr);
      continue;
    }
    TQDB_ASSIGN_OR_RETURN(const index::Format format,
                          index::ParseFormat(f, d, options.format_seed));
    TQDB_ASSIGN_OR_RETURN(auto codec, index::Codec::Create(format));
    codecs.push_back(std::move(codec));
  }
  std::vector<size_t> sizes = options.haystack_sizes;
  std::sort(sizes.begin(), sizes.end());
  std::vector<NeedleResult> results(formats.size() * sizes.size());
  std::vector<double> rank_sums(results.size(), 0.0);
  for (size_t f = 0; f < formats.size(); ++f) {
    for (size_t i = 0; i < sizes.size(); ++i) {
      NeedleResult& r = results[f * sizes.size() + i];
      r.format = formats[f];
      r.code_bytes = bytes[f];
      r.haystack = sizes[i];
    }
  }

  std::mt19937_64 rng(options.seed);
  std::vector<int> windows;  // those with tokens, to draw queries from
  for (size_t w = 0; w < trace.windows.size(); ++w) {
    if (trace.windows[w].tokens > 0) windows.push_back(static_cast<int>(w));
  }
  std::vector<float> logits, stored, needle_code;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const size_t n = sizes[i];
    // Trials by (layer, kv head): one haystack serves every trial of a head.
    std::map<std::pair<int, int>, std::vector<Trial>> by_head;
    std::uniform_int_distribution<int> pick_layer(0, s.num_layers - 1);
    std::uniform_int_distribution<int> pick_head(0, s.num_heads - 1);
    std::uniform_int_distribution<size_t> pick_window(0, windows.size() - 1);
    for (int t = 0; t < options.trials; ++t) {
      Trial trial;
      const int layer = pick_layer(rng);
      trial.head = pick_head(rng);
      trial.window = windows[pick_window(rng)];
      trial.position =
          std::uniform_int_distribution<int>(0, trace.windows[trial.window].tokens - 1)(rng);
      by_head[{layer, trial.head / group}].push_back(std::move(trial));
    }
    for (auto& [key, trials] : by_head) {
      const auto [layer, kv_head] = key;
      const std::vector<float> pool = KeyPool(trace, layer, kv_head);
      const size_t pool_n = pool.size() / d;
      double sq = 0;
      for (float x : pool) sq += static_cast<double>(x) * x;
      const float sigma = options.noise * static_cast<float>(std::sqrt(sq / pool.size()));
      std::vector<float> haystack(n * d);
      std::uniform_int_distribution<size_t> pick_key(0, pool_n - 1);
      std::normal_distribution<float> noise(0.0f, 1.0f);
      for (size_t j = 0; j < n; ++j) {
        const float* k = &pool[pick_key(rng) * d];
        for (int c = 0; c < d; ++c) haystack[j * d + c] = k[c] + sigma * noise(rng);
      }
      // The needles, from exact logits.
      logits.resize(n);
      for (Trial& trial : trials) {
        const float* q = trace.Query(trial.window, layer, trial.position, trial.head);
        double sum = 0, sum2 = 0;
        float best = -INFINITY;
        for (size_t j = 0; j < n; ++j) {
          const float l = Dot(q, &haystack[j * d], d);
          best = std::max(best, l);
          sum += l;
          sum2 += static_cast<double>(l) * l;
        }
        const double mean = sum / n;
        double spread = std::sqrt(std::max(0.0, sum2 / n - mean * mean));
        const float q_norm = std::sqrt(Dot(q, q, d));
        if (spread <= 0) spread = 1e-3 * std::max(q_norm, 1e-6f);
        const float lead = options.margin * static_cast<float>(spread);
        // Its logit: the best one plus the lead (at least the lead, should
        // every key point away from q).
        const float target = std::max(best + lead, lead);
        trial.needle.resize(d);
        for (int c = 0; c < d; ++c) trial.needle[c] = q[c] / q_norm * (target / q_norm);
      }
      for (size_t f = 0; f < formats.size(); ++f) {
        const index::Codec* codec = codecs[f].get();
        TQDB_RETURN_IF_ERROR(Reconstruct(codec, haystack, &stored));
        NeedleResult& r = results[f * sizes.size() + i];
        for (const Trial& trial : trials) {
          const float* q = trace.Query(trial.window, layer, trial.position, trial.head);
          TQDB_RETURN_IF_ERROR(Reconstruct(codec, trial.needle, &needle_code));
          const float needle_logit = Dot(q, needle_code.data(), d);
          size_t above = 0;
          for (size_t j = 0; j < n; ++j) above += Dot(q, &stored[j * d], d) > needle_logit;
          ++r.trials;
          r.first += above == 0;
          r.top10 += above < 10;
          rank_sums[f * sizes.size() + i] += 1.0 + above;
        }
      }
    }
  }
  for (size_t j = 0; j < results.size(); ++j) {
    if (results[j].trials > 0) results[j].mean_rank = rank_sums[j] / results[j].trials;
  }
  return results;
}

}  // namespace tqdb::llm
