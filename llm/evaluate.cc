#include "llm/evaluate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "llm/tokenizer.h"

namespace tqdb::llm {

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream buf;
  buf << in.rdbuf();
  const std::string raw = buf.str();
  std::string text;
  text.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n') continue;
    text += raw[i];
  }
  return text;
}

double TokenNll(absl::Span<const float> logits, int target) {
  double max = logits[0];
  for (float l : logits) max = std::max(max, static_cast<double>(l));
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max);
  return max + std::log(sum) - static_cast<double>(logits[target]);
}

int Argmax(absl::Span<const float> logits) {
  return static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

double NllResult::ppl() const { return std::exp(mean_nll()); }

absl::StatusOr<NllResult> TeacherForcedNll(Transformer* model, KvCache* cache,
                                           absl::Span<const int> tokens, int window) {
  if (window < 1 || window > model->config().seq_len) {
    return absl::InvalidArgumentError(
        absl::StrCat("window ", window, " is not in 1 … ", model->config().seq_len));
  }
  if (tokens.size() < 2) return absl::InvalidArgumentError("fewer than 2 tokens");
  const auto start = std::chrono::steady_clock::now();
  NllResult r;
  const size_t inputs = tokens.size() - 1;
  for (size_t begin = 0; begin < inputs; begin += window) {
    TQDB_RETURN_IF_ERROR(cache->Truncate(0));
    const size_t end = std::min(inputs, begin + window);
    for (size_t i = begin; i < end; ++i) {
      TQDB_ASSIGN_OR_RETURN(absl::Span<const float> logits, model->Forward(tokens[i], cache));
      const int target = tokens[i + 1];
      if (target < 0 || target >= static_cast<int>(logits.size())) {
        return absl::InvalidArgumentError(absl::StrCat("target token ", target, " out of range"));
      }
      r.total_nll += TokenNll(logits, target);
      ++r.tokens;
    }
    ++r.windows;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

absl::StatusOr<std::vector<int>> GenerateGreedy(Transformer* model, KvCache* cache,
                                                absl::Span<const int> feed,
                                                const GenerateOptions& options) {
  if (feed.empty()) return absl::InvalidArgumentError("nothing to feed");
  const uint64_t context = static_cast<uint64_t>(model->config().seq_len);
  std::vector<int> out;
  absl::Span<const float> logits;
  for (int token : feed) {
    if (cache->Length() >= context) return out;
    TQDB_ASSIGN_OR_RETURN(logits, model->Forward(token, cache));
  }
  for (int step = 0; step < options.steps; ++step) {
    if (step > 0) {
      if (cache->Length() >= context) break;
      TQDB_ASSIGN_OR_RETURN(logits, model->Forward(out.back(), cache));
    }
    const int next = Argmax(logits);
    if (options.stop_at_bos && next == kBosToken) break;
    out.push_back(next);
    if (options.logits != nullptr) options.logits->emplace_back(logits.begin(), logits.end());
    if (options.on_token) options.on_token(next);
  }
  return out;
}

}  // namespace tqdb::llm
