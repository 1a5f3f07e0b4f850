// tqdb: the command line client of tqdb-server (over client/client.h).
//
//   tqdb [--target HOST:PORT] [--token-file F] [--timeout-s S] COMMAND ...
//
// The commands (client/internal/cli_commands.h; `tqdb --help` lists their
// flags): collections list|create|describe|drop, import, search, append,
// score, stats, bench, health.
//
// Exit status: 0 on success, 1 when the server returns an error (printed as
// CODE: message) or an input file cannot be read, 2 on a usage error.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "client/client.h"
#include "client/internal/cli_commands.h"
#include "client/internal/cli_util.h"

namespace tqdb::cli {

const char kUsage[] =
    "usage: tqdb [--target HOST:PORT] [--token-file F] [--timeout-s S] COMMAND ...\n"
    "  (default target 127.0.0.1:50051; timeout per call, default 60 s)\n"
    "\n"
    "  collections list\n"
    "  collections create NAME --dim D [--metric ip|cosine|l2] [--format tq4]\n"
    "                     [--keep-raw none|f16|f32] [--seed S]\n"
    "  collections create NAME --layers L --kv-heads H --head-dim D [--key-format tq4]\n"
    "                     [--value-format tq4] [--boundary-layers N] [--page-tokens N] [--seed S]\n"
    "  collections describe NAME\n"
    "  collections drop NAME\n"
    "    (create-embedding NAME DIM [ip|cosine|l2] and create-kv NAME L H D also work)\n"
    "  import COLLECTION FILE.{fvecs,bvecs,npy} [--batch N] [--start-id ID] [--limit N]\n"
    "         [--create [--metric M] [--format F] [--keep-raw R]] [--progress auto|always|never]\n"
    "      upserts row i of FILE as id start-id + i (progress on stderr, rate on stdout)\n"
    "  search COLLECTION --query V1,V2,... [--k 10] [--oversample R]\n"
    "  search COLLECTION --queries FILE [--limit NQ] [--k 10] [--oversample R] [--gt FILE.ivecs]\n"
    "  search COLLECTION K V1,V2,...\n"
    "  append COLLECTION SEQ --tokens N --random [--seed S] [--chunk T]\n"
    "  append COLLECTION SEQ --keys K.npy --values V.npy [--chunk T]\n"
    "      K, V: [layers*kv_heads*n, head_dim] floats, rows layer-major then head then token;\n"
    "      creates SEQ if it does not exist; sends T tokens per stream message (default 64)\n"
    "  score COLLECTION SEQ [--layer L] (--queries Q.npy | --random [--query-heads H] [--seed S])\n"
    "        [--begin B] [--end E] [--scale X] [--top T]\n"
    "      prints each query head's top T tokens (default 5) by logit\n"
    "  stats [COLLECTION ...] [--json]\n"
    "  bench [--clients 16] [--seconds 10] [--mix append=1,score=1,search=1]\n"
    "        [--layers 2] [--kv-heads 4] [--head-dim 64] [--group 4] [--dim 128]\n"
    "        [--vectors 5000] [--initial-tokens 256] [--max-tokens 2048] [--k 10]\n"
    "        [--prefix NAME] [--keep] [--seed S]\n"
    "      load generator: N clients, mixed Append/Score/Search; one JSON line at the end\n"
    "  health\n"
    "\n"
    "exit status: 0 ok, 1 server error (CODE: message on stderr), 2 usage error\n";

}  // namespace tqdb::cli

int main(int argc, char** argv) {
  using tqdb::cli::Fail;
  using tqdb::cli::UsageError;
  tqdb::client::ClientOptions options;
  options.target = "127.0.0.1:50051";
  std::vector<std::string> args;
  // Global flags may appear anywhere; the rest belongs to the command.
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--target" || arg == "--token-file" || arg == "--timeout-s") {
      if (i + 1 >= argc) return UsageError(arg + " needs a value");
      const std::string value = argv[++i];
      if (arg == "--target") {
        options.target = value;
      } else if (arg == "--timeout-s") {
        double seconds = 0;
        if (!absl::SimpleAtod(value, &seconds) || seconds < 0) {
          return UsageError("--timeout-s must be a number of seconds >= 0");
        }
        options.timeout = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
      } else {
        std::ifstream in(value);
        std::stringstream s;
        s << in.rdbuf();
        if (!in) return UsageError("cannot read " + value);
        options.auth_token = std::string(absl::StripAsciiWhitespace(s.str()));
      }
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(tqdb::cli::kUsage, stdout);
      return tqdb::cli::kExitOk;
    } else {
      args.push_back(arg);
    }
  }
  if (args.empty()) return UsageError("no command");
  const std::string command = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (command == "bench") return tqdb::cli::RunBench(options, rest);

  auto connected = tqdb::client::Client::Connect(options);
  if (!connected.ok()) return Fail(connected.status());
  tqdb::client::Client& db = **connected;
  if (command == "collections") return tqdb::cli::RunCollections(db, rest);
  if (command == "stats") return tqdb::cli::RunStats(db, rest);
  if (command == "import") return tqdb::cli::RunImport(db, rest);
  if (command == "search") return tqdb::cli::RunSearch(db, rest);
  if (command == "append") return tqdb::cli::RunAppend(db, rest);
  if (command == "score") return tqdb::cli::RunScore(db, rest);
  if (command == "health") {
    if (!rest.empty()) return UsageError("health takes no arguments");
    auto healthy = db.Healthy();
    if (!healthy.ok()) return Fail(healthy.status());
    std::puts(*healthy ? "SERVING" : "NOT_SERVING");
    return *healthy ? tqdb::cli::kExitOk : tqdb::cli::kExitError;
  }
  return UsageError("unknown command '" + command + "'");
}
