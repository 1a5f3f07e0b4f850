#include "llm/kv_spec.h"

#include <cctype>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tqdb::llm {
namespace {

constexpr char kGrammar[] = "fp32, K<bits>V<bits> (e.g. K4V4) or <key format>/<value format>";

// "K<b>V<b>" → tq<b>, tq<b>; false if `text` is not of that shape.
bool ParseShortForm(std::string_view text, std::string* k, std::string* v) {
  if (text.size() != 4 || (text[0] != 'K' && text[0] != 'k') ||
      (text[2] != 'V' && text[2] != 'v') || !std::isdigit(static_cast<unsigned char>(text[1])) ||
      !std::isdigit(static_cast<unsigned char>(text[3]))) {
    return false;
  }
  *k = "tq" + std::string(text.substr(1, 1));
  *v = "tq" + std::string(text.substr(3, 1));
  return true;
}

std::string PairName(const std::string& k, const std::string& v) {
  if (k.size() == 3 && v.size() == 3 && k.substr(0, 2) == "tq" && v.substr(0, 2) == "tq" &&
      std::isdigit(static_cast<unsigned char>(k[2])) &&
      std::isdigit(static_cast<unsigned char>(v[2]))) {
    return absl::StrCat("K", k.substr(2), "V", v.substr(2));
  }
  return absl::StrCat(k, "/", v);
}

}  // namespace

absl::Status ParseFormatPair(std::string_view text, std::string* key_format,
                             std::string* value_format) {
  if (ParseShortForm(text, key_format, value_format)) return absl::OkStatus();
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size() ||
      text.find('/', slash + 1) != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad KV format '", std::string(text), "': expected ", kGrammar));
  }
  *key_format = std::string(text.substr(0, slash));
  *value_format = std::string(text.substr(slash + 1));
  return absl::OkStatus();
}

absl::StatusOr<KvSpec> ParseKvSpec(std::string_view text) {
  KvSpec spec;
  if (text == "fp32" || text == "FP32") {
    spec.exact = true;
    return spec;
  }
  absl::Status st = ParseFormatPair(text, &spec.key_format, &spec.value_format);
  if (!st.ok()) return st;
  return spec;
}

std::string KvSpec::Name() const {
  std::string name = exact ? "fp32" : PairName(key_format, value_format);
  if (!exact && boundary_layers > 0) {
    absl::StrAppend(&name, "+b", boundary_layers, ":",
                    exact_boundary ? std::string("fp32")
                                   : PairName(boundary_key_format, boundary_value_format));
  }
  if (!exact && window > 0) {
    const char* dtype = window_dtype == storage::DType::kF32    ? ":f32"
                        : window_dtype == storage::DType::kBF16 ? ":bf16"
                                                                : "";
    absl::StrAppend(&name, "+w", window, dtype);
  }
  return name;
}

storage::KvCollectionConfig CollectionConfig(const KvSpec& spec, const KvShape& shape) {
  storage::KvCollectionConfig c;
  c.num_layers = shape.num_layers;
  c.num_kv_heads = shape.num_kv_heads;
  c.head_dim = shape.head_dim;
  if (spec.exact) {
    c.exact_window = static_cast<uint64_t>(shape.max_tokens);
    c.exact_dtype = storage::DType::kF32;
    return c;
  }
  c.key_format = spec.key_format;
  c.value_format = spec.value_format;
  c.boundary_layers = spec.boundary_layers;
  if (spec.exact_boundary) {
    c.num_layers = shape.num_layers - 2 * spec.boundary_layers;
    c.boundary_layers = 0;
  }
  c.boundary_key_format = spec.boundary_key_format;
  c.boundary_value_format = spec.boundary_value_format;
  c.exact_window = spec.window;
  c.exact_dtype = spec.window_dtype;
  return c;
}

}  // namespace tqdb::llm
