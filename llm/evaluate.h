// Evaluation loops over a Transformer and a KvCache: teacher-forced negative
// log-likelihood (perplexity) and greedy generation.
//
// Thread-safety: as the Transformer and cache they drive (one thread).
#ifndef TQDB_LLM_EVALUATE_H_
#define TQDB_LLM_EVALUATE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "llm/kv_cache.h"
#include "llm/transformer.h"

namespace tqdb::llm {

// The contents of a text file with "\r\n" line ends turned into "\n" (as
// Python's text mode reads it: the README's token count and reference NLL of
// the TinyStories excerpt, which has CRLF line ends, assume this).
// NotFound if it cannot be read.
absl::StatusOr<std::string> ReadTextFile(const std::string& path);

// −log softmax(logits)[target], computed in double. REQUIRES: 0 ≤ target <
// logits.size().
double TokenNll(absl::Span<const float> logits, int target);

// The index of the largest logit (the first on ties). REQUIRES: non-empty.
int Argmax(absl::Span<const float> logits);

struct NllResult {
  uint64_t tokens = 0;  // predicted tokens
  int windows = 0;
  double total_nll = 0;
  double seconds = 0;

  double mean_nll() const { return tokens ? total_nll / tokens : 0.0; }
  double ppl() const;
};

// Teacher-forced NLL of tokens[1 …] in non-overlapping windows of `window`
// inputs: window w empties the cache (Truncate(0)) and feeds tokens
// [w·window, min((w+1)·window, N − 1)), each predicting the next token, so
// N − 1 tokens are predicted in all. InvalidArgument if window is not in
// 1 … seq_len or fewer than 2 tokens; Forward and cache errors as they come.
absl::StatusOr<NllResult> TeacherForcedNll(Transformer* model, KvCache* cache,
                                           absl::Span<const int> tokens, int window);

struct GenerateOptions {
  // New tokens to produce at most. Default: 64.
  int steps = 64;
  // Stop before emitting BOS (llama2.c's end of a story). Default: true.
  bool stop_at_bos = true;
  // Called with each new token as it is chosen. Default: none.
  std::function<void(int token)> on_token;
  // When set, receives the logits each new token was chosen from. Default: null.
  std::vector<std::vector<float>>* logits = nullptr;
};

// Feeds `feed` (each token at position cache->Length()), then greedily picks
// up to `steps` tokens, feeding each one but the last; it also stops when the
// context is full. Returns the new tokens; the cache then holds everything
// up to, but not including, the last of them (so a later call with feed =
// {last} continues the same text). InvalidArgument if feed is empty.
absl::StatusOr<std::vector<int>> GenerateGreedy(Transformer* model, KvCache* cache,
                                                absl::Span<const int> feed,
                                                const GenerateOptions& options);

}  // namespace tqdb::llm

#endif  // TQDB_LLM_EVALUATE_H_
