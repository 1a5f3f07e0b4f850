// Fast-scan scoring: inner-product estimates of queries against CodeBlocks
// without decompressing, through int8 dot products and quantized lookup tables
// (FAISS fast-scan style) over the fastscan kernels. PrepareQuery rotates each
// query once (Π·y, and S·Π·y for QJL codes); the score of vector v is
//   Σ_runs w_run[v] · (Δ_run · acc_run[v] + bias_run)
// with acc_run the kernels' exact integer sums over the run (scan_layout.h),
// by one of two methods:
//
//  - Dot runs (ScanLayout::Run::dot: every nibble one coordinate's index, as
//    in tq3, tq4 and the MSE part of turbo3/turbo4): the codebook is
//    quantized to uint8 levels ĉ = c_min + λ·L (λ = (c_max − c_min)/255) and
//    the query's run to int8 values ŷ = σ·s (σ = max|y|/127); the dot kernel's
//    Σ s·L gives Σ ŷ·ĉ = σλ·Σ s·L + σ·c_min·Σ s, rounded by at most
//    Σ_k |y_k − ŷ_k|·max|c| + |ŷ_k|·max|c − ĉ|. A block's codes are decoded
//    once for every query of a batch (vpdpbusd: ~1.3× the tables' rate for
//    one query on AVX-512 VNNI, ~2× for eight).
//  - Other runs (several coordinates or QJL signs per nibble, or two
//    codebooks): one 16-entry float table per nibble group, quantized to uint8
//    with one step Δ_run = max range / 255 and a per-table offset; rounding
//    each entry costs at most Δ_run/2, so the run is off by ≤ Δ_run·G_run/2
//    (G = groups in the run).
//
// ErrorBound reports the sum of these bounds times |w| (float rounding of the
// sums comes on top). Scores do not depend on the batch a query is scored in,
// and are bit-identical on every ISA.
//
// Layouts with wide (5–8-bit) coordinates are not fast-scannable
// (scan_layout.h): their queries hold one exact float table of 256 entries per
// nibble pair instead, summed per vector in float — no table rounding
// (ErrorBound is 0), summed with gathers: an order of magnitude slower per
// vector than the nibble kernels (README has the measured rates).
//
// Thread-safety: a PreparedQuery is immutable after PrepareQuery; scoring is
// const and may run concurrently.
#ifndef TQDB_INDEX_SCAN_SCORER_H_
#define TQDB_INDEX_SCAN_SCORER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "index/codec/isa.h"
#include "index/scan/code_blocks.h"

namespace tqdb::index {

struct PreparedQuery {
  // Fast-scannable layouts. Table runs (dot runs have empty entries):
  std::vector<uint8_t> luts;       // per run, internal::LutBytes(run.n_pairs) bytes
  std::vector<size_t> lut_offset;  // per run: where its tables start in luts
  std::vector<float> delta;        // per run
  std::vector<float> bias;         // per run
  // Dot runs (table runs have empty entries): the run's int8 query values, one
  // per group (0 for padding), and the codebook levels, 16 per run; the run
  // adds w·(dot_delta·Σ s·L + dot_bias); dot_bound is its rounding bound
  // before |w|.
  std::vector<int8_t> dot_values;
  std::vector<size_t> dot_offset;  // per run: where its values start in dot_values
  std::vector<uint8_t> dot_levels;
  std::vector<float> dot_delta;
  std::vector<float> dot_bias;
  std::vector<float> dot_bound;
  // The others: n_pairs × 256 floats (internal::PairTable).
  std::vector<float> pair_tables;
};

// REQUIRES: y holds layout.format().dim finite floats; codec matches layout.
void PrepareQuery(const Codec& codec, const ScanLayout& layout, const float* y,
                  PreparedQuery* query);

// Scores vectors [block_begin·32, min(block_end·32, size)) for nq queries
// (each block's codes are read once for all of them):
// out[q·stride + i] for i counted from block_begin·32. REQUIRES: block_end <=
// blocks.num_blocks(); out has room for nq rows of `stride` ≥ the range.
// An ISA this CPU lacks falls back to the scalar kernel.
void ScoreBlocks(const CodeBlocks& blocks, const PreparedQuery* queries, int nq,
                 size_t block_begin, size_t block_end, float* out, size_t stride,
                 Isa isa = Isa::kBest);

// The same for the vectors [begin, end), each score multiplied by out_scale
// (one float product, as the caller would do after): out[q·stride + i − begin].
// Writes exactly nq rows of end − begin floats. REQUIRES: begin <= end <=
// blocks.size(); stride >= end − begin.
void ScoreRange(const CodeBlocks& blocks, const PreparedQuery* queries, int nq, size_t begin,
                size_t end, float out_scale, float* out, size_t stride, Isa isa = Isa::kBest);

// The rounding bound on |fast score − Codec::EstimateInnerProduct| for vector
// i (float rounding of either sum is not included).
float ErrorBound(const CodeBlocks& blocks, const PreparedQuery& query, size_t i);

}  // namespace tqdb::index

#endif  // TQDB_INDEX_SCAN_SCORER_H_
