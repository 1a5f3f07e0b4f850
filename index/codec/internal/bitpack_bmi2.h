// BMI2 (pext/pdep) bit packing shared by the AVX2 and AVX-512 kernel files;
// include only from files compiled with -mbmi2. Produces exactly the bytes of
// the scalar Pack/Unpack (LSB-first bit stream, kernels.h).
//
//   8 indices (one per byte of a uint64) ──pext(mask)──▶ 8·bits packed bits
//   mask = `bits` low bits set in every byte, e.g. bits = 3: 0x0707…07.
#ifndef TQDB_INDEX_CODEC_INTERNAL_BITPACK_BMI2_H_
#define TQDB_INDEX_CODEC_INTERNAL_BITPACK_BMI2_H_

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "index/codec/internal/kernels.h"

namespace tqdb::index::internal::bmi2 {

constexpr uint64_t ByteMask(int bits) { return 0x0101010101010101ULL * ((1u << bits) - 1); }

// kBits is a template parameter so every memcpy has a constant size (a plain
// load/store, not a library call).
template <int kBits>
void PackT(const uint8_t* idx, int n, uint8_t* out) {
  int i = 0;
  for (; i + 8 <= n; i += 8, out += kBits) {
    uint64_t v;
    std::memcpy(&v, idx + i, 8);
    const uint64_t packed = _pext_u64(v, ByteMask(kBits));
    std::memcpy(out, &packed, kBits);  // little-endian: the low kBits bytes
  }
  if (i < n) ScalarKernels().pack(idx + i, n - i, kBits, out);
}

template <int kBits>
void UnpackT(const uint8_t* in, int n, uint8_t* idx) {
  int i = 0;
  // While at least 8 bytes of the field remain, load 8 and let pdep ignore
  // the high ones; the last groups load exactly kBits bytes.
  for (; (n - i) * kBits >= 64; i += 8, in += kBits) {
    uint64_t packed;
    std::memcpy(&packed, in, 8);
    const uint64_t v = _pdep_u64(packed, ByteMask(kBits));
    std::memcpy(idx + i, &v, 8);
  }
  for (; i + 8 <= n; i += 8, in += kBits) {
    uint64_t packed = 0;
    std::memcpy(&packed, in, kBits);
    const uint64_t v = _pdep_u64(packed, ByteMask(kBits));
    std::memcpy(idx + i, &v, 8);
  }
  if (i < n) ScalarKernels().unpack(in, n - i, kBits, idx + i);
}

// Packs idx[0, n) starting at a byte boundary; groups of 8 use pext, the
// remainder (< 8 indices) the scalar kernel at its byte offset.
inline void Pack(const uint8_t* idx, int n, int bits, uint8_t* out) {
  switch (bits) {
    case 1: return PackT<1>(idx, n, out);
    case 2: return PackT<2>(idx, n, out);
    case 3: return PackT<3>(idx, n, out);
    case 4: return PackT<4>(idx, n, out);
    case 5: return PackT<5>(idx, n, out);
    case 6: return PackT<6>(idx, n, out);
    case 7: return PackT<7>(idx, n, out);
    default: return PackT<8>(idx, n, out);
  }
}

inline void Unpack(const uint8_t* in, int n, int bits, uint8_t* idx) {
  switch (bits) {
    case 1: return UnpackT<1>(in, n, idx);
    case 2: return UnpackT<2>(in, n, idx);
    case 3: return UnpackT<3>(in, n, idx);
    case 4: return UnpackT<4>(in, n, idx);
    case 5: return UnpackT<5>(in, n, idx);
    case 6: return UnpackT<6>(in, n, idx);
    case 7: return UnpackT<7>(in, n, idx);
    default: return UnpackT<8>(in, n, idx);
  }
}

}  // namespace tqdb::index::internal::bmi2

#endif  // TQDB_INDEX_CODEC_INTERNAL_BITPACK_BMI2_H_
