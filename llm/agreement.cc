#include "llm/agreement.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "index/codec/codec.h"
#include "index/codec/format.h"
#include "index/scan/attend.h"
#include "index/scan/code_blocks.h"
#include "llm/exact_kv_cache.h"

namespace tqdb::llm {
namespace {

// Pearson correlation of a[0, n) and b[0, n) in double; 1 when both are
// constant (identical rankings), 0 when only one is.
double Pearson(const float* a, const float* b, size_t n) {
  double ma = 0, mb = 0;
  for (size_t i = 0; i < n; ++i) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    const double da = a[i] - ma, db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (saa == 0 && sbb == 0) return 1.0;
  if (saa == 0 || sbb == 0) return 0.0;
  return sab / std::sqrt(saa * sbb);
}

double Cosine(const float* a, const float* b, int n) {
  double ab = 0, aa = 0, bb = 0;
  for (int i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  if (aa == 0 && bb == 0) return 1.0;
  if (aa == 0 || bb == 0) return 0.0;
  return ab / std::sqrt(aa * bb);
}

float Dot(const float* a, const float* b, int n) {
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Whether the index of the largest of a[0, n) (the first on ties) is among
// the k largest of b[0, n): fewer than k entries of b beat b[that index].
bool InTopK(const float* a, const float* b, size_t n, int k) {
  const size_t best = std::max_element(a, a + n) - a;
  int above = 0;
  for (size_t i = 0; i < n; ++i) {
    if (b[i] > b[best] || (b[i] == b[best] && i < best)) ++above;
  }
  return above < k;
}

struct Sums {
  double pearson = 0, top1 = 0, top5 = 0, cosine = 0;
  int64_t samples = 0;
  void Add(double p, bool t1, bool t5, double c) {
    pearson += p;
    top1 += t1;
    top5 += t5;
    cosine += c;
    ++samples;
  }
  AgreementStats Mean() const {
    AgreementStats s;
    s.samples = samples;
    if (samples == 0) return s;
    s.pearson = pearson / samples;
    s.top1 = top1 / samples;
    s.top5 = top5 / samples;
    s.cosine = cosine / samples;
    return s;
  }
};

absl::StatusOr<std::shared_ptr<const index::Codec>> MakeCodec(const std::string& name, int dim,
                                                              uint64_t seed) {
  TQDB_ASSIGN_OR_RETURN(const index::Format format, index::ParseFormat(name, dim, seed));
  return index::Codec::Create(format);
}

}  // namespace

absl::StatusOr<size_t> VectorBytes(const std::string& format, int dim) {
  if (format == "fp32") return static_cast<size_t>(4) * dim;
  TQDB_ASSIGN_OR_RETURN(const index::Format f, index::ParseFormat(format, dim));
  return f.CodeBytes();
}

absl::StatusOr<AgreementResult> MeasureAgreement(const KvTrace& trace,
                                                 const std::string& key_format,
                                                 const std::string& value_format,
                                                 const AgreementOptions& options) {
  const KvShape& s = trace.shape;
  const int d = s.head_dim, group = s.num_heads / s.num_kv_heads;
  const bool exact = key_format == "fp32";
  if (exact != (value_format == "fp32")) {
    return absl::InvalidArgumentError("keys and values are both fp32 or both coded");
  }
  AgreementResult result;
  result.key_format = key_format;
  result.value_format = value_format;
  TQDB_ASSIGN_OR_RETURN(result.key_bytes, VectorBytes(key_format, d));
  TQDB_ASSIGN_OR_RETURN(result.value_bytes, VectorBytes(value_format, d));
  std::shared_ptr<const index::Codec> key_codec, value_codec;
  if (!exact) {
    TQDB_ASSIGN_OR_RETURN(key_codec, MakeCodec(key_format, d, options.format_seed));
    TQDB_ASSIGN_OR_RETURN(value_codec, MakeCodec(value_format, d, options.format_seed));
    const index::Format& vf = value_codec->format();
    if (vf.mode != index::QuantMode::kMse) {
      return absl::InvalidArgumentError(
          absl::StrCat("value format ", value_format, " is not an MSE format (no QJL)"));
    }
  }

  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::mt19937_64 rng(options.seed);
  std::vector<Sums> per_layer(s.num_layers);
  Sums all;
  std::vector<float> exact_logits, quant_logits, scores, decoded, queries(group * d);
  std::vector<float> out_exact(d), out_quant(group * d);
  std::vector<uint8_t> codes;
  for (size_t w = 0; w < trace.windows.size(); ++w) {
    const int n = trace.windows[w].tokens;
    if (n <= options.min_position) continue;
    std::uniform_int_distribution<int> pick(options.min_position, n - 1);
    std::vector<int> positions(options.positions_per_window);
    for (int& p : positions) p = pick(rng);
    exact_logits.resize(n + 1);
    quant_logits.resize(n + 1);
    scores.resize(n + 1);
    for (int layer = 0; layer < s.num_layers; ++layer) {
      for (int h = 0; h < s.num_kv_heads; ++h) {
        const float* keys = trace.Keys(w, layer, h);
        const float* values = trace.Values(w, layer, h);
        std::unique_ptr<index::CodeBlocks> key_blocks, value_blocks;
        if (!exact) {
          TQDB_ASSIGN_OR_RETURN(key_blocks, index::CodeBlocks::Create(key_codec));
          TQDB_ASSIGN_OR_RETURN(value_blocks, index::CodeBlocks::Create(value_codec));
          TQDB_RETURN_IF_ERROR(key_blocks->Append(keys, n));
          TQDB_RETURN_IF_ERROR(value_blocks->Append(values, n));
          codes.resize(key_codec->code_bytes() * n);
          decoded.resize(static_cast<size_t>(n) * d);
          TQDB_RETURN_IF_ERROR(key_codec->Encode(keys, n, codes.data()));
          key_codec->Decode(codes.data(), n, decoded.data());
        }
        for (const int p : positions) {
          const int n_coded = exact ? 0 : std::max(0, p - options.exact_window);
          for (int g = 0; g < group; ++g) {
            std::copy_n(trace.Query(w, layer, p, h * group + g), d, &queries[g * d]);
          }
          if (n_coded > 0) {
            index::AttendOptions attend;
            attend.scale = scale;
            attend.end = n_coded;
            index::ExactTail tail;
            tail.keys = keys + static_cast<size_t>(n_coded) * d;
            tail.values = values + static_cast<size_t>(n_coded) * d;
            tail.n = p + 1 - n_coded;
            TQDB_RETURN_IF_ERROR(index::Attend(*key_blocks, *value_blocks, queries, attend, tail,
                                               out_quant.data()));
          } else {
            for (int g = 0; g < group; ++g) {
              ExactAttention(&queries[g * d], keys, values, p + 1, nullptr, nullptr, d, scale,
                             scores.data(), &out_quant[g * d]);
            }
          }
          for (int g = 0; g < group; ++g) {
            const float* q = &queries[g * d];
            for (int t = 0; t <= p; ++t) {
              exact_logits[t] = scale * Dot(q, keys + static_cast<size_t>(t) * d, d);
              quant_logits[t] = t < n_coded
                                    ? scale * Dot(q, &decoded[static_cast<size_t>(t) * d], d)
                                    : exact_logits[t];
            }
            ExactAttention(q, keys, values, p + 1, nullptr, nullptr, d, scale, scores.data(),
                           out_exact.data());
            const size_t m = p + 1;
            const double pearson = Pearson(exact_logits.data(), quant_logits.data(), m);
            const bool top1 = InTopK(exact_logits.data(), quant_logits.data(), m, 1);
            const bool top5 = InTopK(exact_logits.data(), quant_logits.data(), m, 5);
            const double cosine = Cosine(out_exact.data(), &out_quant[g * d], d);
            per_layer[layer].Add(pearson, top1, top5, cosine);
            all.Add(pearson, top1, top5, cosine);
          }
        }
      }
    }
  }
  if (all.samples == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("no captured window is longer than ", options.min_position, " tokens"));
  }
  result.all = all.Mean();
  for (const Sums& l : per_layer) result.per_layer.push_back(l.Mean());
  return result;
}

}  // namespace tqdb::llm
