// Attention straight from compressed keys and values.
//
//   out_g = Σ_t softmax_t(scale · ⟨q_g, k̂_t⟩) · v̂_t        for each query g
//
// over the tokens [begin, end) of two CodeBlocks (keys and values, same
// token order) followed by an optional exact tail (recent tokens kept in
// float, merged into the same softmax). k̂, v̂ are what the codecs decode to,
// but nothing is decoded:
//  - logits are exact float sums over the key nibbles (scan_layout.h), no
//    quantization: runs of one coordinate per nibble (tq3, tq4, turbo's MSE
//    part) decode each nibble to its centroid once, 16 tokens a SIMD permute,
//    and each query adds (scale·Π·q)_k·centroid with one FMA; other runs (2 or
//    4 coordinates or QJL signs per nibble) sum per-group float tables (scale
//    folded in) looked up the same way; keys with wide (5–8-bit) coordinates
//    use 256-entry float tables per nibble pair (gathers: an order of
//    magnitude slower);
//  - softmax is online over tiles of 256 tokens: a tile's logits, then its
//    max; when the running max rises, the accumulators are rescaled by
//    e^(old max − new max); weights come from a polynomial exp (relative error
//    ≤ 4e-7, internal/attend_kernels.h);
//  - values are accumulated as Σ_t p_t·v̂_t in the value codec's rotated
//    domain, where v̂_t is scale × centroid: for single-scale MSE formats of
//    1, 2 or 4 bits straight from each token's packed index bytes (permute
//    lookups and FMAs over 16 coordinates), otherwise (any MSE format) from
//    the block's nibbles decoded to rows; Πᵀ is applied once per query at the
//    end.
// Several queries (a GQA group sharing one KV head) share one pass over the
// codes. Centered CodeBlocks (code_blocks.h) are handled exactly: ⟨q, μ_K⟩ is
// added to the coded logits and (Σ_coded p_t)·μ_V to the output.
//
// Accuracy: the result equals float attention over the decoded keys and
// values up to float rounding (logit sums of ≤ 2·pairs terms, the exp above,
// and float accumulation over the tokens); tests hold it within 1e-4 relative.
//
// Thread-safety: const over its inputs; may run concurrently.
#ifndef TQDB_INDEX_SCAN_ATTEND_H_
#define TQDB_INDEX_SCAN_ATTEND_H_

#include <cstddef>
#include <limits>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "index/codec/isa.h"
#include "index/scan/code_blocks.h"

namespace tqdb::index {

struct AttendOptions {
  // Logit scale. Default: 0, meaning 1/√dim.
  float scale = 0.0f;
  // Coded tokens [begin, min(end, size)) take part. Default: all.
  size_t begin = 0;
  size_t end = std::numeric_limits<size_t>::max();
  // Kernels to use (isa.h); an ISA this CPU lacks falls back to scalar.
  // Every ISA agrees within float rounding. Default: kBest.
  Isa isa = Isa::kBest;
};

// Recent tokens kept exactly: n keys and n values of dim floats each,
// row-major, logically after the coded tokens.
struct ExactTail {
  const float* keys = nullptr;
  const float* values = nullptr;
  size_t n = 0;
};

// Whether Attend reads values of this format from their codes (its packed
// path: single-scale MSE formats of 1, 2 or 4 bits) rather than from their
// nibbles: such values may be kept as CodeBlocks::Keep::kCodes, the others as
// kNibbles (keys may be kept either way).
bool AttendReadsValueCodes(const Format& value_format);

// out: G × dim floats for G = queries.size() / dim queries.
// InvalidArgument, writing nothing, if: keys and values differ in size or
// dimension; the value format is not an MSE format (QJL values are not
// supported); values do not keep what Attend reads of them (codes or
// nibbles, AttendReadsValueCodes); queries are empty, not a multiple of dim,
// or not finite;
// a tail key or value is not finite;
// begin > end; or no token at all takes part.
absl::Status Attend(const CodeBlocks& keys, const CodeBlocks& values,
                    absl::Span<const float> queries, const AttendOptions& options,
                    const ExactTail& tail, float* out);

}  // namespace tqdb::index

#endif  // TQDB_INDEX_SCAN_ATTEND_H_
