// Tokenizer: llama2.c's BPE tokenizer (a sentencepiece vocabulary exported to
// tokenizer.bin / tok512.bin).
//
// File format: int32 max_token_length, then for each of vocab_size tokens:
// float32 score, int32 byte length, the token's bytes (no terminator).
//
// Encode does what llama2.c's encode does: an optional BOS (id 1), a " "
// token prepended to non-empty text, each UTF-8 code point looked up whole
// (bytes of code points missing from the vocabulary become tokens byte + 3),
// then repeatedly the adjacent pair whose concatenation is in the vocabulary
// with the highest score is merged (the leftmost on ties) until none is, and
// an optional EOS (id 2).
//
// Thread-safety: immutable after Load; may be used concurrently.
#ifndef TQDB_LLM_TOKENIZER_H_
#define TQDB_LLM_TOKENIZER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace tqdb::llm {

inline constexpr int kBosToken = 1;
inline constexpr int kEosToken = 2;

class Tokenizer {
 public:
  // Reads `vocab_size` tokens from `path`. NotFound if it cannot be opened;
  // DataLoss if it is truncated or a length is negative or absurd;
  // InvalidArgument if vocab_size < 3 + 256 is too small for byte fallback.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& path, int vocab_size);
  // Same, over the file's bytes.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromBytes(std::string_view bytes,
                                                              int vocab_size);

  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  const std::string& piece(int id) const { return pieces_[id]; }
  float score(int id) const { return scores_[id]; }

  std::vector<int> Encode(std::string_view text, bool bos, bool eos) const;

  // The text of `token` following `prev`: a leading space is dropped after
  // BOS, and byte tokens "<0xHH>" become that byte. REQUIRES: 0 ≤ token <
  // vocab_size().
  std::string Decode(int prev, int token) const;

  // Decode of a whole sequence (prev of the first token is `prev`).
  std::string DecodeAll(const std::vector<int>& tokens, int prev = kBosToken) const;

 private:
  Tokenizer() = default;
  // Applies the BPE merges to (*tokens)[first …].
  void Merge(std::vector<int>* tokens, size_t first) const;
  // The id of `piece`, or −1 (the first id on duplicates).
  int Lookup(std::string_view piece) const;

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  absl::flat_hash_map<std::string, int> ids_;
};

}  // namespace tqdb::llm

#endif  // TQDB_LLM_TOKENIZER_H_
