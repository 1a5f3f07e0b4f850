#include "index/scan/code_blocks.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include <sys/mman.h>

#include "absl/strings/str_cat.h"

#include "common/status.h"
#include "index/scan/internal/fastscan_kernels.h"

namespace tqdb::index {

using internal::kBlockVectors;
using internal::kPairCodeBytes;

bool CodeBlocks::CanRebuildCodes(const Format& f) {
  return f.mode == QuantMode::kMse && f.outlier_channels == 0 &&
         (f.bits == 1 || f.bits == 2 || f.bits == 4);
}

absl::StatusOr<std::unique_ptr<CodeBlocks>> CodeBlocks::Create(std::shared_ptr<const Codec> codec,
                                                               std::vector<float> center,
                                                               Keep keep) {
  TQDB_ASSIGN_OR_RETURN(ScanLayout layout, ScanLayout::Create(codec->format()));
  if (!center.empty() && center.size() != static_cast<size_t>(codec->dim())) {
    return absl::InvalidArgumentError(absl::StrCat("center must have dim = ", codec->dim(),
                                                   " floats, got ", center.size()));
  }
  for (float c : center) {
    if (!std::isfinite(c)) return absl::InvalidArgumentError("center is not finite");
  }
  std::unique_ptr<CodeBlocks> blocks(
      new CodeBlocks(std::move(codec), std::move(layout), std::move(center), keep));
  // A code is its scales, then its nibble pairs in order: nothing else to keep.
  if (keep == Keep::kNibbles &&
      (!CanRebuildCodes(blocks->codec().format()) || blocks->direct_offset_ == kNoDirect ||
       blocks->codec().code_bytes() !=
           blocks->direct_offset_ + static_cast<size_t>(blocks->layout().n_pairs()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("codes of ", blocks->codec().format().Name(),
                     " cannot be rebuilt from nibbles; keep them (Keep::kBoth)"));
  }
  return blocks;
}

CodeBlocks::CodeBlocks(std::shared_ptr<const Codec> codec, ScanLayout layout,
                       std::vector<float> center, Keep keep)
    : codec_(std::move(codec)),
      layout_(std::move(layout)),
      keep_(keep),
      center_(std::move(center)),
      block_nibble_bytes_(static_cast<size_t>(layout_.n_pairs()) * kPairCodeBytes),
      block_weights_(static_cast<size_t>(layout_.n_weights()) * kBlockVectors) {
  const Format& f = codec_->format();
  const int per = f.bits == 0 ? 0 : 4 / f.bits;
  bool direct = CanRebuildCodes(f);
  const auto& groups = layout_.groups();
  for (size_t g = 0; direct && g < groups.size(); ++g) {
    const ScanLayout::Group& group = groups[g];
    const int first = static_cast<int>(g) * per;
    const bool in_order = group.kind == ScanLayout::GroupKind::kCentroids && group.bits == f.bits &&
                          group.first == first && group.count == std::min(per, f.dim - first);
    const bool final_pad = group.kind == ScanLayout::GroupKind::kPad && g + 1 == groups.size();
    direct = in_order || final_pad;
  }
  if (direct) direct_offset_ = static_cast<size_t>(f.NumScales()) * f.ScaleBytes();
  scale_scratch_.resize(f.NumScales());
  if (keep_ == Keep::kNibbles) open_codes_.resize(kBlockVectors * codec_->code_bytes());
}

size_t CodeBlocks::ChunkBlocks(size_t c) {
  return c < kGrowingChunks ? size_t{1} << c : kBlocksPerChunk;
}

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// Uninitialized bytes for a chunk's nibbles; 2 MiB aligned and marked for
// transparent huge pages when at least that large. Freed with std::free.
uint8_t* AllocateNibbles(size_t bytes) {
  void* p = nullptr;
  if (bytes >= kHugePage) {
    const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    p = std::aligned_alloc(kHugePage, rounded);
#ifdef MADV_HUGEPAGE
    // Advice only: without huge pages the chunk works as any other memory.
    if (p != nullptr) (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
  } else {
    p = std::malloc(std::max<size_t>(bytes, 1));
  }
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<uint8_t*>(p);
}

}  // namespace

void CodeBlocks::LocateVector(size_t i, size_t* chunk, size_t* in_chunk) const {
  size_t offset;
  Locate(i / kBlockVectors, chunk, &offset);
  *in_chunk = offset * kBlockVectors + i % kBlockVectors;
}

CodeBlocks::Chunk& CodeBlocks::ChunkFor(size_t i) {
  size_t c, in_chunk;
  LocateVector(i, &c, &in_chunk);
  while (chunks_.size() <= c) {
    const size_t blocks = ChunkBlocks(chunks_.size());
    auto chunk = std::make_unique<Chunk>();
    chunk->blocks = blocks;
    if (NibblesKept()) chunk->nibbles.reset(AllocateNibbles(blocks * block_nibble_bytes_));
    chunk->weights.reset(new float[blocks * block_weights_]);
    if (CodesKept()) chunk->codes.reset(new uint8_t[blocks * kBlockVectors * codec_->code_bytes()]);
    chunk->sq_norms.reset(new float[blocks * kBlockVectors]);
    chunks_.push_back(std::move(chunk));
  }
  return *chunks_[c];
}

absl::Status CodeBlocks::Append(const float* x, size_t n) {
  const int d = codec_->dim();
  std::vector<float> centered;
  if (!center_.empty()) {
    centered.assign(x, x + n * d);
    for (size_t i = 0; i < n; ++i) {
      for (int j = 0; j < d; ++j) centered[i * d + j] -= center_[j];
    }
    x = centered.data();
  }
  std::vector<uint8_t> codes(n * codec_->code_bytes());
  TQDB_RETURN_IF_ERROR(codec_->Encode(x, n, codes.data()));
  std::vector<float> sq_norms(n);
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (int j = 0; j < d; ++j) s += double{x[i * d + j]} * x[i * d + j];
    sq_norms[i] = static_cast<float>(s);
  }
  AppendCodes(codes.data(), n, sq_norms.data());
  return absl::OkStatus();
}

void CodeBlocks::AppendCodes(const uint8_t* codes, size_t n) { AppendCodes(codes, n, nullptr); }

void CodeBlocks::AppendCodes(const uint8_t* codes, size_t n, const float* sq_norms) {
  const Format& f = codec_->format();
  const size_t cb = codec_->code_bytes();
  std::vector<float>& scales = scale_scratch_;
  std::vector<float> decoded;
  for (size_t k = 0; k < n; ++k, ++size_) {
    const uint8_t* code = codes + k * cb;
    Chunk& chunk = ChunkFor(size_);
    size_t c, in_chunk;
    LocateVector(size_, &c, &in_chunk);
    const size_t block = in_chunk / kBlockVectors, lane = in_chunk % kBlockVectors;
    // kNibbles keeps only the open block's codes, lane by lane.
    uint8_t* slot = CodesKept() ? &chunk.codes[in_chunk * cb] : &open_codes_[lane * cb];
    std::memcpy(slot, code, cb);
    codec_->ReadScales(code, scales.data());
    if (sq_norms != nullptr) {
      chunk.sq_norms[in_chunk] = sq_norms[k];
    } else if (f.scale_rule == ScaleRule::kNorm) {  // the stored scale is ‖x‖
      chunk.sq_norms[in_chunk] = scales[0] * scales[0];
    } else {
      decoded.resize(f.dim);
      codec_->Decode(code, 1, decoded.data());
      double s = 0;
      for (float v : decoded) s += double{v} * v;
      chunk.sq_norms[in_chunk] = static_cast<float>(s);
    }
    float* weights = &chunk.weights[block * block_weights_];
    // A fresh block: its unfilled slots must read as zeros.
    if (lane == 0) std::memset(weights, 0, block_weights_ * sizeof(float));
    for (int s = 0; s < f.NumScales(); ++s) weights[s * kBlockVectors + lane] = scales[s];
    if (f.mode == QuantMode::kProd) {
      weights[f.NumScales() * kBlockVectors + lane] = codec_->QjlWeight(code);
    }
    // A full block's nibbles are written once, from its 32 codes.
    if (lane == kBlockVectors - 1 && NibblesKept()) {
      FillNibbles(slot - (kBlockVectors - 1) * cb, kBlockVectors,
                  &chunk.nibbles[block * block_nibble_bytes_]);
    }
  }
}

void CodeBlocks::FillNibbles(const uint8_t* codes, size_t count, uint8_t* nibbles) const {
  const Format& f = codec_->format();
  const size_t cb = codec_->code_bytes();
  const int n_pairs = layout_.n_pairs();  // hoisted: the byte stores below alias everything
  if (count < kBlockVectors) std::memset(nibbles, 0, block_nibble_bytes_);
  // Per thread: readers of the open block run concurrently (const), and a
  // scan reads it on every call.
  thread_local std::vector<uint8_t> idx, nib;
  if (direct_offset_ == kNoDirect) {
    idx.resize(f.dim);
    nib.resize(2 * static_cast<size_t>(n_pairs));
  }
  for (size_t lane = 0; lane < count; ++lane) {
    const uint8_t* code = codes + lane * cb;
    if (direct_offset_ != kNoDirect) {
      const uint8_t* packed = code + direct_offset_;
      for (int p = 0; p < n_pairs; ++p) nibbles[p * kPairCodeBytes + lane] = packed[p];
      continue;
    }
    codec_->UnpackIndices(code, idx.data());
    layout_.ToNibbles(idx.data(), f.mode == QuantMode::kProd ? codec_->QjlSigns(code) : nullptr,
                      nib.data());
    for (int p = 0; p < n_pairs; ++p) {
      nibbles[p * kPairCodeBytes + lane] = static_cast<uint8_t>(nib[2 * p] | nib[2 * p + 1] << 4);
    }
  }
}

const uint8_t* CodeBlocks::OpenBlockNibbles(std::vector<uint8_t>* scratch) const {
  assert(size_ % kBlockVectors != 0 && NibblesKept());
  const size_t block = size_ / kBlockVectors;
  scratch->resize(block_nibble_bytes_);
  FillNibbles(Code(block * kBlockVectors), size_ % kBlockVectors, scratch->data());
  return scratch->data();
}

void CodeBlocks::Truncate(size_t n) {
  if (n >= size_) return;
  size_t kept = 0;  // chunks kept
  if (n > 0) {
    size_t in_chunk;
    LocateVector(n - 1, &kept, &in_chunk);
    ++kept;
  }
  // kNibbles: a cut full block is open again, and its codes are needed.
  const size_t lanes = n % kBlockVectors;
  if (keep_ == Keep::kNibbles && lanes != 0 && n - lanes + kBlockVectors <= size_) {
    for (size_t lane = 0; lane < lanes; ++lane) {
      RebuildCode(n - lanes + lane, &open_codes_[lane * codec_->code_bytes()]);
    }
  }
  chunks_.resize(kept);
  // The cut block's freed slots get zero weights again (its nibbles are
  // made from its codes until it fills again); later blocks' weights are
  // zeroed when their first vector arrives.
  const size_t block_end = (n + kBlockVectors - 1) / kBlockVectors * kBlockVectors;
  for (size_t i = n; i < std::min(size_, block_end); ++i) {
    size_t c, in_chunk;
    LocateVector(i, &c, &in_chunk);
    Chunk& chunk = *chunks_[c];
    const size_t block = in_chunk / kBlockVectors, lane = in_chunk % kBlockVectors;
    for (int w = 0; w < layout_.n_weights(); ++w) {
      chunk.weights[block * block_weights_ + w * kBlockVectors + lane] = 0.0f;
    }
    chunk.sq_norms[in_chunk] = 0.0f;
  }
  size_ = n;
}

const uint8_t* CodeBlocks::Code(size_t i) const {
  const size_t cb = codec_->code_bytes();
  if (!CodesKept()) {
    assert(i / kBlockVectors == size_ / kBlockVectors);
    return &open_codes_[(i % kBlockVectors) * cb];
  }
  size_t c, in_chunk;
  LocateVector(i, &c, &in_chunk);
  return &chunks_[c]->codes[in_chunk * cb];
}

void CodeBlocks::CopyCode(size_t i, uint8_t* out) const {
  if (CodesKept() || i / kBlockVectors == size_ / kBlockVectors) {
    std::memcpy(out, Code(i), codec_->code_bytes());
  } else {
    RebuildCode(i, out);
  }
}

void CodeBlocks::RebuildCode(size_t i, uint8_t* out) const {
  const size_t block = i / kBlockVectors, lane = i % kBlockVectors;
  const float* w = BlockWeights(block);
  thread_local std::vector<float> scales;  // const: readers rebuild concurrently
  scales.resize(scale_scratch_.size());
  for (size_t k = 0; k < scales.size(); ++k) scales[k] = w[k * kBlockVectors + lane];
  codec_->WriteScales(scales.data(), out);
  const uint8_t* nib = FullBlockNibbles(block);
  for (int p = 0; p < layout_.n_pairs(); ++p) {
    out[direct_offset_ + p] = nib[p * kPairCodeBytes + lane];
  }
}

float CodeBlocks::SquaredNorm(size_t i) const {
  size_t c, in_chunk;
  LocateVector(i, &c, &in_chunk);
  return chunks_[c]->sq_norms[in_chunk];
}

size_t CodeBlocks::MemoryBytes() const {
  const size_t nibble_bytes = NibblesKept() ? block_nibble_bytes_ : 0;
  const size_t code_bytes = CodesKept() ? codec_->code_bytes() : 0;
  size_t bytes = open_codes_.size();
  for (const auto& c : chunks_) {
    bytes += c->blocks * (nibble_bytes + block_weights_ * sizeof(float) +
                          kBlockVectors * (code_bytes + sizeof(float)));
  }
  return bytes;
}

}  // namespace tqdb::index
