// Attention agreement: how closely attention over quantized keys and values
// follows exact attention, on a model's real queries, keys and values
// (kv_trace.h).
//
// For sampled query positions p of each captured window, every layer and
// every query head, the exact reference attends over tokens 0 … p in float32;
// the quantized side attends as the KV cache does (store_kv_cache.h): tokens
// [0, p − exact_window) from their codes, the `exact_window` tokens before p
// and the current token p exactly. Per sample:
//   pearson  Pearson correlation of the p + 1 logits, quantized vs exact;
//   top1     1 if both argmaxes are the same token;
//   top5     1 if the exact argmax is among the 5 largest quantized logits;
//   cosine   cosine of the attention outputs (head_dim floats).
// The quantized logits are scale·⟨q, k̂_t⟩ with k̂ the decoded key
// (Codec::Decode, which for QJL formats includes the unbiased QJL term), and
// the quantized output is index::Attend over CodeBlocks of the keys and
// values with the exact tokens as its ExactTail: the kernel the store runs,
// which equals float attention over the decoded keys and values up to float
// rounding (attend.h). Codecs are built as the store builds them
// (ParseFormat(name, head_dim, seed)), without centering.
//
// Thread-safety: pure functions.
#ifndef TQDB_LLM_AGREEMENT_H_
#define TQDB_LLM_AGREEMENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "llm/kv_trace.h"

namespace tqdb::llm {

struct AgreementOptions {
  // Query positions per window, uniform over [min_position, tokens). Default: 32.
  int positions_per_window = 32;
  // Smallest position sampled: very short contexts agree trivially. Default: 16.
  int min_position = 16;
  // Tokens before the current one attended exactly (the store's
  // exact_window). Default: 0.
  int exact_window = 0;
  // Seed of the position sampling. Default: 1.
  uint64_t seed = 1;
  // Seed of the codecs (KvCollectionConfig::seed). Default: 0.
  uint64_t format_seed = 0;
};

struct AgreementStats {
  double pearson = 0, top1 = 0, top5 = 0, cosine = 0;  // means over samples
  int64_t samples = 0;
};

struct AgreementResult {
  std::string key_format, value_format;  // "fp32" for exact
  // Bytes of one head_dim vector's code (4·head_dim for fp32).
  size_t key_bytes = 0, value_bytes = 0;
  AgreementStats all;
  std::vector<AgreementStats> per_layer;
};

// Agreement of (key_format, value_format) with exact attention over `trace`.
// A format is a name of index/codec/format.h ParseFormat or "fp32" (exact);
// both fp32 or both coded. InvalidArgument for an unknown format, a QJL value
// format, or a trace with no position ≥ min_position.
absl::StatusOr<AgreementResult> MeasureAgreement(const KvTrace& trace,
                                                 const std::string& key_format,
                                                 const std::string& value_format,
                                                 const AgreementOptions& options);

// Bytes of one `dim`-coordinate vector in `format` ("fp32": 4·dim).
// InvalidArgument for an unknown format.
absl::StatusOr<size_t> VectorBytes(const std::string& format, int dim);

}  // namespace tqdb::llm

#endif  // TQDB_LLM_AGREEMENT_H_
