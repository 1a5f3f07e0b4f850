// KvSpec: how a KV cache stores keys and values, parsed from the command
// line's --kv grammar and turned into a store collection configuration.
//
//   fp32                   exact float32 (the store's exact window covering
//                          the whole context, kept as fp32)
//   K<b>V<b>               TurboQuant MSE codes tq<b> for keys and values,
//                          e.g. K4V4, K4V2, K3V2, K2V2
//   <key>/<value>          any two format names of index/codec/format.h
//                          ParseFormat, e.g. turbo3/turbo3, tq4p/tq4
//
// Thread-safety: plain values and pure functions.
#ifndef TQDB_LLM_KV_SPEC_H_
#define TQDB_LLM_KV_SPEC_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "llm/kv_cache.h"
#include "storage/options.h"

namespace tqdb::llm {

struct KvSpec {
  // Everything exact in float32. Default: false.
  bool exact = false;
  // Format names (ignored when exact). Defaults: "tq4".
  std::string key_format = "tq4";
  std::string value_format = "tq4";
  // First and last boundary_layers layers use the boundary formats.
  // Default: 0.
  int boundary_layers = 0;
  // Defaults: "tq4" (K4V4).
  std::string boundary_key_format = "tq4";
  std::string boundary_value_format = "tq4";
  // The boundary layers are kept exactly in process memory instead
  // (split_kv_cache.h); the boundary formats are then unused and the store
  // holds only the middle layers. Default: false.
  bool exact_boundary = false;
  // The most recent `window` tokens are kept exactly as window_dtype
  // (KvCollectionConfig::exact_window). Default: 0.
  uint64_t window = 0;
  // Default: kF16.
  storage::DType window_dtype = storage::DType::kF16;

  // The spec as the user wrote it, canonicalised (K4V4, turbo3/turbo3, fp32),
  // with "+b<N>", "+w<W>" suffixes for boundary layers and windows.
  std::string Name() const;
};

// Parses `text` in the grammar above into key/value formats (or exact).
// InvalidArgument naming the grammar on anything else. Format names are not
// validated here (the store does, with the head dimension).
absl::StatusOr<KvSpec> ParseKvSpec(std::string_view text);

// Parses the key/value part only (no "fp32") into two format names.
absl::Status ParseFormatPair(std::string_view text, std::string* key_format,
                             std::string* value_format);

// The store collection that holds caches of `shape` as `spec` says. An exact
// spec keeps codes too (tq4) but every position of the context in the exact
// window as float32, so Score and Attend never read the codes. With
// exact_boundary, the collection has the middle layers only
// (MiddleShape(shape, boundary_layers), split_kv_cache.h).
storage::KvCollectionConfig CollectionConfig(const KvSpec& spec, const KvShape& shape);

}  // namespace tqdb::llm

#endif  // TQDB_LLM_KV_SPEC_H_
