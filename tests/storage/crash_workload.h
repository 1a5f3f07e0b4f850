// The crash test's workload, shared by the test (crash_test.cc) and the
// child process it kills (crash_child.cc): a pure function of the position
// gives every token's vectors, so any survivor can be checked.
#ifndef TQDB_TESTS_STORAGE_CRASH_WORKLOAD_H_
#define TQDB_TESTS_STORAGE_CRASH_WORKLOAD_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "storage/kv_collection.h"
#include "tests/index/test_data.h"

namespace tqdb::storage::crash {

inline constexpr int kLayers = 4, kHeads = 2, kDim = 32, kSequences = 3;

inline KvCollectionConfig Config() {
  KvCollectionConfig c;
  c.num_layers = kLayers;
  c.num_kv_heads = kHeads;
  c.head_dim = kDim;
  c.key_format = "tq4";
  c.value_format = "tq2";
  c.page_tokens = 8;
  return c;
}

// The vector of token `pos` of sequence `seq`, family f, keys or values:
// a pure function, so any survivor can be checked.
inline std::vector<float> TokenVector(uint64_t seq, uint64_t pos, int f, bool value) {
  return index::testing::Gaussian(kDim, ((seq * 1000003 + pos) * 64 + f) * 2 + value);
}

// Tokens [begin, begin + n) of seq, laid out as KvTokens.
inline std::pair<std::vector<float>, std::vector<float>> Tokens(uint64_t seq, uint64_t begin,
                                                               size_t n) {
  std::vector<float> keys, values;
  for (int f = 0; f < kLayers * kHeads; ++f) {
    for (uint64_t p = begin; p < begin + n; ++p) {
      const std::vector<float> k = TokenVector(seq, p, f, false), v = TokenVector(seq, p, f, true);
      keys.insert(keys.end(), k.begin(), k.end());
      values.insert(values.end(), v.begin(), v.end());
    }
  }
  return {keys, values};
}

// What the child reports: an operation's intended result, then its ack.
struct Record {
  uint32_t kind;  // 0 = intent, 1 = acknowledged
  uint32_t seq;
  uint64_t length;  // the sequence's length after the operation
};

}  // namespace tqdb::storage::crash

#endif  // TQDB_TESTS_STORAGE_CRASH_WORKLOAD_H_
