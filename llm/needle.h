// Needle retrieval: can a format still rank first the one key a query is
// looking for, among many keys drawn from the model's real key distribution?
//
// A trial picks, at random: a layer, a query head (and so its KV head), a
// captured window and a position, and takes that real query q (kv_trace.h).
// The haystack of that (layer, KV head) is N keys sampled with replacement
// from every captured key of the head, each plus Gaussian noise of standard
// deviation noise · (RMS key coordinate of the head), so a haystack larger
// than the text's tokens is not made of exact duplicates. The needle is
// aligned with the query — q/‖q‖ scaled so that its exact logit ⟨q, needle⟩
// exceeds the best haystack logit by margin · (standard deviation of the
// haystack logits) — so exact keys always rank it first, and a format ranks
// it first only if its logit errors stay under that margin against the N
// strongest competitors of a real distribution.
//
// Every format sees the same trials (haystacks, queries and needles). Logits
// are ⟨q, k̂⟩ over decoded keys (Codec::Decode, the QJL term included), which
// is what index::Attend and the store's Attend compute up to float rounding.
// Codecs are built as the store builds them (ParseFormat(name, head_dim,
// seed)), without centering.
//
// Thread-safety: pure functions.
#ifndef TQDB_LLM_NEEDLE_H_
#define TQDB_LLM_NEEDLE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "llm/kv_trace.h"

namespace tqdb::llm {

struct NeedleOptions {
  // Haystack sizes N. Default: 4096, 32768, 262144.
  std::vector<size_t> haystack_sizes = {4096, 32768, 262144};
  // Trials per haystack size. Default: 100.
  int trials = 100;
  // Noise on sampled keys, in RMS key coordinates of the head. Default: 0.01.
  float noise = 0.01f;
  // The needle's lead over the best haystack logit, in standard deviations
  // of the haystack logits; > 0. Default: 0.5.
  float margin = 0.5f;
  // Seed of trials, haystacks and noise. Default: 1.
  uint64_t seed = 1;
  // Seed of the codecs (KvCollectionConfig::seed). Default: 0.
  uint64_t format_seed = 0;
};

struct NeedleResult {
  std::string format;  // "fp32" for exact keys
  size_t code_bytes = 0;  // one head_dim key
  size_t haystack = 0;    // N
  int trials = 0;
  int first = 0;  // trials with the needle ranked first
  int top10 = 0;  // trials with the needle among the 10 best
  double mean_rank = 0;  // 1 = first
};

// One result per (format, haystack size), formats in the order given, sizes
// ascending within each. Formats are ParseFormat names or "fp32".
// InvalidArgument for an unknown format, options out of range (trials < 1,
// margin ≤ 0, noise < 0, a size of 0) or an empty trace.
absl::StatusOr<std::vector<NeedleResult>> MeasureNeedle(const KvTrace& trace,
                                                        const std::vector<std::string>& formats,
                                                        const NeedleOptions& options);

}  // namespace tqdb::llm

#endif  // TQDB_LLM_NEEDLE_H_
