// CodeBlocks: an in-memory, append-only set of encoded vectors laid out for
// fast scanning. Knows nothing of RocksDB or gRPC (storage persists the codes
// and rebuilds a CodeBlocks on open).
//
// Layout: vectors are grouped in blocks of 32 (internal::kBlockVectors) and
// blocks in chunks of 1, 2, 4, …, 512, then kBlocksPerChunk blocks each (small
// sets, like the many short per-head KV sequences of a store, stay small),
// each chunk allocated once and never moved, so growing never copies what is
// there. A chunk's nibbles of 2 MiB or more (tq4 at d = 128: the full chunks)
// are 2 MiB aligned and offered to transparent huge pages (madvise): a scan
// crosses a 4 KiB page every two blocks, and the TLB misses cost a scanning
// core about a sixth of its rate. Per block, side by side:
//
//   nibbles  n_pairs × 32 bytes   (fastscan_kernels.h: byte v of pair p =
//                                  nib_v[2p] | nib_v[2p+1] << 4)
//   weights  n_weights × 32 floats (weight w of vector v at [w·32 + v]: its
//                                  scales, then the QJL factor)
// and per vector, its original code bytes (for decoding and reranking) and
// its squared norm (for L2: exact when appended as floats; from the stored
// norm, or the decoded vector, when appended as codes). A set may keep only
// the nibbles or only the codes (Keep, below). Slots
// of a partly filled last block hold zero weights. A block's nibbles are
// written once, when its 32nd vector arrives: appending one vector then
// touches a few cache lines (its code, norm and weights), not one per pair,
// which is most of what a store's one-token append into 512 families costs.
// Until then the open block's nibbles are made from its codes on each read
// (BlockNibbles with a scratch buffer).
//
// Centering: with a center μ (dim floats), Append encodes x − μ. TurboQuant's
// codebooks are data-oblivious; data with a large common offset (SIFT's
// all-positive descriptors, a KV head's key bias) loses precision to it, and
// the residual is what they quantize well. Inner-product rankings are unchanged
// (⟨q, μ⟩ is one constant per query); searcher.h and attend.h add the shifts
// back so results are in the original coordinates.
//
// Thread-safety: const methods may run concurrently with each other; Append
// must not run concurrently with anything (storage adds the synchronization).
#ifndef TQDB_INDEX_SCAN_CODE_BLOCKS_H_
#define TQDB_INDEX_SCAN_CODE_BLOCKS_H_

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "index/codec/codec.h"
#include "index/scan/scan_layout.h"

namespace tqdb::index {

class CodeBlocks {
 public:
  static constexpr size_t kBlocksPerChunk = 1024;  // the largest chunk: 32,768 vectors

  // What the blocks keep besides weights and norms:
  //   kBoth     the nibble layout and every code (scans, decoding, reranking);
  //   kCodes    codes only, for a set that is decoded but never fast-scanned
  //             (a KV store's values when Attend reads their codes, attend.h's
  //             AttendReadsValueCodes): the nibble accessors (BlockNibbles,
  //             FullBlockNibbles, FullBlocksFrom) then must not be called;
  //   kNibbles  the nibble layout, and codes only for the open block: a full
  //             block's codes are rebuilt from its nibbles and weights on
  //             demand (CopyCode), which formats whose index bytes are their
  //             nibble pairs allow (CanRebuildCodes: tq1/tq2/tq4 MSE without
  //             outliers). Code() then only serves the open block.
  // kCodes and kNibbles each take about half of kBoth's memory.
  enum class Keep { kBoth, kCodes, kNibbles };
  static bool CanRebuildCodes(const Format& format);

  // Every format has a layout (scan_layout.h). InvalidArgument if `center` is
  // neither empty nor dim finite floats, or `keep` is kNibbles for a format
  // that cannot rebuild its codes.
  static absl::StatusOr<std::unique_ptr<CodeBlocks>> Create(std::shared_ptr<const Codec> codec,
                                                            std::vector<float> center = {},
                                                            Keep keep = Keep::kBoth);

  // Appends n vectors (n·dim floats), minus the center: InvalidArgument,
  // appending nothing, if any value is not finite.
  absl::Status Append(const float* x, size_t n);
  // Appends n codes produced by codec().Encode (n·code_bytes bytes) of
  // already centered vectors.
  void AppendCodes(const uint8_t* codes, size_t n);
  // Keeps the first min(n, size()) vectors; freed slots read as zeros again
  // and chunks past the end are released.
  void Truncate(size_t n);

  size_t size() const { return size_; }
  size_t num_blocks() const { return (size_ + 31) / 32; }
  // Blocks holding 32 vectors: all but a partly filled last one.
  size_t full_blocks() const { return size_ / 32; }
  // The nibbles of `block`: in place for a full block; the open (partly
  // filled, last) block's are made from its codes into *scratch (its unfilled
  // lanes zero), and the returned pointer then points into *scratch: valid
  // until the next use of that scratch or the next non-const call. Concurrent
  // readers each need their own scratch.
  // REQUIRES: block < num_blocks().
  const uint8_t* BlockNibbles(size_t block, std::vector<uint8_t>* scratch) const;
  // REQUIRES: block < full_blocks() (for prefetching the blocks ahead).
  const uint8_t* FullBlockNibbles(size_t block) const;
  // Full blocks [block, block + count) lie in one chunk: their nibbles and
  // weights are consecutive, n_pairs·32 bytes and n_weights·32 floats apart,
  // so a scan locates a chunk once rather than every block.
  // REQUIRES: block < full_blocks().
  struct FullBlockRun {
    const uint8_t* nibbles;
    const float* weights;
    size_t count;
  };
  FullBlockRun FullBlocksFrom(size_t block) const;
  // REQUIRES: block < num_blocks(), i < size().
  const float* BlockWeights(size_t block) const;
  // Vector i's code bytes, in place. REQUIRES also: keep() != kNibbles, or i
  // in the open block.
  const uint8_t* Code(size_t i) const;
  // Vector i's code bytes (code_bytes) into out, whatever keep() is.
  void CopyCode(size_t i, uint8_t* out) const;
  // ‖x − μ‖² of vector i (‖x‖² without a center).
  float SquaredNorm(size_t i) const;
  // Those of block `block`'s vectors, consecutive; defined for the vectors
  // that exist. REQUIRES: block < num_blocks().
  const float* BlockSquaredNorms(size_t block) const;
  // The center μ: empty, or dim floats.
  const std::vector<float>& center() const { return center_; }

  const Codec& codec() const { return *codec_; }
  const ScanLayout& layout() const { return layout_; }
  Keep keep() const { return keep_; }
  // Bytes held: the nibbles and codes kept, weights and norms of every
  // allocated chunk, and the open block's codes.
  size_t MemoryBytes() const;

 private:
  // For B = ChunkBlocks(c) blocks, left uninitialized when allocated (a
  // block's weights are zeroed when its first vector arrives and its nibbles
  // written whole when its 32nd does, so memory is touched only as it fills):
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  struct Chunk {
    std::unique_ptr<uint8_t[], Free> nibbles;  // B · n_pairs · 32 (AllocateNibbles), if kept
    std::unique_ptr<float[]> weights;    // B · n_weights · 32
    std::unique_ptr<uint8_t[]> codes;    // B · 32 · code_bytes, if kept
    std::unique_ptr<float[]> sq_norms;   // B · 32
    size_t blocks = 0;
  };
  // Chunk c holds ChunkBlocks(c) blocks; block b is block *offset of chunk
  // *chunk.
  static size_t ChunkBlocks(size_t c);
  // Chunks 0…9 hold 1, 2, 4, …, 512 blocks (1023 in all); every later one
  // holds kBlocksPerChunk.
  static constexpr size_t kGrowingChunks = std::bit_width(kBlocksPerChunk) - 1;
  static constexpr size_t kGrowingBlocks = kBlocksPerChunk - 1;
  static void Locate(size_t block, size_t* chunk, size_t* offset) {
    if (block < kGrowingBlocks) {
      *chunk = static_cast<size_t>(std::bit_width(block + 1)) - 1;
      *offset = block + 1 - (size_t{1} << *chunk);
    } else {
      *chunk = kGrowingChunks + (block - kGrowingBlocks) / kBlocksPerChunk;
      *offset = (block - kGrowingBlocks) % kBlocksPerChunk;
    }
  }
  // Slot of vector i: its chunk and its index within that chunk.
  void LocateVector(size_t i, size_t* chunk, size_t* in_chunk) const;
  // sq_norms: n exact ‖x‖², or nullptr to derive them from the codes.
  void AppendCodes(const uint8_t* codes, size_t n, const float* sq_norms);
  // The nibbles of `count` consecutive codes (lanes 0…count − 1; the other
  // lanes zero) into one block's n_pairs · 32 bytes.
  void FillNibbles(const uint8_t* codes, size_t count, uint8_t* nibbles) const;
  // BlockNibbles of the open block. REQUIRES: size() % 32 != 0.
  const uint8_t* OpenBlockNibbles(std::vector<uint8_t>* scratch) const;
  CodeBlocks(std::shared_ptr<const Codec> codec, ScanLayout layout, std::vector<float> center,
             Keep keep);
  bool NibblesKept() const { return keep_ != Keep::kCodes; }
  bool CodesKept() const { return keep_ != Keep::kNibbles; }
  // kNibbles: vector i's code from its block's nibbles and weights into out.
  void RebuildCode(size_t i, uint8_t* out) const;
  Chunk& ChunkFor(size_t i);  // allocates up to vector i's chunk

  std::shared_ptr<const Codec> codec_;
  ScanLayout layout_;
  Keep keep_;
  // kNibbles: the open block's codes (32 · code_bytes).
  std::vector<uint8_t> open_codes_;
  // For MSE formats at 1, 2 or 4 bits without outliers, the packed index
  // bytes of a code are its nibble pairs, in order: they start at this byte
  // of the code. kNoDirect otherwise.
  static constexpr size_t kNoDirect = ~size_t{0};
  size_t direct_offset_ = kNoDirect;
  std::vector<float> scale_scratch_;  // AppendCodes' buffer
  std::vector<float> center_;
  size_t block_nibble_bytes_, block_weights_;
  size_t size_ = 0;
  std::vector<std::unique_ptr<Chunk>> chunks_;
};

// Inline: the scorer calls these for every block it scans.
inline const uint8_t* CodeBlocks::FullBlockNibbles(size_t block) const {
  assert(NibblesKept());
  size_t c, offset;
  Locate(block, &c, &offset);
  return &chunks_[c]->nibbles[offset * block_nibble_bytes_];
}

inline CodeBlocks::FullBlockRun CodeBlocks::FullBlocksFrom(size_t block) const {
  size_t c, offset;
  Locate(block, &c, &offset);
  const Chunk& chunk = *chunks_[c];
  assert(NibblesKept());
  return {&chunk.nibbles[offset * block_nibble_bytes_], &chunk.weights[offset * block_weights_],
          std::min(chunk.blocks - offset, full_blocks() - block)};
}

inline const uint8_t* CodeBlocks::BlockNibbles(size_t block,
                                               std::vector<uint8_t>* scratch) const {
  return block < full_blocks() ? FullBlockNibbles(block) : OpenBlockNibbles(scratch);
}

inline const float* CodeBlocks::BlockSquaredNorms(size_t block) const {
  size_t c, offset;
  Locate(block, &c, &offset);
  return &chunks_[c]->sq_norms[offset * 32];
}

inline const float* CodeBlocks::BlockWeights(size_t block) const {
  size_t c, offset;
  Locate(block, &c, &offset);
  return &chunks_[c]->weights[offset * block_weights_];
}

}  // namespace tqdb::index

#endif  // TQDB_INDEX_SCAN_CODE_BLOCKS_H_
