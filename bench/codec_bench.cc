// tqdb-bench codec: encode/decode throughput and fidelity of every TurboQuant
// format, and of FAISS's scalar and product quantizers on the same data.
//
// Data: n uniformly random unit vectors (d = 128 by default). Fields:
//   encode/decode_vectors_per_s  wall clock over all n, best of 3, T threads
//   mse          mean ‖x − x̂‖² (x unit, so also the relative error)
//   ip_bias      mean of (estimate − ⟨y, x⟩) over pairs with y = unit(0.8·x + 0.6·z),
//                z an independent unit vector (true ⟨y, x⟩ ≈ 0.8): a multiplicative
//                bias shows up here; on independent pairs every method is unbiased.
//   ip_rel_err   RMS(estimate − ⟨y, x⟩) / mean ⟨y, x⟩ over the same pairs.
// tqdb estimates use the codec's estimator (QJL term included); FAISS's use
// ⟨y, decode(x)⟩, which is what its distance computers evaluate.
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "faiss/IndexPQ.h"
#include "faiss/IndexScalarQuantizer.h"
#include "index/codec/codec.h"

namespace tqdb::bench {
namespace {

constexpr double kRho = 0.8;

struct Result {
  std::string system, format;
  double bits_per_value = 0, bytes_per_vector = 0, train_s = -1;
  double encode_per_s = 0, decode_per_s = 0, mse = 0, ip_bias = 0, ip_rel_err = 0;
};

struct Data {
  int d = 0;
  size_t n = 0, n_pairs = 0;
  std::vector<float> x;        // n × d
  std::vector<float> queries;  // n_pairs × d, correlated with x's first rows
  std::vector<double> truth;   // ⟨query_i, x_i⟩
};

Data MakeData(size_t n, int d) {
  Data data;
  data.d = d;
  data.n = n;
  data.n_pairs = std::min<size_t>(n, 20000);
  data.x = RandomUnitVectors(n, d, 1);
  const std::vector<float> z = RandomUnitVectors(data.n_pairs, d, 2);
  data.queries.resize(data.n_pairs * d);
  data.truth.resize(data.n_pairs);
  for (size_t p = 0; p < data.n_pairs; ++p) {
    double norm2 = 0;
    float* q = &data.queries[p * d];
    for (int i = 0; i < d; ++i) {
      q[i] = static_cast<float>(kRho * data.x[p * d + i] + std::sqrt(1 - kRho * kRho) * z[p * d + i]);
      norm2 += double{q[i]} * q[i];
    }
    double ip = 0;
    for (int i = 0; i < d; ++i) {
      q[i] = static_cast<float>(q[i] / std::sqrt(norm2));
      ip += double{q[i]} * data.x[p * d + i];
    }
    data.truth[p] = ip;
  }
  return data;
}

double Mse(const Data& data, const std::vector<float>& decoded) {
  double sum = 0;
  for (size_t i = 0; i < data.x.size(); ++i) {
    const double e = double{data.x[i]} - decoded[i];
    sum += e * e;
  }
  return sum / data.n;
}

void IpStats(const Data& data, const std::vector<double>& estimates, Result* r) {
  double bias = 0, sq = 0, mean_truth = 0;
  for (size_t p = 0; p < data.n_pairs; ++p) {
    const double e = estimates[p] - data.truth[p];
    bias += e;
    sq += e * e;
    mean_truth += data.truth[p];
  }
  r->ip_bias = bias / data.n_pairs;
  r->ip_rel_err = std::sqrt(sq / data.n_pairs) / (mean_truth / data.n_pairs);
}

Result BenchTqdb(const std::string& name, const Data& data, int threads) {
  Result r;
  r.system = "tqdb";
  r.format = name;
  auto format = index::ParseFormat(name, data.d, /*seed=*/42);
  if (!format.ok()) {
    std::fprintf(stderr, "skipping %s: %s\n", name.c_str(), format.status().ToString().c_str());
    return r;
  }
  auto codec = *index::Codec::Create(*format);
  const size_t cb = codec->code_bytes();
  r.bytes_per_vector = static_cast<double>(cb);
  r.bits_per_value = format->BitsPerValue();
  std::vector<uint8_t> codes(data.n * cb);
  std::vector<float> decoded(data.n * data.d);
  const double enc = BestSeconds(3, [&] {
    ParallelFor(data.n, threads, [&](size_t b, size_t e) {
      codec->EncodeUnchecked(&data.x[b * data.d], e - b, &codes[b * cb]);
    });
  });
  const double dec = BestSeconds(3, [&] {
    ParallelFor(data.n, threads, [&](size_t b, size_t e) {
      codec->Decode(&codes[b * cb], e - b, &decoded[b * data.d]);
    });
  });
  r.encode_per_s = data.n / enc;
  r.decode_per_s = data.n / dec;
  r.mse = Mse(data, decoded);
  std::vector<double> est(data.n_pairs);
  index::Codec::Query q;
  for (size_t p = 0; p < data.n_pairs; ++p) {
    codec->PrepareQuery(&data.queries[p * data.d], &q);
    est[p] = codec->EstimateInnerProduct(q, &codes[p * cb]);
  }
  IpStats(data, est, &r);
  return r;
}

Result BenchFaiss(const std::string& name, faiss::Index* index, const Data& data) {
  Result r;
  r.system = "faiss";
  r.format = name;
  const double t0 = Now();
  index->train(static_cast<faiss::Index::idx_t>(data.n), data.x.data());
  r.train_s = Now() - t0;
  const size_t cb = index->sa_code_size();
  r.bytes_per_vector = static_cast<double>(cb);
  r.bits_per_value = 8.0 * cb / data.d;
  std::vector<uint8_t> codes(data.n * cb);
  std::vector<float> decoded(data.n * data.d);
  const auto n = static_cast<faiss::Index::idx_t>(data.n);
  r.encode_per_s = data.n / BestSeconds(3, [&] { index->sa_encode(n, data.x.data(), codes.data()); });
  r.decode_per_s = data.n / BestSeconds(3, [&] { index->sa_decode(n, codes.data(), decoded.data()); });
  r.mse = Mse(data, decoded);
  std::vector<double> est(data.n_pairs);
  for (size_t p = 0; p < data.n_pairs; ++p) {
    double ip = 0;
    for (int i = 0; i < data.d; ++i) ip += double{data.queries[p * data.d + i]} * decoded[p * data.d + i];
    est[p] = ip;
  }
  IpStats(data, est, &r);
  return r;
}

void PrintJson(const Result& r, const Data& data, int threads) {
  JsonLine line;
  line.Add("suite", "codec").Add("system", r.system).Add("format", r.format).Add("d", data.d)
      .Add("n", data.n).Add("threads", threads).Add("bits_per_value", r.bits_per_value)
      .Add("bytes_per_vector", r.bytes_per_vector);
  if (r.train_s >= 0) line.Add("train_s", r.train_s);
  line.Add("encode_vectors_per_s", r.encode_per_s).Add("decode_vectors_per_s", r.decode_per_s)
      .Add("mse", r.mse).Add("ip_bias", r.ip_bias).Add("ip_rel_err", r.ip_rel_err);
  line.Print();
}

void PrintTable(const std::vector<Result>& rows, const Data& data, int threads) {
  std::printf("TurboQuant codec on %zu random unit vectors, d = %d, %d thread(s)\n\n", data.n,
              data.d, threads);
  std::printf("%-6s %-8s %6s %6s %12s %12s %9s %9s %9s\n", "system", "format", "bits", "bytes",
              "encode M/s", "decode M/s", "mse", "ip_bias", "ip_relerr");
  for (const Result& r : rows) {
    std::printf("%-6s %-8s %6.3g %6.0f %12.3f %12.3f %9.5f %9.5f %9.4f\n", r.system.c_str(),
                r.format.c_str(), r.bits_per_value, r.bytes_per_vector, r.encode_per_s / 1e6,
                r.decode_per_s / 1e6, r.mse, r.ip_bias, r.ip_rel_err);
  }
}

}  // namespace

int RunCodec(int argc, char** argv) {
  const Flags flags(argc, argv);
  const size_t n = static_cast<size_t>(flags.Int("n", 200000));
  const int d = static_cast<int>(flags.Int("d", 128));
  const int threads = static_cast<int>(flags.Int("threads", 1));
  const bool table = flags.Int("table", 0) != 0;
  std::vector<std::string> formats;
  std::stringstream list(
      flags.Str("formats", "tq2,tq3,tq4,tq3p,tq4p,turbo2,turbo3,turbo4,tq2.5,tq3.5,tq4-ipc"));
  for (std::string f; std::getline(list, f, ',');) formats.push_back(f);
  omp_set_num_threads(threads);

  const Data data = MakeData(n, d);
  std::vector<Result> rows;
  for (const std::string& f : formats) {
    rows.push_back(BenchTqdb(f, data, threads));
    if (!table) PrintJson(rows.back(), data, threads);
  }
  if (flags.Int("faiss", 1) != 0) {
    faiss::IndexScalarQuantizer sq4(d, faiss::ScalarQuantizer::QT_4bit, faiss::METRIC_INNER_PRODUCT);
    faiss::IndexScalarQuantizer sq8(d, faiss::ScalarQuantizer::QT_8bit, faiss::METRIC_INNER_PRODUCT);
    std::vector<std::pair<std::string, faiss::Index*>> baselines = {{"SQ4", &sq4}, {"SQ8", &sq8}};
    std::unique_ptr<faiss::IndexPQ> pq;
    if (d % 32 == 0 && flags.Int("pq", 1) != 0) {  // PQ trains for ~50 s
      pq = std::make_unique<faiss::IndexPQ>(d, 32, 8, faiss::METRIC_INNER_PRODUCT);
      baselines.emplace_back("PQ32x8", pq.get());
    }
    for (auto& [name, index] : baselines) {
      rows.push_back(BenchFaiss(name, index, data));
      if (!table) PrintJson(rows.back(), data, threads);
    }
  }
  if (table) PrintTable(rows, data, threads);
  return 0;
}

}  // namespace tqdb::bench
