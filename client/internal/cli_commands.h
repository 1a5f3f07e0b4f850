// The commands of the `tqdb` command line client (client/cli.cc parses the
// global flags and dispatches here). Each takes the words after the command
// name, prints its results on stdout (messages and progress on stderr) and
// returns an exit code of client/internal/cli_util.h.
//
//   cli_collections.cc  collections list|create|describe|drop, stats
//   cli_vectors.cc      import, search
//   cli_kv.cc           append, score
//   cli_bench.cc        bench (client/internal/load_generator.h)
//
// Thread-safety: one command per process.
#ifndef TQDB_CLIENT_INTERNAL_CLI_COMMANDS_H_
#define TQDB_CLIENT_INTERNAL_CLI_COMMANDS_H_

#include <string>
#include <vector>

#include "client/client.h"

namespace tqdb::cli {

// The text of `tqdb --help`.
extern const char kUsage[];

int RunCollections(client::Client& db, const std::vector<std::string>& words);
int RunStats(client::Client& db, const std::vector<std::string>& words);
int RunImport(client::Client& db, const std::vector<std::string>& words);
int RunSearch(client::Client& db, const std::vector<std::string>& words);
int RunAppend(client::Client& db, const std::vector<std::string>& words);
int RunScore(client::Client& db, const std::vector<std::string>& words);
// The load generator connects its own clients with `options`.
int RunBench(const client::ClientOptions& options, const std::vector<std::string>& words);

}  // namespace tqdb::cli

#endif  // TQDB_CLIENT_INTERNAL_CLI_COMMANDS_H_
