// tqdb-server: serves a tqdb data directory over gRPC.
//
//   tqdb-server [--data-dir DIR] [--listen HOST:PORT] [--max-message-mb N]
//               [--auth-token-file FILE] [--tls-cert PEM --tls-key PEM]
//               [--shutdown-grace-s N] [--sync every|periodic|none]
//
// Prints "listening on HOST:PORT" (or "listening on unix:PATH") on stdout
// once it serves (the real port when --listen asks for port 0). SIGTERM or
// SIGINT shut it down gracefully: new calls get UNAVAILABLE, calls in flight
// get the grace period to finish (gRPC also waits that long for connected
// idle clients to go away), then the store closes. One log line per call goes to stderr.
#include <malloc.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "server/server.h"

namespace {

constexpr char kUsage[] =
    "usage: tqdb-server [--data-dir DIR] [--listen HOST:PORT] [--max-message-mb N]\n"
    "                   [--auth-token-file FILE] [--tls-cert PEM --tls-key PEM]\n"
    "                   [--shutdown-grace-s N] [--sync every|periodic|none]\n"
    "  --data-dir         store directory, created if missing (default ./tqdb-data)\n"
    "  --listen           address to serve: HOST:PORT (port 0 picks one) or unix:PATH\n"
    "                     (default 127.0.0.1:50051)\n"
    "  --max-message-mb   largest message in MiB (default 64)\n"
    "  --auth-token-file  file holding the bearer token clients must send\n"
    "  --tls-cert/--tls-key  PEM certificate chain and key: serve TLS\n"
    "  --shutdown-grace-s seconds calls in flight get on SIGTERM/SIGINT (default 10)\n"
    "  --sync             when acknowledged writes are fsynced: every write (default),\n"
    "                     periodic (every 100 ms) or none (the OS decides); a killed\n"
    "                     server loses nothing acknowledged under any of them\n";

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "tqdb-server: %s\n%s", message.c_str(), kUsage);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  // Keep freed memory (RocksDB arenas, write batches, scan segments, 4 MiB
  // Score responses) in the heap for reuse instead of unmapping it: page
  // faults on fresh memory cost ~10 us each on a VM.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg.rfind("--", 0) != 0) Fail("unexpected argument " + arg);
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      flags[arg.substr(2, eq - 2)] = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      flags[arg.substr(2)] = argv[++i];
    } else {
      Fail("flag " + arg + " needs a value");
    }
  }

  tqdb::server::ServerOptions options;
  int grace_s = 10;
  for (const auto& [name, value] : flags) {
    if (name == "data-dir") {
      options.data_dir = value;
    } else if (name == "listen") {
      options.listen = value;
    } else if (name == "max-message-mb") {
      int mb = 0;
      if (!absl::SimpleAtoi(value, &mb) || mb <= 0 || mb > 2047) {
        Fail("--max-message-mb must be 1...2047");
      }
      options.max_message_bytes = mb << 20;
    } else if (name == "auth-token-file") {
      std::string token;
      if (!ReadFile(value, &token)) Fail("cannot read " + value);
      options.auth_token = std::string(absl::StripAsciiWhitespace(token));
      if (options.auth_token.empty()) Fail(value + " holds no token");
    } else if (name == "shutdown-grace-s") {
      if (!absl::SimpleAtoi(value, &grace_s) || grace_s < 0) {
        Fail("--shutdown-grace-s must be 0 or more");
      }
    } else if (name == "sync") {
      if (value == "every") {
        options.store.sync = tqdb::storage::SyncPolicy::kEveryWrite;
      } else if (value == "periodic") {
        options.store.sync = tqdb::storage::SyncPolicy::kPeriodic;
      } else if (value == "none") {
        options.store.sync = tqdb::storage::SyncPolicy::kNone;
      } else {
        Fail("--sync must be every, periodic or none");
      }
    } else if (name == "tls-cert") {
      if (!ReadFile(value, &options.tls_cert_pem)) Fail("cannot read " + value);
    } else if (name == "tls-key") {
      if (!ReadFile(value, &options.tls_key_pem)) Fail("cannot read " + value);
    } else {
      Fail("unknown flag --" + name);
    }
  }

  // Signals are taken synchronously by this thread (sigwait): block them
  // before any thread starts, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = tqdb::server::Server::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "tqdb-server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::printf("listening on %s\n", (*server)->address().c_str());
  std::fflush(stdout);

  int signal = 0;
  sigwait(&signals, &signal);
  std::fprintf(stderr, "tqdb-server: %s, shutting down\n", signal == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown(std::chrono::seconds(grace_s));
  std::fprintf(stderr, "tqdb-server: stopped\n");
  return 0;
}
