// Crash test: a child process appends to (and truncates) KV sequences in a
// loop, reporting each operation before and after it is acknowledged; the
// parent SIGKILLs it at a random moment, reopens the store and checks that
// every acknowledged token is present and bit-exact, that only the one
// operation in flight may or may not have happened, and that no half token
// exists (every layer and head holds the same whole tokens).
//
// TQDB_CRASH_ROUNDS sets the number of kill/reopen rounds (default 20, the
// CI mode; the manual soak runs e.g. 1000).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/testing.h"
#include "gtest/gtest.h"
#include "index/codec/codec.h"
#include "storage/store.h"
#include "tests/storage/crash_workload.h"

namespace tqdb::storage {
namespace {

using crash::Config;
using crash::kDim;
using crash::kHeads;
using crash::kLayers;
using crash::kSequences;
using crash::Record;
using crash::TokenVector;

TEST(CrashTest, AcknowledgedTokensSurviveKill) {
  const char* env = std::getenv("TQDB_CRASH_ROUNDS");
  const int rounds = env != nullptr ? std::atoi(env) : 20;
  std::string pattern = ::testing::TempDir() + "tqdb_crash_XXXXXX";
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  const std::string dir = pattern;
  {
    auto store = Store::Open({}, dir);
    ASSERT_OK(store.status());
    auto kv = (*store)->CreateKvCollection("kv", Config());
    ASSERT_OK(kv.status());
    for (uint64_t s = 0; s < kSequences; ++s) ASSERT_OK((*kv)->CreateSequence(s));
  }
  std::vector<uint64_t> acked(kSequences, 0);
  std::mt19937_64 rng(2026);
  uint64_t total_acks = 0;
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {  // exec at once: the parent's threads do not survive fork
      close(fds[0]);
      const std::string round_arg = std::to_string(round), fd_arg = std::to_string(fds[1]);
      execl(TQDB_CRASH_CHILD, TQDB_CRASH_CHILD, dir.c_str(), round_arg.c_str(), fd_arg.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    // Let it acknowledge a random number of operations, then kill it at a
    // random moment (often mid-write).
    const int wait_acks = 1 + static_cast<int>(rng() % 40);
    std::map<uint32_t, uint64_t> pending;  // seq → intended length, not acked
    Record r;
    int acks = 0;
    bool child_failed = false;
    while (acks < wait_acks) {
      if (read(fds[0], &r, sizeof r) != sizeof r) {
        child_failed = true;  // the child exited early
        break;
      }
      if (r.kind == 0) {
        pending[r.seq] = r.length;
      } else {
        acked[r.seq] = r.length;
        pending.erase(r.seq);
        ++acks;
      }
    }
    usleep(static_cast<useconds_t>(rng() % 3000));
    kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    // Records written before the kill are still in the pipe.
    while (read(fds[0], &r, sizeof r) == sizeof r) {
      if (r.kind == 0) {
        pending[r.seq] = r.length;
      } else {
        acked[r.seq] = r.length;
        pending.erase(r.seq);
        ++acks;
      }
    }
    close(fds[0]);
    ASSERT_FALSE(child_failed) << "child exit status " << WEXITSTATUS(status);
    total_acks += acks;

    auto store = Store::Open({}, dir);
    ASSERT_OK(store.status());
    auto kv = (*store)->GetKvCollection("kv");
    ASSERT_OK(kv.status());
    for (uint32_t s = 0; s < kSequences; ++s) {
      auto length = (*kv)->Length(s);
      ASSERT_OK(length.status());
      if (*length != acked[s]) {
        // Only the operation in flight may have landed, and then entirely.
        ASSERT_TRUE(pending.count(s) && pending[s] == *length)
            << "sequence " << s << " has " << *length << " tokens, acknowledged " << acked[s];
        acked[s] = *length;
      }
      std::vector<float> keys, values;
      ASSERT_OK((*kv)->Read(s, 0, *length, &keys, &values));  // DataLoss on a half token
      const KvCollectionConfig c = (*kv)->config();
      auto key_codec = *index::Codec::Create(*index::ParseFormat(c.key_format, kDim, c.seed));
      auto value_codec = *index::Codec::Create(*index::ParseFormat(c.value_format, kDim, c.seed));
      std::vector<uint8_t> code(std::max(key_codec->code_bytes(), value_codec->code_bytes()));
      std::vector<float> expected(kDim);
      const size_t n = *length;
      for (int f = 0; f < kLayers * kHeads; ++f) {
        for (uint64_t p = 0; p < n; ++p) {
          for (bool value : {false, true}) {
            const index::Codec& codec = value ? *value_codec : *key_codec;
            ASSERT_OK(codec.Encode(TokenVector(s, p, f, value).data(), 1, code.data()));
            codec.Decode(code.data(), 1, expected.data());
            const float* got = &(value ? values : keys)[(f * n + p) * kDim];
            ASSERT_EQ(std::vector<float>(got, got + kDim), expected)
                << "sequence " << s << " family " << f << " token " << p;
          }
        }
      }
    }
  }
  EXPECT_GT(total_acks, static_cast<uint64_t>(rounds));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tqdb::storage
