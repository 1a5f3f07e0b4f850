// ServerProcess: a tqdb-server child process, for end-to-end tests and the
// gRPC benchmark: fork + exec of the built binary on 127.0.0.1:0 (or a given
// address, e.g. "unix:PATH"), the target read from its "listening on ADDRESS"
// line. POSIX only; no gRPC.
//
// Thread-safety: one object per thread (Start and Kill are not synchronized).
#ifndef TQDB_CLIENT_SERVER_PROCESS_H_
#define TQDB_CLIENT_SERVER_PROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tqdb::client {

class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess() { Kill(SIGKILL); }

  // Starts `binary` with `args` plus --listen `listen`; its stderr goes to
  // `log_path` (appended). Returns once it printed its address; Internal if
  // it exited first or printed something else (the process is killed).
  absl::Status Start(const std::string& binary, std::vector<std::string> args,
                     const std::string& log_path, const std::string& listen = "127.0.0.1:0") {
    int out[2];
    if (pipe(out) != 0) return absl::InternalError("pipe failed");
    args.insert(args.begin(), binary);
    args.push_back("--listen");
    args.push_back(listen);
    pid_ = fork();
    if (pid_ < 0) return absl::InternalError("fork failed");
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (log >= 0) dup2(log, STDERR_FILENO);
      close(out[0]);
      close(out[1]);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    FILE* in = fdopen(out[0], "r");
    char line[256];
    std::string first;
    if (fgets(line, sizeof line, in) != nullptr) first = line;
    fclose(in);  // the server writes nothing more on stdout
    const std::string prefix = "listening on ";
    const bool unix_socket = listen.rfind("unix:", 0) == 0;
    const size_t colon = first.rfind(':');
    if (!first.empty() && first.back() == '\n') first.pop_back();
    if (first.rfind(prefix, 0) != 0 || colon == std::string::npos ||
        (!unix_socket && !absl::SimpleAtoi(first.substr(colon + 1), &port_))) {
      Kill(SIGKILL);
      return absl::InternalError(absl::StrCat("tqdb-server did not start: '", first,
                                              "' (log: ", log_path, ")"));
    }
    target_ = first.substr(prefix.size());
    return absl::OkStatus();
  }

  // The bound TCP port (0 on a Unix socket).
  int port() const { return port_; }
  // The address clients connect to: "HOST:PORT" or "unix:PATH".
  std::string target() const { return target_; }

  // Sends `signal` and reaps the process; returns its wait status (-1 if
  // none was running).
  int Kill(int signal) {
    if (pid_ <= 0) return -1;
    kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string target_;
};

}  // namespace tqdb::client

#endif  // TQDB_CLIENT_SERVER_PROCESS_H_
