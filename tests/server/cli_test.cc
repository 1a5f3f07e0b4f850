// End-to-end tests of the `tqdb` command line client: the built binary run
// against a real tqdb-server on an ephemeral port. Smoke tests of every
// command on small files the tests write (fvecs, npy), the exit codes
// (0 ok, 1 server error printed "CODE: message", 2 usage), and a load run of
// `tqdb bench` with 16 concurrent clients that must see zero errors.
//
// The load run lasts 3 s; TQDB_LOAD_SECONDS=30 (any number) sets its length.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/server_process.h"
#include "common/testing.h"
#include "gtest/gtest.h"

namespace tqdb {
namespace {

using client::ServerProcess;

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<float> RandomFloats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> out(n);
  for (float& x : out) x = normal(rng);
  return out;
}

// TEXMEX .fvecs: per row int32 d, then d float32.
void WriteFvecs(const std::string& path, const std::vector<float>& rows, int32_t dim) {
  std::ofstream out(path, std::ios::binary);
  for (size_t i = 0; i < rows.size() / dim; ++i) {
    out.write(reinterpret_cast<const char*>(&dim), sizeof dim);
    out.write(reinterpret_cast<const char*>(rows.data() + i * dim), sizeof(float) * dim);
  }
}

// A version 1.0 .npy of float32 [n, dim], C order.
void WriteNpy(const std::string& path, const std::vector<float>& rows, size_t dim) {
  std::string header = absl::StrCat("{'descr': '<f4', 'fortran_order': False, 'shape': (",
                                    rows.size() / dim, ", ", dim, "), }");
  // Magic (6) + version (2) + length (2) + header, padded to 64 bytes, '\n' last.
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&len), 2);
  out << header;
  out.write(reinterpret_cast<const char*>(rows.data()), sizeof(float) * rows.size());
}

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(::testing::TempDir() + "tqdb_cli_test_" + std::to_string(getpid()));
    std::filesystem::remove_all(*dir_);
    std::filesystem::create_directories(*dir_);
    server_ = new ServerProcess();
    ASSERT_OK(server_->Start(TQDB_SERVER_BIN, {"--data-dir", *dir_ + "/data"},
                             *dir_ + "/server.log"));
  }
  static void TearDownTestSuite() {
    const int status = server_->Kill(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    delete server_;
    server_ = nullptr;
    std::filesystem::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }

  static std::string Path(const std::string& name) { return *dir_ + "/" + name; }

  // Runs `tqdb --target <the server> args...`; `target` overrides it.
  static CliResult Run(std::vector<std::string> args, const std::string& target = "") {
    args.insert(args.begin(), {TQDB_CLI_BIN, "--target", target.empty() ? server_->target() : target});
    const std::string out_path = Path("cli.out"), err_path = Path("cli.err");
    const pid_t pid = fork();
    if (pid == 0) {
      const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(out, STDOUT_FILENO);
      dup2(err, STDERR_FILENO);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    CliResult result;
    int status = 0;
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) {
      result.exit_code = WEXITSTATUS(status);
    }
    result.out = ReadAll(out_path);
    result.err = ReadAll(err_path);
    return result;
  }

  static std::string* dir_;
  static ServerProcess* server_;
};

std::string* CliTest::dir_ = nullptr;
ServerProcess* CliTest::server_ = nullptr;

// Prints the result when an expectation on it fails.
std::string Show(const CliResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout:\n", r.out, "\nstderr:\n", r.err);
}

TEST_F(CliTest, UsageErrorsExit2) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {},
           {"frobnicate"},
           {"collections"},
           {"collections", "create", "x"},
           {"collections", "create", "x", "--dim", "0"},
           {"collections", "create", "x", "--dim", "4", "--layers", "2"},
           {"collections", "describe"},
           {"import", "x"},
           {"search", "x", "--k", "ten", "--query", "1,2"},
           {"search", "x", "--query", "1,a"},
           {"append", "x", "1", "--tokens", "5"},
           {"score", "x", "1"},
           {"bench", "--clients", "0"},
           {"bench", "--mix", "append=0,score=0,search=0"},
           {"stats", "--bogus"},
       }) {
    const CliResult r = Run(args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(args, " ") << "\n" << Show(r);
    EXPECT_TRUE(absl::StartsWith(r.err, "tqdb: ")) << Show(r);
  }
  const CliResult help = Run({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(help.out, "import COLLECTION FILE")) << Show(help);
}

TEST_F(CliTest, ServerErrorsExit1WithCode) {
  CliResult r = Run({"collections", "describe", "no_such"});
  EXPECT_EQ(r.exit_code, 1) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.err, "NOT_FOUND: ")) << Show(r);

  r = Run({"collections", "drop", "no_such"});
  EXPECT_EQ(r.exit_code, 1) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.err, "NOT_FOUND: ")) << Show(r);

  ASSERT_EQ(Run({"collections", "create", "dup", "--dim", "4"}).exit_code, 0);
  r = Run({"collections", "create", "dup", "--dim", "4"});
  EXPECT_EQ(r.exit_code, 1) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.err, "ALREADY_EXISTS: ")) << Show(r);

  // A query of the wrong dimension: the server's INVALID_ARGUMENT.
  r = Run({"search", "dup", "--query", "1,2,3"});
  EXPECT_EQ(r.exit_code, 1) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.err, "INVALID_ARGUMENT: ")) << Show(r);

  // An input file that does not exist.
  r = Run({"import", "dup", Path("missing.fvecs")});
  EXPECT_EQ(r.exit_code, 1) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.err, "NOT_FOUND: ")) << Show(r);
  EXPECT_EQ(Run({"collections", "drop", "dup"}).exit_code, 0);

  // Nobody listens on port 1.
  r = Run({"collections", "list"}, "127.0.0.1:1");
  EXPECT_EQ(r.exit_code, 1) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.err, "UNAVAILABLE: ")) << Show(r);
}

TEST_F(CliTest, CreateImportSearchDescribeDrop) {
  constexpr int kDim = 16, kN = 300;
  const std::vector<float> rows = RandomFloats(kN * kDim, 7);
  const std::string file = Path("base.fvecs");
  WriteFvecs(file, rows, kDim);

  CliResult r = Run({"collections", "create", "docs", "--dim", "16", "--metric", "l2",
                     "--keep-raw", "f32"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_TRUE(absl::StrContains(r.out, "metric: l2")) << Show(r);

  r = Run({"collections", "list"});
  EXPECT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_TRUE(absl::StrContains(r.out, "docs\tembedding\n")) << Show(r);

  // Small batches so the progress bar has steps to draw.
  r = Run({"import", "docs", file, "--batch", "64", "--progress", "always"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.out, "imported 300 vectors (dim 16) into docs")) << Show(r);
  EXPECT_TRUE(absl::StrContains(r.out, "vectors/s")) << Show(r);
  EXPECT_TRUE(absl::StrContains(r.err, "100%  300/300 vectors")) << Show(r);

  r = Run({"collections", "describe", "docs"});
  EXPECT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_TRUE(absl::StrContains(r.out, "count: 300\n")) << Show(r);
  EXPECT_TRUE(absl::StrContains(r.out, "dim: 16\n")) << Show(r);

  // Row 42 itself, reranked exactly against the raw vectors: id 42 at
  // distance 0 comes first.
  std::vector<std::string> coords;
  for (int j = 0; j < kDim; ++j) coords.push_back(absl::StrCat(rows[42 * kDim + j]));
  r = Run({"search", "docs", "--query", absl::StrJoin(coords, ","), "--k", "3", "--oversample",
           "8"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << Show(r);
  EXPECT_TRUE(absl::StartsWith(lines[0], "42\t")) << Show(r);

  // Queries from a file, scored against ground truth from the same rows:
  // query i is row i, so row i is its own nearest neighbour.
  const std::string queries = Path("queries.fvecs");
  WriteFvecs(queries, std::vector<float>(rows.begin(), rows.begin() + 5 * kDim), kDim);
  r = Run({"search", "docs", "--queries", queries, "--k", "1", "--oversample", "8"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << Show(r);
  for (int q = 0; q < 5; ++q) EXPECT_TRUE(absl::StartsWith(lines[q], absl::StrCat(q, "\t", q, "\t")));
  EXPECT_TRUE(absl::StrContains(r.err, "5 queries in")) << Show(r);

  r = Run({"stats", "docs", "--json"});
  EXPECT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_TRUE(absl::StrContains(r.out, "\"name\":\"docs\",\"kind\":\"embedding\",\"count\":300"))
      << Show(r);

  r = Run({"collections", "drop", "docs"});
  EXPECT_EQ(r.exit_code, 0) << Show(r);
  r = Run({"collections", "describe", "docs"});
  EXPECT_EQ(r.exit_code, 1) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.err, "NOT_FOUND: ")) << Show(r);
}

TEST_F(CliTest, ImportNpyCreatesTheCollection) {
  const std::string file = Path("vectors.npy");
  WriteNpy(file, RandomFloats(50 * 8, 3), 8);
  CliResult r = Run({"import", "fromnpy", file, "--create", "--metric", "cosine", "--start-id",
                     "1000"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.out, "imported 50 vectors (dim 8)")) << Show(r);
  EXPECT_EQ(r.err, "");  // no progress bar when stderr is not a terminal
  r = Run({"collections", "describe", "fromnpy"});
  EXPECT_TRUE(absl::StrContains(r.out, "count: 50\n")) << Show(r);
  EXPECT_TRUE(absl::StrContains(r.out, "metric: cosine\n")) << Show(r);
  // A file of another dimension is refused before anything is sent.
  const std::string wrong = Path("wrong.fvecs");
  WriteFvecs(wrong, RandomFloats(4 * 5, 4), 5);
  r = Run({"import", "fromnpy", wrong});
  EXPECT_EQ(r.exit_code, 1) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.err, "INVALID_ARGUMENT: ")) << Show(r);
  EXPECT_EQ(Run({"collections", "drop", "fromnpy"}).exit_code, 0);
}

TEST_F(CliTest, AppendAndScoreKv) {
  CliResult r = Run({"collections", "create", "cache", "--layers", "2", "--kv-heads", "2",
                     "--head-dim", "16"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_TRUE(absl::StrContains(r.out, "kind: kv")) << Show(r);

  r = Run({"append", "cache", "7", "--tokens", "100", "--random", "--chunk", "32"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.out, "appended 100 tokens to cache/7 (length 100)")) << Show(r);

  // 10 more tokens from .npy files: [layers * kv_heads * n, head_dim].
  WriteNpy(Path("k.npy"), RandomFloats(2 * 2 * 10 * 16, 5), 16);
  WriteNpy(Path("v.npy"), RandomFloats(2 * 2 * 10 * 16, 6), 16);
  r = Run({"append", "cache", "7", "--keys", Path("k.npy"), "--values", Path("v.npy"),
           "--chunk", "4"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.out, "appended 10 tokens to cache/7 (length 110)")) << Show(r);

  // A file whose rows do not split into layers × heads is refused.
  WriteNpy(Path("odd.npy"), RandomFloats(3 * 16, 7), 16);
  r = Run({"append", "cache", "7", "--keys", Path("odd.npy"), "--values", Path("odd.npy")});
  EXPECT_EQ(r.exit_code, 1) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.err, "INVALID_ARGUMENT: ")) << Show(r);

  // 4 query heads (2 per KV head), the best 3 tokens of each.
  r = Run({"score", "cache", "7", "--layer", "1", "--random", "--query-heads", "4", "--top",
           "3"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  const std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 12u) << Show(r);
  EXPECT_TRUE(absl::StrContains(r.err, "scored 4 query heads x 110 tokens")) << Show(r);

  // Queries from a file, over a token range.
  WriteNpy(Path("q.npy"), RandomFloats(2 * 16, 8), 16);
  r = Run({"score", "cache", "7", "--queries", Path("q.npy"), "--begin", "100", "--top", "20"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_TRUE(absl::StrContains(r.err, "scored 2 query heads x 10 tokens")) << Show(r);

  r = Run({"score", "cache", "8", "--random"});
  EXPECT_EQ(r.exit_code, 1) << Show(r);
  EXPECT_TRUE(absl::StartsWith(r.err, "NOT_FOUND: ")) << Show(r);

  r = Run({"stats"});
  EXPECT_EQ(r.exit_code, 0) << Show(r);
  EXPECT_TRUE(absl::StrContains(r.out, "sequences=1 stored_tokens=110")) << Show(r);
  r = Run({"collections", "describe", "cache"});
  EXPECT_TRUE(absl::StrContains(r.out, "tokens: 110\n")) << Show(r);
  EXPECT_EQ(Run({"collections", "drop", "cache"}).exit_code, 0);
}

// The load test of the issue: 16 concurrent clients of mixed Append, Score
// and Search for TQDB_LOAD_SECONDS (default 3) seconds, zero errors.
TEST_F(CliTest, BenchSixteenClientsZeroErrors) {
  std::string seconds = "3";
  if (const char* env = std::getenv("TQDB_LOAD_SECONDS"); env != nullptr && *env != '\0') {
    seconds = env;
  }
  // Short sequences (128 tokens, truncated back at 192) so truncation runs
  // too, between the Appends and Scores of each client.
  const CliResult r = Run({"bench", "--clients", "16", "--seconds", seconds, "--prefix", "load",
                           "--initial-tokens", "128", "--max-tokens", "192"});
  ASSERT_EQ(r.exit_code, 0) << Show(r);
  std::printf("%s", r.out.c_str());  // the JSON line, for the log
  const std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u) << Show(r);
  const std::string& json = lines[0];
  EXPECT_TRUE(absl::StartsWith(json, "{\"clients\":16,")) << json;
  EXPECT_TRUE(absl::StrContains(json, ",\"errors\":0,")) << json;
  for (const char* op : {"append", "score", "search"}) {
    EXPECT_TRUE(absl::StrContains(json, absl::StrCat("\"", op, "_errors\":0"))) << json;
    EXPECT_FALSE(absl::StrContains(json, absl::StrCat("\"", op, "_ops\":0,"))) << json;
  }
  // The bench dropped what it created.
  const CliResult list = Run({"collections", "list"});
  EXPECT_FALSE(absl::StrContains(list.out, "load_")) << Show(list);
}

}  // namespace
}  // namespace tqdb
