// tqdb-bench scan: fast-scan scoring throughput and recall over TurboQuant
// codes, FAISS indexes on the same data, and this machine's streaming read
// bandwidth, so every figure reads as a fraction of the hardware limit.
//
// Lines:
//   {"suite":"membw","threads":1,"read_gb_per_s":…}   plain sum over 1 GiB
//   {"suite":"peak","threads":1,"lookups_per_s":…,"int8_macs_per_s":…,
//    "f32_fmas_per_s":…}   this core's instruction throughput ceilings: 512-bit
//                          pshufb (64 table lookups), vpdpbusd (64 int8
//                          products), vfmadd231ps (16 fp32 FMAs), each over 16
//                          independent register chains (AVX-512 VNNI CPUs only)
//   {"suite":"scan","system":"tqdb"|"faiss","format":…,"nq":1|8,
//    "keys_per_s":…       keys scanned per second (n·nq_eval/time ÷ nq: each key
//                         is read once per batch of nq queries),
//    "scores_per_s":…     query·key scores per second,
//    "search_keys_per_s":…  the same for whole top-10 searches (index::Search
//                         on nq queries a call: scoring and the heaps), the
//                         figure to set beside FAISS's search; one thread only
//                         (null otherwise); FAISS's lines repeat keys_per_s,
//    "recall_10_at_10", "recall_1_at_10", "rerank_oversample": r}
// Ground truth: exact inner products (FAISS IndexFlatIP) of nq_eval queries.
// Rerank r: index::Search rescores the best 10·r by code score exactly against
// the raw vectors (faiss::fvec_inner_products_by_idx), then cuts to 10.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/bench_util.h"
#include "bench/recall_util.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexPQ.h"
#include "faiss/IndexPQFastScan.h"
#include "faiss/IndexScalarQuantizer.h"
#include "io/vector_file.h"
#include "index/scan/attend.h"
#include "index/scan/code_blocks.h"
#include "index/scan/scorer.h"
#include "index/scan/searcher.h"

namespace tqdb::bench {
namespace {

constexpr int kK = 10;

// Sum of `bytes` of buf with four independent 256-bit accumulators.
__attribute__((target("avx2"))) uint64_t SumAvx2(const uint64_t* buf, size_t bytes) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  const __m256i* p = reinterpret_cast<const __m256i*>(buf);
  for (size_t i = 0; i < bytes / 32; i += 4) {
    a = _mm256_add_epi64(a, _mm256_loadu_si256(p + i));
    b = _mm256_add_epi64(b, _mm256_loadu_si256(p + i + 1));
    c = _mm256_add_epi64(c, _mm256_loadu_si256(p + i + 2));
    d = _mm256_add_epi64(d, _mm256_loadu_si256(p + i + 3));
  }
  alignas(32) uint64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out),
                     _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d)));
  return out[0] + out[1] + out[2] + out[3];
}

double ReadBandwidthGbPerS() {
  const size_t bytes = size_t{1} << 30;
  std::vector<uint64_t> buf(bytes / 8, 1);
  uint64_t sink = 0;
  const double seconds = BestSeconds(3, [&] { sink += SumAvx2(buf.data(), bytes); });
  if (sink == 42) std::printf("#\n");  // keep the sum alive
  return bytes / seconds / 1e9;
}

// Throughput ceilings of the instructions the kernels are made of: 16
// independent chains (more than any of their latencies) of one instruction,
// operands from memory at run time so nothing folds.
struct PeakRates {
  double lookups = 0, int8_macs = 0, f32_fmas = 0;
};

constexpr int kPeakChains = 16;
constexpr long kPeakSteps = 2000000;  // 32 M instructions a run

#define TQDB_PEAK_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni"), noinline))

TQDB_PEAK_TARGET int64_t SumLanes(const __m512i* a) {
  int64_t lanes[8 * kPeakChains];
  for (int k = 0; k < kPeakChains; ++k) _mm512_storeu_si512(lanes + 8 * k, a[k]);
  return std::accumulate(std::begin(lanes), std::end(lanes), int64_t{0});
}

TQDB_PEAK_TARGET int64_t ChainShuffles(const int8_t* seed) {
  __m512i a[kPeakChains];
  const __m512i idx = _mm512_loadu_si512(seed);
  for (__m512i& x : a) x = _mm512_loadu_si512(seed + 64);
  for (long i = 0; i < kPeakSteps; ++i) {
#pragma GCC unroll 16
    for (__m512i& x : a) x = _mm512_shuffle_epi8(x, idx);
  }
  return SumLanes(a);
}

TQDB_PEAK_TARGET int64_t ChainDots(const int8_t* seed) {
  __m512i a[kPeakChains];
  const __m512i u = _mm512_loadu_si512(seed), v = _mm512_loadu_si512(seed + 64);
  for (__m512i& x : a) x = _mm512_setzero_si512();
  for (long i = 0; i < kPeakSteps; ++i) {
#pragma GCC unroll 16
    for (__m512i& x : a) x = _mm512_dpbusd_epi32(x, u, v);
  }
  return SumLanes(a);
}

TQDB_PEAK_TARGET float ChainFmas(const float* seed) {
  __m512 a[kPeakChains];
  const __m512 m = _mm512_loadu_ps(seed), c = _mm512_loadu_ps(seed + 16);
  for (__m512& x : a) x = _mm512_setzero_ps();
  for (long i = 0; i < kPeakSteps; ++i) {
#pragma GCC unroll 16
    for (__m512& x : a) x = _mm512_fmadd_ps(x, m, c);
  }
  float lanes[16 * kPeakChains];
  for (int k = 0; k < kPeakChains; ++k) _mm512_storeu_ps(lanes + 16 * k, a[k]);
  return std::accumulate(std::begin(lanes), std::end(lanes), 0.0f);
}

std::optional<PeakRates> MeasurePeakRates() {
  if (!__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512vnni")) {
    return std::nullopt;
  }
  std::vector<int8_t> bytes(128);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<int8_t>(i % 16);
  const std::vector<float> floats(32, 0.5f);
  double sink = 0;
  const double instructions = static_cast<double>(kPeakSteps) * kPeakChains;
  PeakRates r;
  r.lookups = 64 * instructions /
              BestSeconds(3, [&] { sink += static_cast<double>(ChainShuffles(bytes.data())); });
  r.int8_macs =
      64 * instructions / BestSeconds(3, [&] { sink += static_cast<double>(ChainDots(bytes.data())); });
  r.f32_fmas = 16 * instructions / BestSeconds(3, [&] { sink += ChainFmas(floats.data()); });
  if (sink == 42) std::printf("#\n");  // keep the results alive
  return r;
}

struct Recall {
  double r10_at_10 = 0, r1_at_10 = 0;
};

// labels: nq × kK results; gt: nq × kK true ids (recall_util.h).
Recall Score(const int64_t* labels, const std::vector<int64_t>& gt) {
  const size_t nq = gt.size() / kK;
  return {.r10_at_10 = IntersectionRecall(labels, kK, gt.data(), kK, nq, kK),
          .r1_at_10 = NearestRecall(labels, kK, gt.data(), kK, nq, kK)};
}

void PrintLine(const std::string& system, const std::string& format, const std::string& dataset,
               int d, size_t n, int nq, int threads, double keys_per_s,
               double search_keys_per_s, const Recall& r, int oversample) {
  JsonLine()
      .Add("suite", "scan").Add("system", system).Add("format", format).Add("dataset", dataset)
      .Add("d", d).Add("n", n).Add("nq", nq).Add("threads", threads)
      .Add("keys_per_s", keys_per_s).Add("scores_per_s", keys_per_s * nq)
      .Add("search_keys_per_s", search_keys_per_s)
      .Add("recall_10_at_10", r.r10_at_10).Add("recall_1_at_10", r.r1_at_10)
      .Add("rerank_oversample", oversample)
      .Print();
}

// Throughput of ScoreBlocks, and recall through index::Search (top-k and
// exact rerank against `base`) over a CodeBlocks with `center` (may be empty).
void BenchTqdb(const std::string& name, const std::string& dataset,
               const std::vector<float>& base, const std::vector<float>& center,
               const std::vector<float>& queries, size_t n_eval, const std::vector<int64_t>& gt,
               int d, int threads) {
  const size_t n = base.size() / d;
  auto format = index::ParseFormat(name, d, 42);
  if (!format.ok()) return;
  auto codec = *index::Codec::Create(*format);
  auto blocks_or = index::CodeBlocks::Create(codec, center);
  if (!blocks_or.ok()) return;
  auto blocks = std::move(*blocks_or);
  constexpr size_t kAppendBatch = 65536;  // bounds Append's centered copy
  for (size_t i = 0; i < n; i += kAppendBatch) {
    (void)blocks->Append(&base[i * d], std::min(kAppendBatch, n - i));
  }
  std::vector<index::PreparedQuery> prepared(n_eval);
  for (size_t q = 0; q < n_eval; ++q) {
    index::PrepareQuery(*codec, blocks->layout(), &queries[q * d], &prepared[q]);
  }
  for (int nq : {1, 8}) {
    // All n_eval queries in batches of nq, each batch reading every key once,
    // scores consumed per chunk of blocks from a buffer that stays in cache,
    // as Search consumes them (it keeps a heap, not a score matrix).
    constexpr size_t kChunkBlocks = 256;
    const double seconds = BestSeconds(3, [&] {
      for (size_t q0 = 0; q0 < n_eval; q0 += nq) {
        const int batch = static_cast<int>(std::min<size_t>(nq, n_eval - q0));
        ParallelFor(blocks->num_blocks(), threads, [&](size_t b, size_t e) {
          thread_local std::vector<float> buf;
          buf.resize(static_cast<size_t>(batch) * kChunkBlocks * 32);
          for (size_t c = b; c < e; c += kChunkBlocks) {
            index::ScoreBlocks(*blocks, &prepared[q0], batch, c, std::min(e, c + kChunkBlocks),
                               buf.data(), kChunkBlocks * 32);
          }
        });
      }
    });
    const double keys_per_s = n * (n_eval / static_cast<double>(nq)) / seconds;
    double search_keys_per_s = std::numeric_limits<double>::quiet_NaN();
    if (threads == 1) {
      std::vector<int64_t> labels(n_eval * kK);
      std::vector<float> dist(n_eval * kK);
      const double search_seconds = BestSeconds(3, [&] {
        for (size_t q0 = 0; q0 < n_eval; q0 += nq) {
          const size_t batch = std::min<size_t>(nq, n_eval - q0);
          (void)index::Search(*blocks, absl::MakeConstSpan(&queries[q0 * d], batch * d),
                              {.k = kK}, nullptr, &labels[q0 * kK], &dist[q0 * kK]);
        }
      });
      search_keys_per_s = n * (n_eval / static_cast<double>(nq)) / search_seconds;
    }
    for (int oversample : {0, 4, 10}) {
      if (nq != 1 && oversample != 0) continue;  // recall does not depend on nq
      std::vector<int64_t> labels(n_eval * kK);
      std::vector<float> dist(n_eval * kK);
      (void)index::Search(*blocks, absl::MakeConstSpan(queries.data(), n_eval * d),
                          {.k = kK, .oversample = oversample}, base.data(), labels.data(),
                          dist.data());
      PrintLine("tqdb", name, dataset, d, n, nq, threads, keys_per_s, search_keys_per_s,
                Score(labels.data(), gt), oversample);
    }
  }
}

void BenchFaiss(const std::string& name, const std::string& dataset, faiss::Index* index,
                const std::vector<float>& base,
                const std::vector<float>& queries, size_t n_eval, const std::vector<int64_t>& gt,
                int d, int threads) {
  const size_t n = base.size() / d;
  const auto nn = static_cast<faiss::Index::idx_t>(n);
  index->train(nn, base.data());
  index->add(nn, base.data());
  std::vector<float> dist(n_eval * kK);
  std::vector<faiss::Index::idx_t> labels(n_eval * kK);
  for (int nq : {1, 8}) {
    const double seconds = BestSeconds(2, [&] {
      for (size_t q0 = 0; q0 < n_eval; q0 += nq) {
        const auto batch = static_cast<faiss::Index::idx_t>(std::min<size_t>(nq, n_eval - q0));
        index->search(batch, &queries[q0 * d], kK, &dist[q0 * kK], &labels[q0 * kK]);
      }
    });
    const double keys_per_s = n * (n_eval / static_cast<double>(nq)) / seconds;
    PrintLine("faiss", name, dataset, d, n, nq, threads, keys_per_s, keys_per_s,
              Score(labels.data(), gt), 0);
  }
}

// {"suite":"attend", …}: one layer, `heads` KV heads of `tokens` tokens, a
// GQA group of `group` queries per head; tokens_per_s = tokens·heads / time
// (each KV head's tokens read once per group); max_rel_err against float
// attention over the decoded keys and values of head 0.
void BenchAttend(const std::string& k_format, const std::string& v_format, size_t tokens, int heads,
                 int group, int d, int threads) {
  auto kc = *index::Codec::Create(*index::ParseFormat(k_format, d, 7));
  auto vc = *index::Codec::Create(*index::ParseFormat(v_format, d, 8));
  std::vector<std::unique_ptr<index::CodeBlocks>> keys, values;
  for (int h = 0; h < heads; ++h) {
    keys.push_back(std::move(*index::CodeBlocks::Create(kc)));
    values.push_back(std::move(*index::CodeBlocks::Create(vc)));
    const std::vector<float> k = RandomUnitVectors(tokens, d, 100 + h);
    const std::vector<float> v = RandomUnitVectors(tokens, d, 200 + h);
    (void)keys.back()->Append(k.data(), tokens);
    (void)values.back()->Append(v.data(), tokens);
  }
  std::vector<float> q = RandomUnitVectors(static_cast<size_t>(heads) * group, d, 3);
  for (float& x : q) x *= 8.0f;  // a peaked softmax, as trained attention has
  std::vector<float> out(static_cast<size_t>(heads) * group * d);
  const double seconds = BestSeconds(3, [&] {
    ParallelFor(heads, threads, [&](size_t b, size_t e) {
      for (size_t h = b; h < e; ++h) {
        (void)index::Attend(*keys[h], *values[h],
                            absl::MakeConstSpan(&q[h * group * d], static_cast<size_t>(group) * d),
                            {}, {}, &out[h * group * d]);
      }
    });
  });
  // Reference for head 0 in double over decoded K and V.
  double max_rel = 0;
  std::vector<float> kd(tokens * d), vd(tokens * d);
  for (size_t t = 0; t < tokens; ++t) {
    kc->Decode(keys[0]->Code(t), 1, &kd[t * d]);
    vc->Decode(values[0]->Code(t), 1, &vd[t * d]);
  }
  for (int g = 0; g < group; ++g) {
    std::vector<double> logit(tokens), ref(d, 0.0);
    double max = -1e300, sum = 0, diff = 0, norm = 0;
    for (size_t t = 0; t < tokens; ++t) {
      double dot = 0;
      for (int j = 0; j < d; ++j) dot += double{q[g * d + j]} * kd[t * d + j];
      max = std::max(max, logit[t] = dot / std::sqrt(double(d)));
    }
    for (double& l : logit) sum += (l = std::exp(l - max));
    for (size_t t = 0; t < tokens; ++t) {
      for (int j = 0; j < d; ++j) ref[j] += logit[t] / sum * vd[t * d + j];
    }
    for (int j = 0; j < d; ++j) {
      diff += std::pow(out[g * d + j] - ref[j], 2);
      norm += ref[j] * ref[j];
    }
    max_rel = std::max(max_rel, std::sqrt(diff / norm));
  }
  JsonLine()
      .Add("suite", "attend").Add("system", "tqdb").Add("format_k", k_format)
      .Add("format_v", v_format).Add("d", d).Add("tokens", tokens).Add("heads", heads)
      .Add("group", group).Add("threads", threads)
      .Add("tokens_per_s", static_cast<double>(tokens) * heads / seconds)
      .Add("max_rel_err", max_rel)
      .Print();
}

}  // namespace

int RunScan(int argc, char** argv) {
  const Flags flags(argc, argv);
  const int threads = static_cast<int>(flags.Int("threads", 1));
  omp_set_num_threads(threads);

  // Data: random unit vectors with exact IP ground truth from FAISS, or a set
  // in the ../shared/data layout (base.fvecs, query.fvecs, gt_ip.ivecs).
  const std::string dir = flags.Str("dataset", "");
  std::string dataset = "synthetic";
  std::vector<float> base, queries;
  std::vector<int64_t> gt64;
  int d = static_cast<int>(flags.Int("d", 128));
  size_t n_eval = static_cast<size_t>(flags.Int("queries", 64));
  if (!dir.empty()) {
    absl::StatusOr<EvalSet> set = LoadEvalSet(dir, "ip", n_eval);
    if (set.ok() && set->gt_k < kK) {
      set = absl::InvalidArgumentError(dir + ": no gt_ip.ivecs with >= 10 neighbours per query");
    }
    if (!set.ok()) {
      std::fprintf(stderr, "tqdb-bench scan: %s\n", std::string(set.status().message()).c_str());
      return 1;
    }
    dataset = set->name;
    d = set->d;
    n_eval = set->nq;
    for (size_t i = 0; i < n_eval; ++i) {
      gt64.insert(gt64.end(), &set->gt[i * set->gt_k], &set->gt[i * set->gt_k] + kK);
    }
    base = std::move(set->base);
    queries = std::move(set->queries);
  } else {
    const size_t n = static_cast<size_t>(flags.Int("n", 1000000));
    base = RandomUnitVectors(n, d, 1);
    queries = RandomUnitVectors(n_eval, d, 2);
    gt64 = ExactTopK(base, queries, d, kK, /*l2=*/false);
  }

  // --center 1: CodeBlocks centered on mean(base) (code_blocks.h).
  std::vector<float> center;
  if (flags.Int("center", 0) != 0) {
    center = MeanRow(base, d);
    dataset += "-centered";
  }

  JsonLine().Add("suite", "membw").Add("threads", 1).Add("read_gb_per_s", ReadBandwidthGbPerS()).Print();
  if (const std::optional<PeakRates> peak = MeasurePeakRates()) {
    JsonLine()
        .Add("suite", "peak")
        .Add("threads", 1)
        .Add("lookups_per_s", peak->lookups)
        .Add("int8_macs_per_s", peak->int8_macs)
        .Add("f32_fmas_per_s", peak->f32_fmas)
        .Print();
  }
  if (flags.Int("attend", dir.empty() ? 1 : 0) != 0) {
    for (auto [kf, vf] : {std::pair<const char*, const char*>{"tq4", "tq4"}, {"tq4", "tq2"}}) {
      BenchAttend(kf, vf, static_cast<size_t>(flags.Int("tokens", 32768)), 8, 4, d, threads);
    }
  }
  std::stringstream list(flags.Str("formats", "tq2,tq3,tq4,tq3p,tq4p"));
  for (std::string f; std::getline(list, f, ',');) {
    BenchTqdb(f, dataset, base, center, queries, n_eval, gt64, d, threads);
  }
  if (flags.Int("faiss", 1) != 0 && flags.Int("center", 0) == 0) {
    std::vector<std::pair<std::string, std::unique_ptr<faiss::Index>>> baselines;
    baselines.emplace_back("FlatIP", std::make_unique<faiss::IndexFlatIP>(d));
    baselines.emplace_back("SQ4", std::make_unique<faiss::IndexScalarQuantizer>(
                                      d, faiss::ScalarQuantizer::QT_4bit, faiss::METRIC_INNER_PRODUCT));
    baselines.emplace_back("SQ8", std::make_unique<faiss::IndexScalarQuantizer>(
                                      d, faiss::ScalarQuantizer::QT_8bit, faiss::METRIC_INNER_PRODUCT));
    if (d % 2 == 0) {
      baselines.emplace_back("PQFS" + std::to_string(d / 2) + "x4",
                             std::make_unique<faiss::IndexPQFastScan>(d, d / 2, 4, faiss::METRIC_INNER_PRODUCT));
    }
    baselines.emplace_back("PQFS" + std::to_string(d) + "x4",
                           std::make_unique<faiss::IndexPQFastScan>(d, d, 4, faiss::METRIC_INNER_PRODUCT));
    if (d % 4 == 0) {
      baselines.emplace_back("PQ" + std::to_string(d / 4) + "x8",
                             std::make_unique<faiss::IndexPQ>(d, d / 4, 8, faiss::METRIC_INNER_PRODUCT));
    }
    for (auto& [name, index] : baselines) {
      BenchFaiss(name, dataset, index.get(), base, queries, n_eval, gt64, d, threads);
    }
  }
  return 0;
}

}  // namespace tqdb::bench
