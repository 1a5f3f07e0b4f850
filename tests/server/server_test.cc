// End-to-end tests of tqdb-server through the C++ client: a real server
// process on an ephemeral port, every RPC with both vector encodings (packed
// f32 bytes and repeated floats), the exact status of bad inputs (which must
// store nothing), authentication, message limits, and kill -9 + restart.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/server_process.h"
#include "common/testing.h"
#include "gtest/gtest.h"
#include "common/fp16.h"
#include "tqdb/v1/tqdb.grpc.pb.h"

namespace tqdb {
namespace {

using client::Client;
using client::ClientOptions;
using client::Encoding;
using client::ServerProcess;

constexpr int kLayers = 2;
constexpr int kKvHeads = 2;
constexpr int kHeadDim = 16;
constexpr int kDim = 8;

std::string NewDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "tqdb_server_test_" + name + "_" +
                          std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::vector<float> RandomFloats(size_t n, uint32_t seed) {
  return testing::UniformFloats(n, seed, -1.0f, 1.0f);
}

// Values exactly representable in f16 and bf16 (multiples of 1/16 in [-1, 1]).
std::vector<float> GridFloats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(-16, 16);
  std::vector<float> out(n);
  for (float& x : out) x = static_cast<float>(u(rng)) / 16.0f;
  return out;
}

std::vector<uint8_t> ToF16(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = FloatToHalf(v[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

std::vector<uint8_t> ToBf16(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &v[i], 4);
    const uint16_t h = static_cast<uint16_t>(bits >> 16);  // exact for GridFloats
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

double RelativeError(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  return std::sqrt(err / norm);
}

std::string ServerBinary() { return TQDB_SERVER_BIN; }

std::unique_ptr<Client> Connect(const ServerProcess& server, Encoding encoding,
                                const std::string& token = "") {
  ClientOptions options;
  options.target = server.target();
  options.encoding = encoding;
  options.auth_token = token;
  options.timeout = std::chrono::seconds(20);
  auto client = Client::Connect(options);
  EXPECT_OK(client);
  return std::move(client).value();
}

// One plain server shared by the tests of this file that need no special
// flags (a process start is the slow part).
class ServerTest : public ::testing::TestWithParam<Encoding> {
 protected:
  static void SetUpTestSuite() {
    dir_ = NewDir("shared");
    server_ = new ServerProcess();
    const absl::Status started =
        server_->Start(ServerBinary(), {"--data-dir", dir_ + "/data"}, dir_ + "/server.log");
    ASSERT_OK(started);
  }
  static void TearDownTestSuite() {
    // Graceful shutdown: SIGTERM ends the process with status 0.
    const int status = server_->Kill(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    delete server_;
    server_ = nullptr;
    std::filesystem::remove_all(dir_);
  }

  void SetUp() override { client_ = Connect(*server_, GetParam()); }

  // A name unique to the test and encoding.
  std::string Name(const std::string& base) const {
    return base + (GetParam() == Encoding::kPacked ? "_packed" : "_floats");
  }

  // Raw stubs for requests the typed client cannot make (malformed tensors).
  std::unique_ptr<v1::Kv::Stub> RawKv() const {
    return v1::Kv::NewStub(
        grpc::CreateChannel(server_->target(), grpc::InsecureChannelCredentials()));
  }

  static std::string dir_;
  static ServerProcess* server_;
  std::unique_ptr<Client> client_;
};

std::string ServerTest::dir_;
ServerProcess* ServerTest::server_ = nullptr;

INSTANTIATE_TEST_SUITE_P(Encodings, ServerTest,
                         ::testing::Values(Encoding::kPacked, Encoding::kFloats),
                         [](const ::testing::TestParamInfo<Encoding>& info) {
                           return info.param == Encoding::kPacked ? "Packed" : "Floats";
                         });

TEST_P(ServerTest, HealthAndCollections) {
  auto healthy = client_->Healthy();
  ASSERT_OK(healthy);
  EXPECT_TRUE(*healthy);

  client::KvConfig kv;
  kv.num_layers = kLayers;
  kv.num_kv_heads = kKvHeads;
  kv.head_dim = kHeadDim;
  auto created = client_->CreateKvCollection(Name("coll_kv"), kv);
  ASSERT_OK(created);
  EXPECT_EQ(created->kind, client::CollectionKind::kKv);
  EXPECT_EQ(created->kv.key_format, "tq4");  // the default, filled in
  EXPECT_EQ(created->kv.page_tokens, 64);
  EXPECT_STATUS_CODE(client_->CreateKvCollection(Name("coll_kv"), kv),
                     absl::StatusCode::kAlreadyExists);

  client::EmbeddingConfig emb;
  emb.dim = kDim;
  emb.metric = client::Metric::kL2;
  ASSERT_OK(client_->CreateEmbeddingCollection(Name("coll_emb"), emb));
  EXPECT_STATUS_CODE(client_->CreateEmbeddingCollection(Name("coll_kv"), emb),
                     absl::StatusCode::kAlreadyExists);

  // Bad configurations and names store nothing.
  client::KvConfig bad_kv;
  EXPECT_STATUS_CODE(client_->CreateKvCollection(Name("coll_bad"), bad_kv),
                     absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(client_->CreateEmbeddingCollection("bad/name", emb),
                     absl::StatusCode::kInvalidArgument);

  auto list = client_->ListCollections();
  ASSERT_OK(list);
  bool saw_kv = false, saw_emb = false;
  for (const auto& e : *list) {
    EXPECT_NE(e.name, Name("coll_bad"));
    if (e.name == Name("coll_kv")) saw_kv = e.kind == client::CollectionKind::kKv;
    if (e.name == Name("coll_emb")) saw_emb = e.kind == client::CollectionKind::kEmbedding;
  }
  EXPECT_TRUE(saw_kv);
  EXPECT_TRUE(saw_emb);

  auto described = client_->DescribeCollection(Name("coll_emb"));
  ASSERT_OK(described);
  EXPECT_EQ(described->kind, client::CollectionKind::kEmbedding);
  EXPECT_EQ(described->embedding.dim, kDim);
  EXPECT_EQ(described->embedding.metric, client::Metric::kL2);
  EXPECT_EQ(described->embedding_stats.count, 0u);
  EXPECT_STATUS_CODE(client_->DescribeCollection(Name("coll_none")),
                     absl::StatusCode::kNotFound);

  ASSERT_OK(client_->DropCollection(Name("coll_emb")));
  EXPECT_STATUS_CODE(client_->DescribeCollection(Name("coll_emb")), absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE(client_->DropCollection(Name("coll_emb")), absl::StatusCode::kNotFound);
}

TEST_P(ServerTest, KvRoundTrip) {
  const std::string c = Name("kv");
  client::KvConfig config;
  config.num_layers = kLayers;
  config.num_kv_heads = kKvHeads;
  config.head_dim = kHeadDim;
  ASSERT_OK(client_->CreateKvCollection(c, config));
  ASSERT_OK(client_->CreateSequence(c, 1));
  EXPECT_STATUS_CODE(client_->CreateSequence(c, 1), absl::StatusCode::kAlreadyExists);
  EXPECT_STATUS_CODE(client_->CreateSequence(Name("kv_none"), 1), absl::StatusCode::kNotFound);

  const size_t per_token = kLayers * kKvHeads * kHeadDim;
  const size_t n = 40;
  // Appended token by token in [L][H][1][D] pieces, so gather the full
  // [L][H][n][D] tensors alongside.
  std::vector<float> keys(per_token * n), values(per_token * n);
  for (size_t t = 0; t < n; ++t) {
    const std::vector<float> k = RandomFloats(per_token, 100 + t);
    const std::vector<float> v = RandomFloats(per_token, 1000 + t);
    for (size_t lh = 0; lh < kLayers * kKvHeads; ++lh) {
      std::memcpy(&keys[(lh * n + t) * kHeadDim], &k[lh * kHeadDim], kHeadDim * 4);
      std::memcpy(&values[(lh * n + t) * kHeadDim], &v[lh * kHeadDim], kHeadDim * 4);
    }
    if (t < 30) {
      auto appended = client_->Append(c, 1, 1, k, v);
      ASSERT_OK(appended);
      EXPECT_EQ(appended->appended, 1u);
      EXPECT_EQ(appended->length, t + 1);
    }
  }
  // The last 10 tokens through AppendStream, 5 at a time, n_tokens inferred.
  auto stream = client_->OpenAppendStream();
  for (size_t t0 = 30; t0 < n; t0 += 5) {
    std::vector<float> k(per_token * 5), v(per_token * 5);
    for (size_t lh = 0; lh < kLayers * kKvHeads; ++lh) {
      std::memcpy(&k[lh * 5 * kHeadDim], &keys[(lh * n + t0) * kHeadDim], 5 * kHeadDim * 4);
      std::memcpy(&v[lh * 5 * kHeadDim], &values[(lh * n + t0) * kHeadDim], 5 * kHeadDim * 4);
    }
    ASSERT_OK(stream->Write(c, 1, 0, k, v));
  }
  auto streamed = stream->Finish();
  ASSERT_OK(streamed);
  EXPECT_EQ(streamed->appended, 10u);
  EXPECT_EQ(streamed->length, n);

  // Bad appends: each INVALID_ARGUMENT or NOT_FOUND, and the length stays.
  const std::vector<float> k1 = RandomFloats(per_token, 7), v1 = RandomFloats(per_token, 8);
  auto wrong = client_->Append(c, 1, 1, absl::MakeConstSpan(k1).subspan(1), v1);
  EXPECT_STATUS_CODE(wrong, absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.status().message().find("num_layers=2, num_kv_heads=2"), std::string::npos)
      << wrong.status();
  EXPECT_STATUS_CODE(client_->Append(c, 1, 2, k1, v1), absl::StatusCode::kInvalidArgument);
  std::vector<float> nan = k1;
  nan[5] = std::nanf("");
  EXPECT_STATUS_CODE(client_->Append(c, 1, 1, nan, v1), absl::StatusCode::kInvalidArgument);
  std::vector<float> inf = v1;
  inf[0] = INFINITY;
  EXPECT_STATUS_CODE(client_->Append(c, 1, 1, k1, inf), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(client_->Append(c, 99, 1, k1, v1), absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE(client_->Append(Name("kv_none"), 1, 1, k1, v1), absl::StatusCode::kNotFound);
  auto bad_stream = client_->OpenAppendStream();
  (void)bad_stream->Write(c, 99, 1, k1, v1);
  EXPECT_STATUS_CODE(bad_stream->Finish(), absl::StatusCode::kNotFound);
  {
    // A packed tensor without a dtype.
    v1::AppendRequest req;
    req.set_collection(c);
    req.set_sequence_id(1);
    req.mutable_keys()->set_data(std::string(per_token * 4, '\0'));
    req.mutable_values()->set_data(std::string(per_token * 4, '\0'));
    v1::AppendResponse resp;
    grpc::ClientContext ctx;
    const grpc::Status s = RawKv()->Append(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    // Both encodings at once.
    req.mutable_keys()->set_dtype(v1::DTYPE_F32);
    req.mutable_values()->set_dtype(v1::DTYPE_F32);
    req.mutable_keys()->add_values(1.0f);
    grpc::ClientContext ctx2;
    EXPECT_EQ(RawKv()->Append(&ctx2, req, &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  auto length = client_->SequenceLength(c, 1);
  ASSERT_OK(length);
  EXPECT_EQ(*length, n);

  // Read: decoded tokens close to the originals; chunked reads agree.
  std::vector<float> rk, rv, ck, cv;
  ASSERT_OK(client_->Read(c, 1, 0, std::nullopt, &rk, &rv));
  ASSERT_EQ(rk.size(), keys.size());
  EXPECT_LT(RelativeError(rk, keys), 0.2);
  EXPECT_LT(RelativeError(rv, values), 0.2);
  ASSERT_OK(client_->Read(c, 1, 0, n, &ck, &cv, /*chunk_tokens=*/7));
  EXPECT_EQ(ck, rk);
  EXPECT_EQ(cv, rv);
  EXPECT_STATUS_CODE(client_->Read(c, 1, 5, n + 1, &ck, &cv), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(client_->Read(c, 42, 0, std::nullopt, &ck, &cv),
                     absl::StatusCode::kNotFound);

  // Score: H = 4 query heads (2 per KV head) against layer 1, vs the exact
  // dot products with the decoded keys.
  const int heads = 4;
  const std::vector<float> q = RandomFloats(heads * kHeadDim, 55);
  auto logits = client_->Score(c, 1, 1, q);
  ASSERT_OK(logits);
  ASSERT_EQ(logits->size(), heads * n);
  for (int h = 0; h < heads; ++h) {
    const int kvh = h / (heads / kKvHeads);
    for (size_t t = 0; t < n; ++t) {
      const float* k = &rk[((1 * kKvHeads + kvh) * n + t) * kHeadDim];
      double dot = 0, qn = 0, kn = 0;
      for (int d = 0; d < kHeadDim; ++d) {
        dot += q[h * kHeadDim + d] * k[d];
        qn += q[h * kHeadDim + d] * q[h * kHeadDim + d];
        kn += k[d] * k[d];
      }
      EXPECT_NEAR((*logits)[h * n + t], dot, 0.05 * std::sqrt(qn * kn)) << h << " " << t;
    }
  }
  client::RangeOptions range;
  range.begin = 10;
  range.end = 20;
  auto part = client_->Score(c, 1, 1, q, range);
  ASSERT_OK(part);
  ASSERT_EQ(part->size(), heads * 10u);
  EXPECT_NEAR((*part)[0], (*logits)[10], 1e-4);

  // Attend: against softmax over the decoded keys and values.
  auto out = client_->Attend(c, 1, 0, q);
  ASSERT_OK(out);
  ASSERT_EQ(out->size(), heads * kHeadDim * 1u);
  for (int h = 0; h < heads; ++h) {
    const int kvh = h / (heads / kKvHeads);
    std::vector<double> p(n);
    double max = -1e30, sum = 0;
    for (size_t t = 0; t < n; ++t) {
      double dot = 0;
      for (int d = 0; d < kHeadDim; ++d) {
        dot += q[h * kHeadDim + d] * rk[((0 * kKvHeads + kvh) * n + t) * kHeadDim + d];
      }
      p[t] = dot / std::sqrt(double{kHeadDim});
      max = std::max(max, p[t]);
    }
    for (double& x : p) sum += (x = std::exp(x - max));
    for (int d = 0; d < kHeadDim; ++d) {
      double want = 0;
      for (size_t t = 0; t < n; ++t) {
        want += p[t] / sum * rv[((0 * kKvHeads + kvh) * n + t) * kHeadDim + d];
      }
      EXPECT_NEAR((*out)[h * kHeadDim + d], want, 0.05) << h << " " << d;
    }
  }

  // Half-precision results: the f32 result rounded to nearest even, whatever
  // the queries' form (the client widens them back to floats).
  auto attended = client_->Attend(c, 1, 1, q);
  ASSERT_OK(attended);
  for (client::DType dtype : {client::DType::kF16, client::DType::kBF16}) {
    client::RangeOptions half;
    half.result_dtype = dtype;
    auto round = [&](float x) {
      return dtype == client::DType::kF16 ? HalfToFloat(FloatToHalf(x))
                                          : Bf16ToFloat(FloatToBf16(x));
    };
    auto half_logits = client_->Score(c, 1, 1, q, half);
    auto half_out = client_->Attend(c, 1, 1, q, half);
    ASSERT_OK(half_logits);
    ASSERT_OK(half_out);
    ASSERT_EQ(half_logits->size(), logits->size());
    ASSERT_EQ(half_out->size(), attended->size());
    for (size_t i = 0; i < logits->size(); ++i) {
      ASSERT_EQ((*half_logits)[i], round((*logits)[i])) << "logit " << i;
    }
    for (size_t i = 0; i < attended->size(); ++i) {
      ASSERT_EQ((*half_out)[i], round((*attended)[i])) << "output " << i;
    }
  }
  {  // A result dtype outside the enum.
    v1::ScoreRequest req;
    req.set_collection(c);
    req.set_sequence_id(1);
    req.set_layer(1);
    req.mutable_queries()->mutable_values()->Assign(q.begin(), q.end());
    req.set_result_dtype(static_cast<v1::DType>(9));
    v1::ScoreResponse resp;
    grpc::ClientContext ctx;
    EXPECT_EQ(RawKv()->Score(&ctx, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }

  {  // Bytes that do not parse as a ScoreRequest (Score parses its own).
    grpc::GenericStub generic(
        grpc::CreateChannel(server_->target(), grpc::InsecureChannelCredentials()));
    const char garbage[] = "\x0a\xff\xff\xff\x0f";  // a field longer than the message
    grpc::Slice slice(garbage, sizeof(garbage) - 1);
    const grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::ClientContext ctx;
    grpc::CompletionQueue cq;
    auto call = generic.PrepareUnaryCall(&ctx, "/tqdb.v1.Kv/Score", request, &cq);
    call->StartCall();
    grpc::Status status;
    call->Finish(&response, &status, &status);
    void* tag = nullptr;
    bool ok = false;
    ASSERT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
  }

  // Bad queries and ranges.
  EXPECT_STATUS_CODE(client_->Score(c, 1, 0, absl::MakeConstSpan(q).subspan(1)),
                     absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(client_->Score(c, 1, 0, absl::MakeConstSpan(q).subspan(0, 3 * kHeadDim)),
                     absl::StatusCode::kInvalidArgument);  // 3 heads, not a multiple of 2
  EXPECT_STATUS_CODE(client_->Score(c, 1, kLayers, q), absl::StatusCode::kInvalidArgument);
  std::vector<float> qnan = q;
  qnan[3] = std::nanf("");
  EXPECT_STATUS_CODE(client_->Score(c, 1, 0, qnan), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(client_->Attend(c, 1, 0, qnan), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(client_->Score(c, 7, 0, q), absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE(client_->Attend(c, 7, 0, q), absl::StatusCode::kNotFound);
  client::RangeOptions empty;
  empty.begin = 5;
  empty.end = 5;
  EXPECT_STATUS_CODE(client_->Attend(c, 1, 0, q, empty), absl::StatusCode::kInvalidArgument);

  // Fork, Truncate, DropSequence, ListSequences.
  auto forked = client_->Fork(c, 1, 2, 25);
  ASSERT_OK(forked);
  EXPECT_EQ(*forked, 25u);
  EXPECT_STATUS_CODE(client_->Fork(c, 1, 2), absl::StatusCode::kAlreadyExists);
  EXPECT_STATUS_CODE(client_->Fork(c, 1, 3, n + 1), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(client_->Fork(c, 9, 3), absl::StatusCode::kNotFound);
  std::vector<float> fk, fv;
  ASSERT_OK(client_->Read(c, 2, 0, std::nullopt, &fk, &fv));
  EXPECT_EQ(fk.size(), per_token * 25);
  ASSERT_OK(client_->Truncate(c, 1, 12));
  EXPECT_STATUS_CODE(client_->Truncate(c, 1, 13), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(client_->Truncate(c, 9, 0), absl::StatusCode::kNotFound);
  EXPECT_EQ(*client_->SequenceLength(c, 1), 12u);
  EXPECT_EQ(*client_->SequenceLength(c, 2), 25u);  // the fork keeps its tokens
  auto seqs = client_->ListSequences(c);
  ASSERT_OK(seqs);
  EXPECT_EQ(*seqs, (std::vector<uint64_t>{1, 2}));
  ASSERT_OK(client_->DropSequence(c, 1));
  EXPECT_STATUS_CODE(client_->DropSequence(c, 1), absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE(client_->SequenceLength(c, 1), absl::StatusCode::kNotFound);
  std::vector<float> fk2, fv2;
  ASSERT_OK(client_->Read(c, 2, 0, std::nullopt, &fk2, &fv2));
  EXPECT_EQ(fk2, fk);

  auto described = client_->DescribeCollection(c);
  ASSERT_OK(described);
  EXPECT_EQ(described->kv_stats.sequences, 1u);
  EXPECT_EQ(described->kv_stats.tokens, 25u);
}

TEST_P(ServerTest, KvHalfPrecisionBytes) {
  const std::string c = Name("kv_half");
  client::KvConfig config;
  config.num_layers = kLayers;
  config.num_kv_heads = kKvHeads;
  config.head_dim = kHeadDim;
  ASSERT_OK(client_->CreateKvCollection(c, config));
  const size_t n = 3, per_token = kLayers * kKvHeads * kHeadDim;
  const std::vector<float> k = GridFloats(per_token * n, 1), v = GridFloats(per_token * n, 2);
  for (uint64_t seq : {1, 2, 3, 4}) ASSERT_OK(client_->CreateSequence(c, seq));
  ASSERT_OK(client_->Append(c, 1, n, k, v));
  ASSERT_OK(client_->AppendBytes(c, 2, n, client::DType::kF16, ToF16(k), ToF16(v)));
  ASSERT_OK(client_->AppendBytes(c, 3, n, client::DType::kBF16, ToBf16(k), ToBf16(v)));
  // Streamed bf16, one token a message (tensors are [layer][head][token][dim]).
  auto stream = client_->OpenAppendStream();
  for (size_t t = 0; t < n; ++t) {
    std::vector<float> kt, vt;
    for (size_t row = 0; row < kLayers * kKvHeads; ++row) {
      const size_t at = (row * n + t) * kHeadDim;
      kt.insert(kt.end(), k.begin() + at, k.begin() + at + kHeadDim);
      vt.insert(vt.end(), v.begin() + at, v.begin() + at + kHeadDim);
    }
    ASSERT_OK(stream->WriteBytes(c, 4, 1, client::DType::kBF16, ToBf16(kt), ToBf16(vt)));
  }
  auto streamed = stream->Finish();
  ASSERT_OK(streamed);
  EXPECT_EQ(streamed->appended, n);
  // The same values in any dtype encode to the same codes.
  std::vector<float> k1, v1, k2, v2, k3, v3, k4, v4;
  ASSERT_OK(client_->Read(c, 1, 0, std::nullopt, &k1, &v1));
  ASSERT_OK(client_->Read(c, 2, 0, std::nullopt, &k2, &v2));
  ASSERT_OK(client_->Read(c, 3, 0, std::nullopt, &k3, &v3));
  ASSERT_OK(client_->Read(c, 4, 0, std::nullopt, &k4, &v4));
  EXPECT_EQ(k1, k2);
  EXPECT_EQ(k1, k3);
  EXPECT_EQ(v1, v3);
  EXPECT_EQ(k1, k4);
  EXPECT_EQ(v1, v4);
  // Odd byte counts and an f16 infinity.
  std::vector<uint8_t> odd = ToF16(k);
  odd.pop_back();
  EXPECT_STATUS_CODE(client_->AppendBytes(c, 2, n, client::DType::kF16, odd, ToF16(v)),
                     absl::StatusCode::kInvalidArgument);
  std::vector<uint8_t> inf = ToF16(k);
  inf[0] = 0x00;
  inf[1] = 0x7c;
  EXPECT_STATUS_CODE(client_->AppendBytes(c, 2, n, client::DType::kF16, inf, ToF16(v)),
                     absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*client_->SequenceLength(c, 2), n);
}

TEST_P(ServerTest, Vectors) {
  const std::string c = Name("vec");
  client::EmbeddingConfig config;
  config.dim = kDim;
  config.keep_raw = client::RawType::kF32;
  ASSERT_OK(client_->CreateEmbeddingCollection(c, config));
  const size_t n = 200;
  std::vector<uint64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = 1000 + i;
  const std::vector<float> x = RandomFloats(n * kDim, 3);
  auto upserted = client_->Upsert(c, ids, x);
  ASSERT_OK(upserted);
  EXPECT_EQ(*upserted, n);

  // Get returns the raw vectors (kept as f32) and found flags.
  std::vector<float> got;
  std::vector<bool> found;
  const std::vector<uint64_t> some = {1000, 5, 1199};
  ASSERT_OK(client_->Get(c, some, &got, &found));
  EXPECT_EQ(found, (std::vector<bool>{true, false, true}));
  ASSERT_EQ(got.size(), 3u * kDim);
  for (int d = 0; d < kDim; ++d) {
    EXPECT_EQ(got[d], x[d]);
    EXPECT_EQ(got[kDim + d], 0.0f);
    EXPECT_EQ(got[2 * kDim + d], x[199 * kDim + d]);
  }

  // Search with exact reranking finds each vector as its own best match
  // under inner product when scaled up (distinct norms make it unique).
  auto hits = client_->Search(c, absl::MakeConstSpan(x).subspan(17 * kDim, kDim), 5, 10);
  ASSERT_OK(hits);
  ASSERT_EQ(hits->size(), 5u);
  for (size_t i = 1; i < hits->size(); ++i) {
    EXPECT_GE((*hits)[i - 1].distance, (*hits)[i].distance);
  }
  double self = 0;
  for (int d = 0; d < kDim; ++d) self += x[17 * kDim + d] * x[17 * kDim + d];
  bool has_self = false;
  for (const auto& h : *hits) has_self |= h.id == 1017;
  EXPECT_TRUE(has_self);
  auto batch = client_->SearchBatch(c, absl::MakeConstSpan(x).subspan(0, 3 * kDim), 4);
  ASSERT_OK(batch);
  ASSERT_EQ(batch->size(), 3u);
  for (const auto& r : *batch) EXPECT_EQ(r.size(), 4u);
  // More results than vectors: padding is dropped.
  auto all = client_->Search(c, absl::MakeConstSpan(x).subspan(0, kDim), 500);
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), n);

  // Bad inputs store nothing.
  EXPECT_STATUS_CODE(client_->Search(c, absl::MakeConstSpan(x).subspan(0, kDim), 0),
                     absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(client_->Search(c, absl::MakeConstSpan(x).subspan(0, kDim), -3),
                     absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(client_->SearchBatch(c, absl::MakeConstSpan(x).subspan(0, kDim), 0),
                     absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(client_->Search(c, absl::MakeConstSpan(x).subspan(0, kDim - 1), 3),
                     absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(client_->SearchBatch(c, absl::MakeConstSpan(x).subspan(0, kDim + 1), 3),
                     absl::StatusCode::kInvalidArgument);
  std::vector<float> qnan(x.begin(), x.begin() + kDim);
  qnan[2] = std::nanf("");
  EXPECT_STATUS_CODE(client_->Search(c, qnan, 3), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(client_->Search(Name("vec_none"), qnan, 3), absl::StatusCode::kNotFound);
  const std::vector<uint64_t> new_ids = {1, 2};
  std::vector<float> two(x.begin(), x.begin() + 2 * kDim);
  EXPECT_STATUS_CODE(client_->Upsert(c, new_ids, absl::MakeConstSpan(two).subspan(1)),
                     absl::StatusCode::kInvalidArgument);
  two[kDim + 1] = INFINITY;
  EXPECT_STATUS_CODE(client_->Upsert(c, new_ids, two), absl::StatusCode::kInvalidArgument);
  const std::vector<uint64_t> dup = {1, 1};
  two[kDim + 1] = 0.5f;
  EXPECT_STATUS_CODE(client_->Upsert(c, dup, two), absl::StatusCode::kInvalidArgument);
  EXPECT_STATUS_CODE(client_->Upsert(Name("vec_none"), new_ids, two),
                     absl::StatusCode::kNotFound);
  EXPECT_STATUS_CODE(client_->Get(Name("vec_none"), new_ids, &got, &found),
                     absl::StatusCode::kNotFound);
  ASSERT_OK(client_->Get(c, new_ids, &got, &found));
  EXPECT_EQ(found, (std::vector<bool>{false, false}));
  EXPECT_EQ(client_->DescribeCollection(c)->embedding_stats.count, n);

  // f16 bytes: stored as the same values.
  const std::vector<float> grid = GridFloats(2 * kDim, 9);
  ASSERT_OK(client_->UpsertBytes(c, new_ids, client::DType::kF16, ToF16(grid)));
  ASSERT_OK(client_->Get(c, new_ids, &got, &found));
  EXPECT_EQ(got, grid);

  // Delete.
  const std::vector<uint64_t> del = {1, 2, 3};
  auto deleted = client_->Delete(c, del);
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, 2u);
  EXPECT_STATUS_CODE(client_->Delete(Name("vec_none"), del), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->DescribeCollection(c)->embedding_stats.count, n);
}

// A server with a token and a 1 MiB message limit.
// Health answers, and a new embedding collection "e" takes a vector: the
// connection works end to end.
void ExpectServing(Client& client) {
  auto healthy = client.Healthy();
  ASSERT_OK(healthy);
  EXPECT_TRUE(*healthy);
  client::EmbeddingConfig config;
  config.dim = kDim;
  ASSERT_OK(client.CreateEmbeddingCollection("e", config));
  ASSERT_OK(client.Upsert("e", std::vector<uint64_t>{7}, std::vector<float>(kDim, 0.5f)));
  EXPECT_EQ(client.DescribeCollection("e")->embedding_stats.count, 1u);
}

// A long SearchBatch stops at its deadline: the client gets
// DEADLINE_EXCEEDED, and the server's log line for the call shows the handler
// returned after far less than the whole batch takes (it tests the deadline
// and cancellation between slices of 64 queries; without that it would finish
// the batch first). The server logs DEADLINE_EXCEEDED, or CANCELLED when the
// client's deadline (which comes first) has already reset the stream.
TEST_P(ServerTest, SearchBatchStopsAtItsDeadline) {
  const std::string c = Name("deadline");
  constexpr int kDeadlineDim = 128;
  constexpr size_t kVectors = 20000, kBatch = 5000;
  client::EmbeddingConfig config;
  config.dim = kDeadlineDim;
  ASSERT_OK(client_->CreateEmbeddingCollection(c, config));
  for (size_t at = 0; at < kVectors; at += kBatch) {
    std::vector<uint64_t> ids(kBatch);
    for (size_t i = 0; i < kBatch; ++i) ids[i] = at + i;
    ASSERT_OK(client_->Upsert(c, ids, RandomFloats(kBatch * kDeadlineDim, 20 + at)));
  }
  // Enough queries that the whole batch takes at least 100 ms here.
  std::vector<float> queries;
  std::chrono::steady_clock::duration whole{};
  for (size_t nq = 512; nq <= 65536 && whole < std::chrono::milliseconds(100); nq *= 2) {
    queries = RandomFloats(nq * kDeadlineDim, 30);
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_OK(client_->SearchBatch(c, queries, 10));
    whole = std::chrono::steady_clock::now() - t0;
  }
  ASSERT_GE(whole, std::chrono::milliseconds(100));

  ClientOptions options;
  options.target = server_->target();
  options.encoding = GetParam();
  options.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(whole / 10);
  auto hurried = Client::Connect(options);
  ASSERT_OK(hurried);
  EXPECT_STATUS_CODE((*hurried)->SearchBatch(c, queries, 10).status(),
                     absl::StatusCode::kDeadlineExceeded);

  // The server logs the call when its handler returns: the one line for this
  // collection whose code is not OK.
  const std::string wanted = "method=Vectors/SearchBatch collection=\"" + c + "\"";
  std::string stopped;
  for (int attempt = 0; attempt < 100 && stopped.empty(); ++attempt) {
    std::ifstream log(dir_ + "/server.log");
    for (std::string line; std::getline(log, line);) {
      if (line.find(wanted) != std::string::npos && line.find("code=OK") == std::string::npos) {
        stopped = line;
      }
    }
    if (stopped.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(stopped.empty()) << "the server logged no stopped SearchBatch on " << c;
  EXPECT_TRUE(stopped.find("code=DEADLINE_EXCEEDED") != std::string::npos ||
              stopped.find("code=CANCELLED") != std::string::npos)
      << stopped;
  const size_t at = stopped.find("latency_us=");
  ASSERT_NE(at, std::string::npos) << stopped;
  const int64_t latency_us = std::atoll(stopped.c_str() + at + std::strlen("latency_us="));
  EXPECT_LT(latency_us, std::chrono::duration_cast<std::chrono::microseconds>(whole).count() / 2)
      << stopped;
  ASSERT_OK(client_->DropCollection(c));
}

// A runtime on the same machine may connect over a Unix socket: the server
// reports the socket as its address, serves calls on it, and does not warn of
// a network address without a token.
TEST(ServerUnixSocketTest, ServesOnAUnixSocket) {
  const std::string dir = NewDir("unix");
  const std::string socket = "unix:" + dir + "/tqdb.sock";
  ServerProcess server;
  ASSERT_OK(server.Start(ServerBinary(), {"--data-dir", dir + "/data"}, dir + "/server.log",
                         socket));
  EXPECT_EQ(server.target(), socket);
  EXPECT_EQ(server.port(), 0);
  auto client = Connect(server, Encoding::kPacked);
  ExpectServing(*client);
  client.reset();
  const int status = server.Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::ifstream log(dir + "/server.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find("warning"), std::string::npos) << text;
  std::filesystem::remove_all(dir);
}

TEST(ServerAuthTest, TokenAndMessageLimit) {
  const std::string dir = NewDir("auth");
  const std::string token_file = dir + "/token";
  std::ofstream(token_file) << "s3cret\n";
  ServerProcess server;
  ASSERT_OK(server.Start(ServerBinary(),
                         {"--data-dir", dir + "/data", "--auth-token-file", token_file,
                          "--max-message-mb", "1"},
                         dir + "/server.log"));
  auto anonymous = Connect(server, Encoding::kPacked);
  auto wrong = Connect(server, Encoding::kPacked, "guess");
  auto good = Connect(server, Encoding::kPacked, "s3cret");

  // Health answers without a token.
  auto healthy = anonymous->Healthy();
  ASSERT_OK(healthy);
  EXPECT_TRUE(*healthy);

  client::EmbeddingConfig config;
  config.dim = kDim;
  for (Client* c : {anonymous.get(), wrong.get()}) {
    EXPECT_STATUS_CODE(c->ListCollections(), absl::StatusCode::kUnauthenticated);
    EXPECT_STATUS_CODE(c->CreateEmbeddingCollection("e", config),
                       absl::StatusCode::kUnauthenticated);
    EXPECT_STATUS_CODE(c->CreateSequence("e", 1), absl::StatusCode::kUnauthenticated);
    EXPECT_STATUS_CODE(c->OpenAppendStream()->Finish(), absl::StatusCode::kUnauthenticated);
    // Score is served through the callback API: the same check.
    EXPECT_STATUS_CODE(c->Score("e", 1, 0, std::vector<float>(kHeadDim, 1.0f)),
                       absl::StatusCode::kUnauthenticated);
  }
  auto list = good->ListCollections();
  ASSERT_OK(list);
  EXPECT_TRUE(list->empty());  // the unauthenticated creates stored nothing
  ASSERT_OK(good->CreateEmbeddingCollection("e", config));
  const std::vector<uint64_t> ids = {1};
  const std::vector<float> v(kDim, 0.5f);
  EXPECT_STATUS_CODE(anonymous->Upsert("e", ids, v), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(good->DescribeCollection("e")->embedding_stats.count, 0u);
  ASSERT_OK(good->Upsert("e", ids, v));

  // Above the 1 MiB limit.
  const size_t n = (size_t{1} << 20) / (kDim * 4) + 10;
  std::vector<uint64_t> many(n);
  for (size_t i = 0; i < n; ++i) many[i] = i + 10;
  const std::vector<float> big(n * kDim, 0.25f);
  EXPECT_STATUS_CODE(good->Upsert("e", many, big), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(good->DescribeCollection("e")->embedding_stats.count, 1u);
  std::filesystem::remove_all(dir);
}

// A TLS server (a self-signed certificate made for the test): a client that
// trusts the certificate works; plaintext clients and clients that trust only
// the system's roots cannot connect.
TEST(ServerTlsTest, TrustedClientsOnly) {
  const std::string dir = NewDir("tls");
  const std::string cert = dir + "/cert.pem", key = dir + "/key.pem";
  const std::string make_cert =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
      " -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " + key + " -out " + cert +
      " >" + dir + "/openssl.log 2>&1";
  if (std::system(make_cert.c_str()) != 0) {
    GTEST_SKIP() << "openssl could not make a certificate (scripts/install-deps.sh installs it)";
  }
  ServerProcess server;
  ASSERT_OK(server.Start(ServerBinary(),
                         {"--data-dir", dir + "/data", "--tls-cert", cert, "--tls-key", key},
                         dir + "/server.log"));
  auto connect = [&](bool tls, std::string root_pem) {
    ClientOptions options;
    options.target = server.target();
    options.tls = tls;
    options.tls_root_pem = std::move(root_pem);
    options.timeout = std::chrono::seconds(5);
    auto client = Client::Connect(options);
    EXPECT_OK(client);
    return std::move(client).value();
  };
  std::ifstream in(cert);
  const std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(pem.empty());

  auto trusted = connect(true, pem);
  ExpectServing(*trusted);

  // A plaintext client speaks HTTP/2 to a TLS port; a TLS client that trusts
  // only the system's roots rejects the self-signed certificate. Neither
  // reaches the service.
  EXPECT_STATUS_CODE(connect(false, "")->ListCollections(), absl::StatusCode::kUnavailable);
  EXPECT_STATUS_CODE(connect(true, "")->ListCollections(), absl::StatusCode::kUnavailable);
  std::filesystem::remove_all(dir);
}

// kill -9, restart on the same directory: every acknowledged write is there.
TEST(ServerCrashTest, AcknowledgedDataSurvivesKill9) {
  const std::string dir = NewDir("crash");
  const std::vector<std::string> args = {"--data-dir", dir + "/data"};
  const size_t per_token = kLayers * kKvHeads * kHeadDim, n = 70;  // > one page
  const std::vector<float> k = RandomFloats(per_token * n, 11), v = RandomFloats(per_token * n, 12);
  const std::vector<float> x = RandomFloats(50 * kDim, 13);
  std::vector<uint64_t> ids(50);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = i;
  std::vector<float> before_k, before_v;
  {
    ServerProcess server;
    ASSERT_OK(server.Start(ServerBinary(), args, dir + "/server.log"));
    auto c = Connect(server, Encoding::kPacked);
    client::KvConfig kv;
    kv.num_layers = kLayers;
    kv.num_kv_heads = kKvHeads;
    kv.head_dim = kHeadDim;
    ASSERT_OK(c->CreateKvCollection("kv", kv));
    ASSERT_OK(c->CreateSequence("kv", 5));
    ASSERT_OK(c->Append("kv", 5, n, k, v));
    client::EmbeddingConfig emb;
    emb.dim = kDim;
    emb.keep_raw = client::RawType::kF32;
    ASSERT_OK(c->CreateEmbeddingCollection("emb", emb));
    ASSERT_OK(c->Upsert("emb", ids, x));
    ASSERT_OK(c->Read("kv", 5, 0, std::nullopt, &before_k, &before_v));
    const int status = server.Kill(SIGKILL);
    EXPECT_TRUE(WIFSIGNALED(status));
  }
  ServerProcess server;
  ASSERT_OK(server.Start(ServerBinary(), args, dir + "/server.log"));
  auto c = Connect(server, Encoding::kFloats);
  auto length = c->SequenceLength("kv", 5);
  ASSERT_OK(length);
  EXPECT_EQ(*length, n);
  std::vector<float> after_k, after_v;
  ASSERT_OK(c->Read("kv", 5, 0, std::nullopt, &after_k, &after_v));
  EXPECT_EQ(after_k, before_k);
  EXPECT_EQ(after_v, before_v);
  std::vector<float> got;
  std::vector<bool> found;
  ASSERT_OK(c->Get("emb", ids, &got, &found));
  EXPECT_EQ(got, x);
  c.reset();  // gRPC's graceful shutdown waits for connected clients to leave
  EXPECT_EQ(server.Kill(SIGTERM), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tqdb
