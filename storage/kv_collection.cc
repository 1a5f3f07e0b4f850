#include "storage/kv_collection.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "index/scan/attend.h"
#include "index/scan/scorer.h"
#include "storage/internal/kv_state.h"

namespace tqdb::storage {

using internal::Clamp;

// --- Creation and loading ---------------------------------------------------

namespace {

absl::Status CheckFormat(const index::Format& f, const std::string& what, bool value) {
  if (value && f.mode != index::QuantMode::kMse) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " format '", f.Name(), "' must be an MSE format (no QJL)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<KvCollection>> KvCollection::Create(
    Engine* engine, const std::string& name, const KvCollectionConfig& config) {
  const KvCollectionConfig& c = config;
  if (c.num_layers < 1 || c.num_layers > 1000 || c.num_kv_heads < 1 || c.num_kv_heads > 1000 ||
      c.head_dim < 2 || c.head_dim > 65536) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV shape must have 1…1000 layers, 1…1000 KV heads and head_dim 2…65536, got ",
        c.num_layers, " × ", c.num_kv_heads, " × ", c.head_dim));
  }
  if (c.boundary_layers < 0 || 2 * c.boundary_layers > c.num_layers) {
    return absl::InvalidArgumentError(absl::StrCat("boundary_layers must be in 0…",
                                                   c.num_layers / 2, ", got ", c.boundary_layers));
  }
  if (c.exact_dtype != DType::kF16 && c.exact_dtype != DType::kBF16 &&
      c.exact_dtype != DType::kF32) {
    return absl::InvalidArgumentError("exact_dtype must be f16, bf16 or f32");
  }
  if (c.page_tokens < 1 || c.page_tokens > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_tokens must be in 1…65536, got ", c.page_tokens));
  }
  proto::Collection catalog;
  catalog.set_catalog_version(kCatalogVersion);
  catalog.set_name(name);
  proto::KvCollection* kv = catalog.mutable_kv();
  kv->set_num_layers(c.num_layers);
  kv->set_num_kv_heads(c.num_kv_heads);
  kv->set_head_dim(c.head_dim);
  kv->set_page_tokens(c.page_tokens);
  kv->set_key_format_name(c.key_format);
  kv->set_value_format_name(c.value_format);
  kv->set_boundary_layers(c.boundary_layers);
  kv->set_boundary_key_format_name(c.boundary_key_format);
  kv->set_boundary_value_format_name(c.boundary_value_format);
  kv->set_exact_window(c.exact_window);
  kv->set_exact_dtype(static_cast<int>(c.exact_dtype));
  for (int layer = 0; layer < c.num_layers; ++layer) {
    const bool boundary = layer < c.boundary_layers || layer >= c.num_layers - c.boundary_layers;
    TQDB_ASSIGN_OR_RETURN(
        index::Format kf,
        index::ParseFormat(boundary ? c.boundary_key_format : c.key_format, c.head_dim, c.seed));
    TQDB_ASSIGN_OR_RETURN(
        index::Format vf, index::ParseFormat(boundary ? c.boundary_value_format : c.value_format,
                                             c.head_dim, c.seed));
    TQDB_RETURN_IF_ERROR(CheckFormat(kf, "key", false));
    TQDB_RETURN_IF_ERROR(CheckFormat(vf, "value", true));
    kv->add_key_formats(kf.Serialize());
    kv->add_value_formats(vf.Serialize());
  }
  std::vector<std::string> families;
  for (int layer = 0; layer < c.num_layers; ++layer) {
    for (int head = 0; head < c.num_kv_heads; ++head) {
      families.push_back(KvColumnFamily(name, layer, head));
    }
  }
  families.push_back(TailColumnFamily(name));
  if (c.exact_window > 0) families.push_back(WindowColumnFamily(name));
  TQDB_RETURN_IF_ERROR(engine->CreateFamilies(families));
  rocksdb::WriteBatch batch;
  batch.Put(engine->catalog(), CollectionKey(name), catalog.SerializeAsString());
  TQDB_RETURN_IF_ERROR(engine->Write(&batch, absl::StrCat("creating collection '", name, "'")));
  return Load(engine, name, catalog.SerializeAsString());
}

absl::StatusOr<std::shared_ptr<KvCollection>> KvCollection::Load(Engine* engine,
                                                                  const std::string& name,
                                                                  std::string_view stored) {
  auto s = std::make_unique<State>();
  s->engine = engine;
  s->name = name;
  if (!s->catalog.ParseFromArray(stored.data(), static_cast<int>(stored.size())) ||
      !s->catalog.has_kv()) {
    return absl::DataLossError(absl::StrCat("collection '", name, "': unreadable catalog entry"));
  }
  if (s->catalog.catalog_version() > kCatalogVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "collection '", name, "' was written by a newer tqdb (catalog version ",
        s->catalog.catalog_version(), " > ", kCatalogVersion, ")"));
  }
  const proto::KvCollection& kv = s->catalog.kv();
  KvCollectionConfig& c = s->config;
  c.num_layers = kv.num_layers();
  c.num_kv_heads = kv.num_kv_heads();
  c.head_dim = kv.head_dim();
  c.page_tokens = kv.page_tokens();
  c.key_format = kv.key_format_name();
  c.value_format = kv.value_format_name();
  c.boundary_layers = kv.boundary_layers();
  c.boundary_key_format = kv.boundary_key_format_name();
  c.boundary_value_format = kv.boundary_value_format_name();
  c.exact_window = kv.exact_window();
  c.exact_dtype = static_cast<DType>(kv.exact_dtype() == 0 ? 2 : kv.exact_dtype());
  if (c.num_layers < 1 || c.num_kv_heads < 1 || c.page_tokens < 1 ||
      kv.key_formats_size() != c.num_layers || kv.value_formats_size() != c.num_layers) {
    return absl::DataLossError(absl::StrCat("collection '", name, "': inconsistent catalog entry"));
  }
  s->families = c.num_layers * c.num_kv_heads;
  {
    absl::StatusOr<index::Format> f = index::Format::Deserialize(kv.key_formats(0));
    if (f.ok()) c.seed = f->seed;  // every layer's formats share the seed
  }
  for (int layer = 0; layer < c.num_layers; ++layer) {
    for (const auto* list : {&kv.key_formats(), &kv.value_formats()}) {
      absl::StatusOr<index::Format> f = index::Format::Deserialize((*list)[layer]);
      if (!f.ok()) {
        return absl::DataLossError(absl::StrCat("collection '", name, "' layer ", layer, ": ",
                                                f.status().message()));
      }
      TQDB_ASSIGN_OR_RETURN(auto codec, index::Codec::Create(*f));
      (list == &kv.key_formats() ? s->key_codecs : s->value_codecs).push_back(std::move(codec));
    }
    for (int head = 0; head < c.num_kv_heads; ++head) {
      s->record_offset.push_back(s->token_code_bytes);
      s->token_code_bytes += s->RecordBytes(layer);
    }
    // Per vector in CodeBlocks: nibble pairs, weights, code bytes, norm.
    for (const auto& codec : {s->key_codecs.back(), s->value_codecs.back()}) {
      const index::Format& f = codec->format();
      const size_t weights = f.NumScales() + (f.mode == index::QuantMode::kProd ? 1 : 0);
      const size_t nibble_bytes = (f.dim * std::max(f.bits, 1) + 7) / 8 + f.QjlRows() / 8 + 1;
      s->token_memory_bytes += c.num_kv_heads * (nibble_bytes + 4 * weights + codec->code_bytes() + 4);
    }
  }
  for (int layer = 0; layer < c.num_layers; ++layer) {
    for (int head = 0; head < c.num_kv_heads; ++head) {
      const std::string family = KvColumnFamily(name, layer, head);
      rocksdb::ColumnFamilyHandle* handle = engine->Family(family);
      if (handle == nullptr) {
        return absl::DataLossError(absl::StrCat("collection '", name,
                                                "': missing column family ", family));
      }
      s->handles.push_back(handle);
    }
  }
  s->tail = engine->Family(TailColumnFamily(name));
  if (c.exact_window > 0) s->window = engine->Family(WindowColumnFamily(name));
  if (s->tail == nullptr || (c.exact_window > 0 && s->window == nullptr)) {
    return absl::DataLossError(
        absl::StrCat("collection '", name, "': missing its tail or window column family"));
  }
  // Sequences.
  std::unique_lock<std::shared_mutex> lock(s->mu);
  const std::string prefix = SequenceKeyPrefix(name);
  std::unique_ptr<rocksdb::Iterator> it(
      engine->db()->NewIterator(rocksdb::ReadOptions(), engine->catalog()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto seq = std::make_shared<Seq>();
    const rocksdb::Slice k = it->key(), v = it->value();
    if (!ParseSequenceKey(name, std::string_view(k.data(), k.size()), &seq->id) ||
        !seq->meta.ParseFromArray(v.data(), static_cast<int>(v.size())) ||
        seq->meta.base() > seq->meta.paged() || seq->meta.paged() > seq->meta.length() ||
        seq->meta.window_begin() > seq->meta.length()) {
      return absl::DataLossError(absl::StrCat("collection '", name, "': unreadable sequence entry"));
    }
    {
      std::unique_lock<std::shared_mutex> seg_lock(seq->seg_mu);
      seq->visible_length = seq->meta.length();
    }
    s->next_id = std::max(s->next_id, seq->id + 1);
    if (!seq->meta.dropped()) s->by_user[seq->meta.user_id()] = seq;
    s->by_id[seq->id] = std::move(seq);
  }
  TQDB_RETURN_IF_ERROR(FromRocks(it->status(), absl::StrCat("loading collection '", name, "'")));
  return std::shared_ptr<KvCollection>(new KvCollection(std::move(s)));
}

KvCollection::KvCollection(std::unique_ptr<State> state) : s_(std::move(state)) {}
KvCollection::~KvCollection() = default;

const std::string& KvCollection::name() const { return s_->name; }
const KvCollectionConfig& KvCollection::config() const { return s_->config; }
size_t KvCollection::token_code_bytes() const { return s_->token_code_bytes; }

KvTokens FloatTokens(size_t n_tokens, absl::Span<const float> keys,
                     absl::Span<const float> values) {
  KvTokens t;
  t.n_tokens = n_tokens;
  t.dtype = DType::kF32;
  t.keys = absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(keys.data()),
                                     keys.size() * sizeof(float));
  t.values = absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(values.data()),
                                       values.size() * sizeof(float));
  return t;
}

// Tokens of one Score work item (a multiple of the 32-token block).
constexpr uint64_t kScorePartTokens = 4096;

absl::StatusOr<std::vector<float>> KvCollection::Score(uint64_t seq_id, int layer,
                                                       absl::Span<const float> queries,
                                                       const KvScoreOptions& options) {
  std::vector<float> out;
  TQDB_RETURN_IF_ERROR(ScoreInto(
                           seq_id, layer, queries,
                           [&](uint64_t n) {
                             out.resize(queries.size() / s_->config.head_dim * n);
                             return out.data();
                           },
                           options)
                           .status());
  return out;
}

absl::StatusOr<uint64_t> KvCollection::ScoreInto(uint64_t seq_id, int layer,
                                                 absl::Span<const float> queries,
                                                 absl::FunctionRef<float*(uint64_t n)> output,
                                                 const KvScoreOptions& options) {
  State& s = *s_;
  std::shared_lock<std::shared_mutex> lock(s.mu);
  size_t group;
  TQDB_ASSIGN_OR_RETURN(Seq * seq, s.ForQuery(seq_id, layer, queries, options.scale, &group));
  const size_t d = s.config.head_dim, heads = s.config.num_kv_heads;
  uint64_t scored = 0;
  TQDB_RETURN_IF_ERROR(s.WithSegment(seq, [&](const Segment& segment, uint64_t length) {
    const auto [begin, end] = Clamp(options.begin, options.end, length);
    const size_t n = end - begin;
    scored = n;
    float* const out = output(n);
    if (n == 0) return absl::OkStatus();
    // Queries are prepared once per head; the scoring is split into parts of
    // kScorePartTokens tokens per head, so a thread that stalls leaves its
    // share of the work to the others (the tail latency of a call).
    const size_t parts = (n + kScorePartTokens - 1) / kScorePartTokens;
    std::vector<index::PreparedQuery> prepared(heads * group);
    s.engine->pool().ParallelFor(heads, [&](size_t h) {
      const index::CodeBlocks& keys = *segment.keys[s.Family(layer, static_cast<int>(h))];
      for (size_t g = 0; g < group; ++g) {
        index::PrepareQuery(keys.codec(), keys.layout(), &queries[(h * group + g) * d],
                            &prepared[h * group + g]);
      }
    });
    std::vector<absl::Status> status(heads * parts);
    s.engine->pool().ParallelFor(heads * parts, [&](size_t item) {
      if (options.cancelled && options.cancelled()) {
        status[item] = absl::CancelledError("Score cancelled");
        return;
      }
      const size_t h = item / parts;
      const uint64_t t0 = begin + (item % parts) * kScorePartTokens;
      const uint64_t t1 = std::min<uint64_t>(end, t0 + kScorePartTokens);
      const int f = s.Family(layer, static_cast<int>(h));
      // The group's rows of `out` directly, scaled.
      index::ScoreRange(*segment.keys[f], &prepared[h * group], static_cast<int>(group), t0, t1,
                        options.scale, &out[h * group * n + (t0 - begin)], n);
      const internal::ExactRows* exact = segment.exact.get();
      const uint64_t exact_from = exact != nullptr ? std::max(t0, exact->begin()) : t1;
      for (size_t g = 0; g < group; ++g) {
        const float* q = &queries[(h * group + g) * d];
        float* dst = &out[(h * group + g) * n];
        // Tokens in the exact window: their exact logits replace the codes'.
        for (uint64_t t = exact_from; t < t1; ++t) {
          const float* k = exact->Keys(f, t);
          float dot = 0.0f;
          for (size_t j = 0; j < d; ++j) dot += q[j] * k[j];
          dst[t - begin] = options.scale * dot;
        }
      }
    });
    for (const absl::Status& st : status) TQDB_RETURN_IF_ERROR(st);
    return absl::OkStatus();
  }));
  return scored;
}

absl::StatusOr<std::vector<float>> KvCollection::Attend(uint64_t seq_id, int layer,
                                                        absl::Span<const float> queries,
                                                        const KvAttendOptions& options) {
  State& s = *s_;
  std::shared_lock<std::shared_mutex> lock(s.mu);
  size_t group;
  TQDB_ASSIGN_OR_RETURN(Seq * seq, s.ForQuery(seq_id, layer, queries, options.scale, &group));
  const size_t d = s.config.head_dim, heads = s.config.num_kv_heads;
  const size_t tail_floats = heads * options.tail_tokens * d;
  if (options.tail_keys.size() != tail_floats || options.tail_values.size() != tail_floats) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the exact tail holds ", options.tail_keys.size(), " key and ",
        options.tail_values.size(), " value floats; expected [kv_heads=", heads, "][tokens=",
        options.tail_tokens, "][head_dim=", d, "] = ", tail_floats));
  }
  for (absl::Span<const float> side : {options.tail_keys, options.tail_values}) {
    for (float v : side) {
      if (!std::isfinite(v)) return absl::InvalidArgumentError("the exact tail is not finite");
    }
  }
  std::vector<float> out(queries.size());
  TQDB_RETURN_IF_ERROR(s.WithSegment(seq, [&](const Segment& segment, uint64_t length) {
    const auto [begin, end] = Clamp(options.begin, options.end, length);
    if (begin == end && options.tail_tokens == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "attention over no token: ", SeqName(seq_id), " holds ", length,
          " tokens, range [", options.begin, ", ", options.end, ")"));
    }
    // Codes for [begin, exact_from), the exact window's rows after it, in
    // one softmax (index::Attend's exact tail).
    const internal::ExactRows* exact = segment.exact.get();
    const uint64_t exact_from =
        exact != nullptr ? std::min(end, std::max(begin, exact->begin())) : end;
    index::AttendOptions attend;
    attend.scale = options.scale;
    attend.begin = begin;
    attend.end = exact_from;
    std::vector<absl::Status> status(heads);
    s.engine->pool().ParallelFor(heads, [&](size_t h) {
      if (options.cancelled && options.cancelled()) {
        status[h] = absl::CancelledError("Attend cancelled");
        return;
      }
      const int f = s.Family(layer, static_cast<int>(h));
      index::ExactTail tail;
      if (exact_from < end) {
        tail.keys = exact->Keys(f, exact_from);
        tail.values = exact->Values(f, exact_from);
        tail.n = end - exact_from;
      }
      std::vector<float> joined_keys, joined_values;  // window rows, then the caller's
      if (options.tail_tokens > 0) {
        const size_t extra = options.tail_tokens * d;
        for (auto [rows, given, joined] :
             {std::tuple{tail.keys, options.tail_keys.data(), &joined_keys},
              std::tuple{tail.values, options.tail_values.data(), &joined_values}}) {
          joined->reserve(tail.n * d + extra);
          if (tail.n > 0) joined->assign(rows, rows + tail.n * d);
          joined->insert(joined->end(), given + h * extra, given + (h + 1) * extra);
        }
        tail = {joined_keys.data(), joined_values.data(), tail.n + options.tail_tokens};
      }
      status[h] = index::Attend(*segment.keys[f], *segment.values[f],
                                queries.subspan(h * group * d, group * d), attend, tail,
                                &out[h * group * d]);
    });
    for (const absl::Status& st : status) TQDB_RETURN_IF_ERROR(st);
    return absl::OkStatus();
  }));
  return out;
}

absl::Status KvCollection::Read(uint64_t seq_id, uint64_t begin, uint64_t end,
                                std::vector<float>* keys, std::vector<float>* values) {
  State& s = *s_;
  std::shared_lock<std::shared_mutex> lock(s.mu);
  TQDB_ASSIGN_OR_RETURN(Seq * seq, s.Live(seq_id));
  const size_t d = s.config.head_dim;
  return s.WithSegment(seq, [&](const Segment& segment, uint64_t length) {
    if (begin > end || end > length) {
      return absl::InvalidArgumentError(absl::StrCat("read range [", begin, ", ", end,
                                                     ") is not within the ", length,
                                                     " tokens of ", SeqName(seq_id)));
    }
    const size_t n = end - begin;
    keys->resize(s.families * n * d);
    values->resize(s.families * n * d);
    const internal::ExactRows* exact = segment.exact.get();
    std::vector<uint8_t> code;
    for (int f = 0; f < s.families; ++f) {
      const index::CodeBlocks& k = *segment.keys[f];
      const index::CodeBlocks& v = *segment.values[f];
      code.resize(std::max(k.codec().code_bytes(), v.codec().code_bytes()));
      for (size_t t = 0; t < n; ++t) {
        float* k_out = &(*keys)[(f * n + t) * d];
        float* v_out = &(*values)[(f * n + t) * d];
        if (exact != nullptr && begin + t >= exact->begin()) {  // what is stored exactly
          std::copy_n(exact->Keys(f, begin + t), d, k_out);
          std::copy_n(exact->Values(f, begin + t), d, v_out);
          continue;
        }
        k.CopyCode(begin + t, code.data());
        k.codec().Decode(code.data(), 1, k_out);
        v.CopyCode(begin + t, code.data());
        v.codec().Decode(code.data(), 1, v_out);
      }
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<uint64_t> KvCollection::Length(uint64_t seq_id) {
  State& s = *s_;
  std::shared_lock<std::shared_mutex> lock(s.mu);
  TQDB_ASSIGN_OR_RETURN(Seq * seq, s.Live(seq_id));
  std::shared_lock<std::shared_mutex> seg_lock(seq->seg_mu);
  return seq->visible_length;
}

std::vector<uint64_t> KvCollection::Sequences() {
  State& s = *s_;
  std::shared_lock<std::shared_mutex> lock(s.mu);
  std::vector<uint64_t> ids;
  if (!s.unavailable.ok()) return ids;
  for (const auto& [id, seq] : s.by_user) ids.push_back(id);
  return ids;
}

absl::StatusOr<KvStats> KvCollection::Stats() {
  State& s = *s_;
  std::shared_lock<std::shared_mutex> lock(s.mu);
  TQDB_RETURN_IF_ERROR(s.unavailable);
  KvStats stats;
  stats.sequences = s.by_user.size();
  for (const auto& [id, seq] : s.by_id) {
    std::shared_lock<std::shared_mutex> seg_lock(seq->seg_mu);
    if (!seq->meta.dropped()) stats.tokens += seq->visible_length;
    stats.stored_tokens += seq->visible_length - std::min(seq->visible_length, seq->meta.base());
    if (seq->segment != nullptr) stats.memory_bytes += seq->segment->MemoryBytes();
  }
  stats.code_bytes = stats.stored_tokens * s.token_code_bytes;
  // Every family the collection writes: pages, tail and window.
  std::vector<rocksdb::ColumnFamilyHandle*> families = s.handles;
  families.push_back(s.tail);
  families.push_back(s.window);
  stats.disk_bytes = s.engine->SstBytes(families);
  const double fp16 = 2.0 * 2.0 * s.config.head_dim * s.families * stats.stored_tokens;
  stats.compression_vs_fp16 = stats.disk_bytes > 0 ? fp16 / stats.disk_bytes : 0.0;
  return stats;
}

// --- Lifecycle --------------------------------------------------------------

void KvCollection::Close(const absl::Status& why) {
  State& s = *s_;
  std::unique_lock<std::shared_mutex> lock(s.mu);
  if (!s.unavailable.ok()) return;
  s.unavailable = why;
  for (auto& [id, seq] : s.by_id) {
    s.engine->lru().Forget(reinterpret_cast<uintptr_t>(seq.get()));
    std::unique_lock<std::shared_mutex> seg_lock(seq->seg_mu);
    seq->segment.reset();
  }
  s.by_user.clear();
  s.by_id.clear();
  s.handles.clear();
  s.tail = s.window = nullptr;
}

std::vector<std::string> KvCollection::FamilyNames() const {
  std::vector<std::string> names;
  for (int layer = 0; layer < s_->config.num_layers; ++layer) {
    for (int head = 0; head < s_->config.num_kv_heads; ++head) {
      names.push_back(KvColumnFamily(s_->name, layer, head));
    }
  }
  names.push_back(TailColumnFamily(s_->name));
  if (s_->config.exact_window > 0) names.push_back(WindowColumnFamily(s_->name));
  return names;
}

}  // namespace tqdb::storage
