#include "llm/tokenizer.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <queue>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tqdb::llm {
namespace {

constexpr int kByteFallbackOffset = 3;
constexpr int32_t kMaxPieceBytes = 1 << 16;

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& path,
                                                           int vocab_size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open tokenizer ", path));
  std::ostringstream buf;
  buf << in.rdbuf();
  auto tok = FromBytes(buf.str(), vocab_size);
  if (!tok.ok()) {
    return absl::Status(tok.status().code(), absl::StrCat(path, ": ", tok.status().message()));
  }
  return tok;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromBytes(std::string_view bytes,
                                                                int vocab_size) {
  if (vocab_size < kByteFallbackOffset + 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("vocab_size ", vocab_size, " has no room for 256 byte tokens"));
  }
  size_t pos = 0;
  auto read = [&](void* out, size_t n) {
    if (bytes.size() - pos < n) return false;
    std::memcpy(out, bytes.data() + pos, n);
    pos += n;
    return true;
  };
  int32_t max_len;
  if (!read(&max_len, sizeof(max_len))) return absl::DataLossError("tokenizer has no header");
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  tok->pieces_.resize(vocab_size);
  tok->scores_.resize(vocab_size);
  for (int i = 0; i < vocab_size; ++i) {
    int32_t len;
    if (!read(&tok->scores_[i], sizeof(float)) || !read(&len, sizeof(len))) {
      return absl::DataLossError(absl::StrCat("tokenizer ends at token ", i, " of ", vocab_size));
    }
    if (len < 0 || len > kMaxPieceBytes) {
      return absl::DataLossError(absl::StrCat("token ", i, " has length ", len));
    }
    tok->pieces_[i].resize(len);
    if (!read(tok->pieces_[i].data(), len)) {
      return absl::DataLossError(absl::StrCat("tokenizer ends inside token ", i));
    }
    tok->ids_.try_emplace(tok->pieces_[i], i);
  }
  return tok;
}

// llama2.c rescans every adjacent pair after each merge (quadratic in the
// text: seconds for 30 KB). The same merges in O(n log n): the symbols form a
// linked list, candidate pairs wait in a heap ordered by (score descending,
// left position ascending) — exactly llama2.c's choice of the best pair, the
// leftmost on ties, since surviving symbols keep their original order — and a
// popped pair is used only if both symbols are unchanged since it was pushed.
void Tokenizer::Merge(std::vector<int>* tokens, size_t first) const {
  struct Symbol {
    int id;
    int prev, next;  // −1 at the ends
    uint32_t version;
    bool alive;
  };
  struct Candidate {
    float score;
    int left, right, merged;
    uint32_t left_version, right_version;
  };
  auto worse = [](const Candidate& a, const Candidate& b) {
    if (a.score != b.score) return a.score < b.score;
    return a.left > b.left;
  };
  const int n = static_cast<int>(tokens->size() - std::min(first, tokens->size()));
  if (n < 2) return;
  std::vector<Symbol> sym(n);
  for (int i = 0; i < n; ++i) {
    sym[i] = {(*tokens)[first + i], i - 1, i + 1 < n ? i + 1 : -1, 0, true};
  }
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> heap(worse);
  std::string pair;
  auto push = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    pair.assign(pieces_[sym[left].id]);
    pair.append(pieces_[sym[right].id]);
    const int id = Lookup(pair);
    if (id >= 0) {
      heap.push({scores_[id], left, right, id, sym[left].version, sym[right].version});
    }
  };
  for (int i = 0; i + 1 < n; ++i) push(i, i + 1);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& l = sym[c.left];
    Symbol& r = sym[c.right];
    if (!l.alive || !r.alive || l.next != c.right || l.version != c.left_version ||
        r.version != c.right_version) {
      continue;  // stale
    }
    l.id = c.merged;
    ++l.version;
    r.alive = false;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = c.left;
    push(l.prev, c.left);
    push(c.left, l.next);
  }
  tokens->resize(first);
  for (int i = 0; i >= 0; i = sym[i].next) tokens->push_back(sym[i].id);
}

int Tokenizer::Lookup(std::string_view piece) const {
  // Debian's abseil has its own string_view: look up through it.
  auto it = ids_.find(absl::string_view(piece.data(), piece.size()));
  return it == ids_.end() ? -1 : it->second;
}

std::vector<int> Tokenizer::Encode(std::string_view text, bool bos, bool eos) const {
  std::vector<int> tokens;
  tokens.reserve(text.size() + 3);
  if (bos) tokens.push_back(kBosToken);
  if (!text.empty()) {
    const int space = Lookup(" ");
    if (space >= 0) tokens.push_back(space);
  }
  // Code points: a lead byte and up to three continuation bytes (10xxxxxx).
  for (size_t i = 0; i < text.size();) {
    size_t end = i + 1;
    while (end < text.size() && end - i < 4 &&
           (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
      ++end;
    }
    const std::string_view cp = text.substr(i, end - i);
    const int id = Lookup(cp);
    if (id >= 0) {
      tokens.push_back(id);
    } else {
      for (unsigned char b : cp) tokens.push_back(b + kByteFallbackOffset);
    }
    i = end;
  }
  Merge(&tokens, bos ? 1 : 0);  // BOS never merges
  if (eos) tokens.push_back(kEosToken);
  return tokens;
}

std::string Tokenizer::Decode(int prev, int token) const {
  std::string_view piece = pieces_[token];
  if (prev == kBosToken && !piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
  // "<0xHH>": a raw byte.
  if (piece.size() == 6 && piece.substr(0, 3) == "<0x" && piece[5] == '>') {
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = hex(piece[3]), lo = hex(piece[4]);
    if (hi >= 0 && lo >= 0) return std::string(1, static_cast<char>(hi * 16 + lo));
  }
  return std::string(piece);
}

std::string Tokenizer::DecodeAll(const std::vector<int>& tokens, int prev) const {
  std::string out;
  for (int t : tokens) {
    out += Decode(prev, t);
    prev = t;
  }
  return out;
}

}  // namespace tqdb::llm
