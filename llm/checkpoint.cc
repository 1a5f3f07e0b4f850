#include "llm/checkpoint.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace tqdb::llm {
namespace {

// Generous ceilings that keep every size product within uint64 and reject
// files that are not checkpoints at all.
constexpr int64_t kMaxDim = 1 << 16;
constexpr int64_t kMaxHidden = 1 << 20;
constexpr int64_t kMaxLayers = 1 << 10;
constexpr int64_t kMaxVocab = 1 << 22;
constexpr int64_t kMaxSeqLen = 1 << 22;

absl::Status Corrupt(const std::string& why) {
  return absl::DataLossError(absl::StrCat("not a valid llama2.c checkpoint: ", why));
}

}  // namespace

absl::StatusOr<uint64_t> Checkpoint::ExpectedFloats(const ModelConfig& c) {
  auto in = [](int v, int64_t hi) { return v > 0 && v <= hi; };
  if (!in(c.dim, kMaxDim) || !in(c.hidden_dim, kMaxHidden) || !in(c.n_layers, kMaxLayers) ||
      !in(c.n_heads, kMaxDim) || !in(c.n_kv_heads, kMaxDim) || !in(c.vocab_size, kMaxVocab) ||
      !in(c.seq_len, kMaxSeqLen)) {
    return Corrupt(absl::StrCat("sizes out of range: dim ", c.dim, ", hidden_dim ", c.hidden_dim,
                                ", n_layers ", c.n_layers, ", n_heads ", c.n_heads, ", n_kv_heads ",
                                c.n_kv_heads, ", vocab_size ", c.vocab_size, ", seq_len ",
                                c.seq_len));
  }
  if (c.dim % c.n_heads != 0) {
    return Corrupt(absl::StrCat("dim ", c.dim, " is not a multiple of n_heads ", c.n_heads));
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    return Corrupt(
        absl::StrCat("n_heads ", c.n_heads, " is not a multiple of n_kv_heads ", c.n_kv_heads));
  }
  if (c.head_dim() % 2 != 0) {
    return Corrupt(absl::StrCat("head_dim ", c.head_dim(), " is odd (RoPE rotates pairs)"));
  }
  const uint64_t d = c.dim, h = c.hidden_dim, l = c.n_layers, v = c.vocab_size, kv = c.kv_dim(),
                 s = c.seq_len, hd = c.head_dim();
  uint64_t n = v * d;                    // token_embedding
  n += l * d;                            // rms_att
  n += l * d * d + 2 * l * kv * d;       // wq, wk, wv
  n += l * d * d;                        // wo
  n += l * d;                            // rms_ffn
  n += 3 * l * h * d;                    // w1, w2, w3
  n += d;                                // rms_final
  n += 2 * s * (hd / 2);                 // legacy RoPE tables
  if (!c.shared_classifier) n += v * d;  // wcls
  return n;
}

absl::Status Checkpoint::Parse(const char* data, size_t size) {
  if (size < kCheckpointHeaderBytes) {
    return Corrupt(absl::StrCat(size, " bytes is shorter than the 28-byte header"));
  }
  int32_t h[7];
  std::memcpy(h, data, sizeof(h));
  ModelConfig c;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.shared_classifier = h[5] > 0;
  c.vocab_size = h[5] > 0 ? h[5] : (h[5] == INT32_MIN ? 0 : -h[5]);
  c.seq_len = h[6];
  TQDB_ASSIGN_OR_RETURN(const uint64_t floats, ExpectedFloats(c));
  const uint64_t expected = kCheckpointHeaderBytes + floats * sizeof(float);
  if (size != expected) {
    return Corrupt(absl::StrCat("the header implies ", expected, " bytes, the file has ", size));
  }
  const float* p = reinterpret_cast<const float*>(data + kCheckpointHeaderBytes);
  const uint64_t d = c.dim, hid = c.hidden_dim, l = c.n_layers, v = c.vocab_size, kv = c.kv_dim();
  auto take = [&p](uint64_t n) {
    const float* start = p;
    p += n;
    return start;
  };
  Weights w;
  w.token_embedding = take(v * d);
  w.rms_att = take(l * d);
  w.wq = take(l * d * d);
  w.wk = take(l * kv * d);
  w.wv = take(l * kv * d);
  w.wo = take(l * d * d);
  w.rms_ffn = take(l * d);
  w.w1 = take(l * hid * d);
  w.w2 = take(l * d * hid);
  w.w3 = take(l * hid * d);
  w.rms_final = take(d);
  take(2 * static_cast<uint64_t>(c.seq_len) * (c.head_dim() / 2));
  w.wcls = c.shared_classifier ? w.token_embedding : take(v * d);
  config_ = c;
  weights_ = w;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot open checkpoint ", path, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::NotFoundError(absl::StrCat("cannot stat ", path, ": ", std::strerror(err)));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  std::unique_ptr<Checkpoint> ckpt(new Checkpoint());
  if (size > 0) {
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot map ", path, ": ", std::strerror(err)));
    }
    ckpt->map_ = map;
    ckpt->map_bytes_ = size;
  }
  ::close(fd);
  const absl::Status parsed = ckpt->Parse(static_cast<const char*>(ckpt->map_), ckpt->map_bytes_);
  if (!parsed.ok()) return absl::Status(parsed.code(), absl::StrCat(path, ": ", parsed.message()));
  return ckpt;
}

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::FromBytes(std::string bytes) {
  std::unique_ptr<Checkpoint> ckpt(new Checkpoint());
  ckpt->bytes_ = std::move(bytes);
  TQDB_RETURN_IF_ERROR(ckpt->Parse(ckpt->bytes_.data(), ckpt->bytes_.size()));
  return ckpt;
}

Checkpoint::~Checkpoint() {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
}

}  // namespace tqdb::llm
