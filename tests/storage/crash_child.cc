// The process crash_test.cc kills: appends to and truncates KV sequences in
// a loop, writing each operation's intent and then its acknowledgement to a
// file descriptor. Usage: tqdb_crash_child <dir> <round> <fd>.
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <string>

#include "storage/store.h"
#include "tests/storage/crash_workload.h"

namespace tqdb::storage::crash {

[[noreturn]] void RunChild(const std::string& dir, int round, int fd) {
  StoreOptions options;
  options.sync = round % 2 ? SyncPolicy::kNone : SyncPolicy::kEveryWrite;  // both survive kill
  auto store = Store::Open(options, dir);
  if (!store.ok()) _exit(10);
  auto kv = (*store)->GetKvCollection("kv");
  if (!kv.ok()) _exit(11);
  std::mt19937_64 rng(round);
  for (uint64_t op = 0;; ++op) {
    const uint32_t seq = static_cast<uint32_t>(rng() % kSequences);
    auto length = (*kv)->Length(seq);
    if (!length.ok()) _exit(12);
    const bool truncate = rng() % 8 == 0 && *length > 0;
    const size_t n = 1 + rng() % 6;
    const uint64_t after = truncate ? *length - std::min<uint64_t>(*length, 3) : *length + n;
    Record intent{0, seq, after};
    if (write(fd, &intent, sizeof intent) != sizeof intent) _exit(13);
    absl::Status s;
    if (truncate) {
      s = (*kv)->Truncate(seq, after);
    } else {
      auto [keys, values] = Tokens(seq, *length, n);
      s = (*kv)->Append(seq, FloatTokens(n, keys, values)).status();
    }
    if (!s.ok()) _exit(14);
    Record ack{1, seq, after};
    if (write(fd, &ack, sizeof ack) != sizeof ack) _exit(15);
  }
}

}  // namespace tqdb::storage::crash

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  tqdb::storage::crash::RunChild(argv[1], std::atoi(argv[2]), std::atoi(argv[3]));
}
