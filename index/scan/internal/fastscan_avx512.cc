// AVX-512 (BW) fast-scan accumulation (fastscan_kernels.h): the AVX2 scheme
// two nibble pairs at a time. A 512-bit register holds pairs 2m and 2m + 1 for
// all 32 vectors, and the table layout puts both pairs' low (and high) tables
// in one 64-byte line, so each is a single load. The two halves of the
// accumulators are folded at the end; an odd last pair takes the 256-bit step.
//
// The dot kernel needs VNNI (vpdpbusd) and VBMI (vpermi2b), checked at run
// time; without them the table carries the AVX2 dot kernel.
#include <array>
#include <cstring>

#include "index/scan/internal/fastscan_kernels.h"
#include "index/scan/internal/fastscan_ymm.h"
#include "index/scan/internal/query_chunks.h"

namespace tqdb::index::internal {
namespace {

// kQ queries share each load and nibble split of the codes; their
// accumulators (2·kQ registers) stay in registers. Leaves each query's sums
// folded to 256 bits in a2[q], b2[q] (fastscan_ymm.h's representation).
template <int kQ>
inline void AccumulateFolded(const uint8_t* codes, const uint8_t* const* luts, int n_pairs,
                             __m256i* a2, __m256i* b2) {
  const __m512i low = _mm512_set1_epi8(0x0f);
  __m512i a[kQ], b[kQ];
#pragma GCC unroll 8
  for (int q = 0; q < kQ; ++q) a[q] = b[q] = _mm512_setzero_si512();
  int p = 0;
  for (; p + 2 <= n_pairs; p += 2) {
    const __m512i c = _mm512_loadu_si512(codes + kPairCodeBytes * p);
    const __m512i lo = _mm512_and_si512(c, low);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), low);
#pragma GCC unroll 8
    for (int q = 0; q < kQ; ++q) {
      const uint8_t* l = luts[q] + LutOffset(p, false);
      const __m512i r0 = _mm512_shuffle_epi8(_mm512_loadu_si512(l), lo);
      const __m512i r1 = _mm512_shuffle_epi8(_mm512_loadu_si512(l + 64), hi);
      a[q] = _mm512_add_epi16(a[q], _mm512_add_epi16(r0, r1));
      b[q] = _mm512_add_epi16(
          b[q], _mm512_add_epi16(_mm512_srli_epi16(r0, 8), _mm512_srli_epi16(r1, 8)));
    }
  }
#pragma GCC unroll 8
  for (int q = 0; q < kQ; ++q) {
    a2[q] = _mm256_add_epi16(_mm512_castsi512_si256(a[q]), _mm512_extracti64x4_epi64(a[q], 1));
    b2[q] = _mm256_add_epi16(_mm512_castsi512_si256(b[q]), _mm512_extracti64x4_epi64(b[q], 1));
    if (p < n_pairs) {
      AccumulatePairYmm(codes + kPairCodeBytes * p, luts[q] + LutOffset(p, false),
                        luts[q] + LutOffset(p, true), &a2[q], &b2[q]);
    }
  }
}

template <int kQ>
void AccumulateQueries(const uint8_t* codes, const uint8_t* const* luts, int n_pairs,
                       uint16_t* out) {
  __m256i a2[kQ], b2[kQ];
  AccumulateFolded<kQ>(codes, luts, n_pairs, a2, b2);
#pragma GCC unroll 8
  for (int q = 0; q < kQ; ++q) StoreSumsYmm(a2[q], b2[q], out + 32 * q);
}

void Accumulate(const uint8_t* codes, const uint8_t* luts, int n_pairs, uint16_t* out) {
  AccumulateQueries<1>(codes, &luts, n_pairs, out);
}

void AccumulateMulti(const uint8_t* codes, const uint8_t* const* luts, int nq, int n_pairs,
                     uint16_t* out) {
  ForEachQueryChunk(nq, [&](auto k, int first) {
    AccumulateQueries<decltype(k)::value>(codes, luts + first, n_pairs, out + 32 * first);
  });
}

// Sixteen vectors a gather; lanes add in increasing p, as the scalar twin.
void PairTableSums(const uint8_t* codes, const float* tables, int n_pairs, float* sums) {
  __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
  for (int p = 0; p < n_pairs; ++p) {
    const uint8_t* c = codes + static_cast<size_t>(p) * kPairCodeBytes;
    const float* t = tables + static_cast<size_t>(p) * kPairTableSize;
    const __m512i lo = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c)));
    const __m512i hi =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 16)));
    a = _mm512_add_ps(a, _mm512_i32gather_ps(lo, t, 4));
    b = _mm512_add_ps(b, _mm512_i32gather_ps(hi, t, 4));
  }
  _mm512_storeu_ps(sums, a);
  _mm512_storeu_ps(sums + 16, b);
}

// score[v] += w[v]·(d·sum[v] + b) for sixteen int32 sums, separate multiplies
// and adds as the scalar twins (fastscan_kernels.h).
inline void AddScaledSums(__m512i sum, const float* w, __m512 d, __m512 b, float* score) {
  const __m512 x = _mm512_mul_ps(_mm512_loadu_ps(w),
                                 _mm512_add_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(sum)), b));
  _mm512_storeu_ps(score, _mm512_add_ps(_mm512_loadu_ps(score), x));
}

void AddScaled(const uint16_t* acc, const float* w, float delta, float bias, float* score) {
  const __m512 d = _mm512_set1_ps(delta), b = _mm512_set1_ps(bias);
  for (int v = 0; v < kBlockVectors; v += 16) {
    const __m256i sums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + v));
    AddScaledSums(_mm512_cvtepu16_epi32(sums), w + v, d, b, score + v);
  }
}

void AccumulateScaled(const uint8_t* codes, const uint8_t* luts, int n_pairs, const float* w,
                      float delta, float bias, float* score) {
  __m256i a2, b2, first, second;
  AccumulateFolded<1>(codes, &luts, n_pairs, &a2, &b2);
  SumsYmm(a2, b2, &first, &second);
  const __m512 d = _mm512_set1_ps(delta), b = _mm512_set1_ps(bias);
  AddScaledSums(_mm512_cvtepu16_epi32(first), w, d, b, score);
  AddScaledSums(_mm512_cvtepu16_epi32(second), w + 16, d, b, score + 16);
}

#define TQDB_TARGET_VNNI __attribute__((target("avx512vnni,avx512vbmi")))

// vpermi2b indices of the dot kernel: byte 4v + k of picks[h] selects, for
// vector 16h + v, k = 0 the low nibble of pair 2m (an lv byte), 1 its high
// nibble (hv: index + 64), 2 and 3 those of pair 2m + 1 (32 bytes on).
constexpr std::array<std::array<uint8_t, 64>, 2> DotPicks() {
  std::array<std::array<uint8_t, 64>, 2> picks{};
  for (int h = 0; h < 2; ++h) {
    for (int v = 0; v < 16; ++v) {
      const int vector = 16 * h + v;
      picks[h][4 * v] = static_cast<uint8_t>(vector);
      picks[h][4 * v + 1] = static_cast<uint8_t>(64 + vector);
      picks[h][4 * v + 2] = static_cast<uint8_t>(32 + vector);
      picks[h][4 * v + 3] = static_cast<uint8_t>(96 + vector);
    }
  }
  return picks;
}
alignas(64) constexpr std::array<std::array<uint8_t, 64>, 2> kDotPicks = DotPicks();

// acc += Σ of four u8·s8 products a lane (vpdpbusd). In asm because GCC 12
// moved every accumulator of the intrinsic's result in and out of a scratch
// register and spilled three of them at kQ = 8 (two extra moves per
// vpdpbusd); the "+v" operand keeps each accumulator in its register.
TQDB_TARGET_VNNI inline void DotAccumulate(__m512i& acc, __m512i u8, __m512i s8) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
}

// One step of the dot kernel: codes `c` of pairs 2m, 2m + 1 (bytes 0…31 and
// 32…63), the levels of their low (lv) and high (hv) nibbles looked up, then
// gathered by vpermi2b so that lane v of x0 (vectors 0…15) and of x1 (16…31)
// holds groups 4m … 4m + 3 of vector v in order — the order of the query's
// int8 values, which vpdpbusd multiplies four to a lane.
// Each query's four values are broadcast where they are used (word(i)), so
// only the 2·kQ accumulators stay live across the step: with all eight
// broadcasts held at once the registers ran out and the loop spilled.
template <int kQ, typename Word>
TQDB_TARGET_VNNI inline void DotStep(__m512i c, __m512i table, __m512i gather0, __m512i gather1,
                                     Word word, __m512i* acc) {
  const __m512i low = _mm512_set1_epi8(0x0f);
  const __m512i lv = _mm512_shuffle_epi8(table, _mm512_and_si512(c, low));
  const __m512i hv = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(c, 4), low));
  const __m512i x0 = _mm512_permutex2var_epi8(lv, gather0, hv);
  const __m512i x1 = _mm512_permutex2var_epi8(lv, gather1, hv);
#pragma GCC unroll 8
  for (int i = 0; i < kQ; ++i) {
    const __m512i q = _mm512_set1_epi32(word(i));
    DotAccumulate(acc[2 * i], x0, q);
    DotAccumulate(acc[2 * i + 1], x1, q);
  }
}

template <int kQ>
TQDB_TARGET_VNNI void DotQueries(const uint8_t* codes, const uint8_t* levels,
                                 const int8_t* const* queries, int n_pairs, const float* w,
                                 const float* delta, const float* bias, float* score,
                                 size_t stride) {
  const __m512i table =
      _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(levels)));
  const __m512i gather0 = _mm512_load_si512(kDotPicks[0].data());
  const __m512i gather1 = _mm512_load_si512(kDotPicks[1].data());
  const int8_t* q[kQ];
  for (int i = 0; i < kQ; ++i) q[i] = queries[i];
  __m512i acc[2 * kQ];
#pragma GCC unroll 16
  for (int i = 0; i < 2 * kQ; ++i) acc[i] = _mm512_setzero_si512();
  // One loop for every step, the odd last pair included (a masked load reads
  // only its 32 bytes; its twin's query values are the zero padding): with a
  // separate tail step GCC kept the accumulators in two homes and spilled.
  // Two steps an iteration: nq = 8 scans ~10 % faster (bench A/B, 6 runs).
#pragma GCC unroll 2
  for (int p = 0; p < n_pairs; p += 2) {
    const __mmask64 bytes = p + 2 <= n_pairs ? ~__mmask64{0} : __mmask64{0xffffffff};
    const auto four = [&](int i) {
      int32_t v;
      std::memcpy(&v, q[i] + 2 * p, 4);
      return v;
    };
    DotStep<kQ>(_mm512_maskz_loadu_epi8(bytes, codes + kPairCodeBytes * p), table, gather0,
                gather1, four, acc);
  }
#pragma GCC unroll 8
  for (int i = 0; i < kQ; ++i) {
    const __m512 d = _mm512_set1_ps(delta[i]), b = _mm512_set1_ps(bias[i]);
    AddScaledSums(acc[2 * i], w, d, b, score + i * stride);
    AddScaledSums(acc[2 * i + 1], w + 16, d, b, score + i * stride + 16);
  }
}

TQDB_TARGET_VNNI void Dot(const uint8_t* codes, const uint8_t* levels, const int8_t* const* queries,
                          int nq, int n_pairs, const float* w, const float* delta,
                          const float* bias, float* score, size_t stride) {
  ForEachQueryChunk(nq, [&](auto k, int first) {
    DotQueries<decltype(k)::value>(codes, levels, queries + first, n_pairs, w, delta + first,
                                   bias + first, score + first * stride, stride);
  });
}

constexpr FastScanKernels kAvx512 = {&Accumulate, &AccumulateMulti, &PairTableSums,
                                     &AddScaled,  &DotAvx2,         &AccumulateScaled};
constexpr FastScanKernels kAvx512Vnni = {&Accumulate, &AccumulateMulti, &PairTableSums,
                                         &AddScaled,  &Dot,             &AccumulateScaled};

}  // namespace

const FastScanKernels* FastScanAvx512() {
  static const bool vnni =
      __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi");
  return vnni ? &kAvx512Vnni : &kAvx512;
}

}  // namespace tqdb::index::internal
