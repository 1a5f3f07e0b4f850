// tqdb-llm: runs a llama2.c checkpoint with tqdb's embedded store as its KV
// cache.
//
//   tqdb-llm ppl --model M --tokenizer T --text FILE --kv FORMAT [flags]
//       teacher-forced perplexity over FILE; prints one JSON line
//   tqdb-llm generate --model M --tokenizer T --prompt "…" --steps N --kv FORMAT
//       streams greedy text on stdout, then a JSON line with tokens/s on stderr
//   tqdb-llm agreement --formats K4V4,tq4p/tq4,… [--window W]
//       attention agreement with exact attention on the model's real queries,
//       keys and values (agreement.h); one JSON line per format
//   tqdb-llm needle --formats tq4,tq4p,… [--sizes 4096,32768,262144]
//       needle retrieval among real keys (needle.h); one JSON line per
//       (format, haystack size)
//
// See Usage() for every flag.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "absl/strings/str_split.h"
#include "llm/agreement.h"
#include "llm/checkpoint.h"
#include "llm/evaluate.h"
#include "llm/exact_kv_cache.h"
#include "llm/kv_spec.h"
#include "llm/kv_trace.h"
#include "llm/needle.h"
#include "llm/split_kv_cache.h"
#include "llm/store_kv_cache.h"
#include "llm/tokenizer.h"
#include "llm/transformer.h"
#include "storage/store.h"

namespace tqdb::llm {
namespace {

void Usage() {
  std::fprintf(
      stderr,
      "usage: tqdb-llm ppl|generate|agreement|needle [flags]\n"
      "  --model PATH          llama2.c checkpoint (../shared/data/llm/stories260K.bin)\n"
      "  --tokenizer PATH      llama2.c tokenizer (../shared/data/llm/tok512.bin)\n"
      "  --kv FORMAT           fp32 | K<b>V<b> (K4V4, K4V2, …) | <key>/<value> format names\n"
      "                        (turbo3/turbo3, tq4p/tq4)  [K4V4]\n"
      "  --boundary N          first and last N layers use --boundary-kv [0]\n"
      "  --boundary-kv FORMAT  K<b>V<b>, <key>/<value>, or fp32: exact in process memory [K4V4]\n"
      "  --window W            keep the W most recent tokens exact [0]\n"
      "  --window-dtype T      f16 | bf16 | f32 [f16]\n"
      "  --cache C             store | memory (memory: in-process exact fp32, --kv fp32 only)\n"
      "                        [store]\n"
      "  --attend A            store (the store attends, the current token merged in) |\n"
      "                        decoded (decoded codes mirrored, attention in process) [store]\n"
      "  --data-dir DIR        the store's directory [a temporary one, removed at exit]\n"
      "  --collection NAME     KV collection [llm-<kv>]\n"
      "  --seq ID              sequence id [0]\n"
      "  --sync P              none | periodic | every [none]\n"
      "  --threads N           store query threads (0: one per core) [1]\n"
      " ppl:\n"
      "  --text PATH           (../shared/data/llm/tinystories-valid-excerpt.txt)\n"
      "  --context N           tokens per window [the model's seq_len]\n"
      " generate:\n"
      "  --prompt TEXT         [Once upon a time]\n"
      "  --steps N             [256]\n"
      " agreement, needle (exact fp32 run over --text, --context as for ppl):\n"
      "  --windows N           context windows captured (0: all) [0]\n"
      "  --formats LIST        agreement: KV specs (K4V4, tq4p/tq4, fp32);\n"
      "                        needle: key formats (tq4, tq4p, fp32)\n"
      "  --seed S              sampling seed [1]\n"
      " agreement:\n"
      "  --window W            tokens before the current one attended exactly [0]\n"
      "  --positions N         query positions sampled per window [32]\n"
      "  --min-position P      [16]\n"
      " needle:\n"
      "  --sizes LIST          haystack sizes [4096,32768,262144]\n"
      "  --trials N            per size [100]\n"
      "  --noise X             noise on sampled keys, in RMS coordinates [0.01]\n"
      "  --margin X            needle lead, in std of the haystack logits [0.5]\n");
}

using Flags = std::map<std::string, std::string>;

absl::StatusOr<Flags> ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'"));
    }
    arg = arg.substr(2);
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      flags[arg.substr(0, eq)] = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      flags[arg] = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag --", arg, " needs a value"));
    }
  }
  return flags;
}

class FlagReader {
 public:
  explicit FlagReader(Flags flags) : flags_(std::move(flags)) {}
  std::string Str(const std::string& name, const std::string& def) {
    auto it = flags_.find(name);
    if (it == flags_.end()) return def;
    used_.insert(name);
    return it->second;
  }
  absl::StatusOr<double> Double(const std::string& name, double def) {
    auto it = flags_.find(name);
    if (it == flags_.end()) return def;
    used_.insert(name);
    double v;
    if (!absl::SimpleAtod(it->second, &v)) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " wants a number"));
    }
    return v;
  }
  absl::StatusOr<int64_t> Int(const std::string& name, int64_t def) {
    auto it = flags_.find(name);
    if (it == flags_.end()) return def;
    used_.insert(name);
    int64_t v;
    if (!absl::SimpleAtoi(it->second, &v)) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " wants an integer"));
    }
    return v;
  }
  bool Has(const std::string& name) const { return flags_.count(name) > 0; }
  absl::Status CheckAllUsed() const {
    for (const auto& [name, value] : flags_) {
      if (!used_.count(name))
        return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    return absl::OkStatus();
  }

 private:
  Flags flags_;
  std::set<std::string> used_;
};

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// The model, its tokenizer and a KV cache, as the flags say.
struct Session {
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Transformer> model;
  KvSpec spec;
  std::string cache_kind, attend_kind, model_name;
  std::string temp_dir;  // removed at exit when set
  std::unique_ptr<storage::Store> store;
  std::shared_ptr<storage::KvCollection> collection;
  std::unique_ptr<KvCache> cache;

  ~Session() {
    cache.reset();
    collection.reset();
    store.reset();
    if (!temp_dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(temp_dir, ec);
    }
  }
};

absl::Status OpenModel(FlagReader& f, Session* s) {
  const std::string model_path = f.Str("model", "../shared/data/llm/stories260K.bin");
  const std::string tok_path = f.Str("tokenizer", "../shared/data/llm/tok512.bin");
  TQDB_ASSIGN_OR_RETURN(s->checkpoint, Checkpoint::Open(model_path));
  TQDB_ASSIGN_OR_RETURN(s->tokenizer,
                        Tokenizer::Load(tok_path, s->checkpoint->config().vocab_size));
  s->model = std::make_unique<Transformer>(s->checkpoint.get());
  s->model_name = std::filesystem::path(model_path).filename().string();
  return absl::OkStatus();
}

absl::Status OpenSession(FlagReader& f, Session* s) {
  TQDB_RETURN_IF_ERROR(OpenModel(f, s));
  TQDB_ASSIGN_OR_RETURN(s->spec, ParseKvSpec(f.Str("kv", "K4V4")));
  TQDB_ASSIGN_OR_RETURN(const int64_t boundary, f.Int("boundary", 0));
  s->spec.boundary_layers = static_cast<int>(boundary);
  const std::string boundary_kv = f.Str("boundary-kv", "K4V4");
  if (boundary_kv == "fp32" || boundary_kv == "FP32") {
    s->spec.exact_boundary = true;
  } else {
    TQDB_RETURN_IF_ERROR(ParseFormatPair(boundary_kv, &s->spec.boundary_key_format,
                                         &s->spec.boundary_value_format));
  }
  TQDB_ASSIGN_OR_RETURN(const int64_t window, f.Int("window", 0));
  if (window < 0) return absl::InvalidArgumentError("--window must be ≥ 0");
  s->spec.window = static_cast<uint64_t>(window);
  const std::string wd = f.Str("window-dtype", "f16");
  if (wd == "f16") {
    s->spec.window_dtype = storage::DType::kF16;
  } else if (wd == "bf16") {
    s->spec.window_dtype = storage::DType::kBF16;
  } else if (wd == "f32") {
    s->spec.window_dtype = storage::DType::kF32;
  } else {
    return absl::InvalidArgumentError("--window-dtype is f16, bf16 or f32");
  }

  const KvShape shape = s->model->kv_shape();
  s->cache_kind = f.Str("cache", "store");
  s->attend_kind = f.Str("attend", "store");
  TQDB_ASSIGN_OR_RETURN(const int64_t seq, f.Int("seq", 0));
  TQDB_ASSIGN_OR_RETURN(const int64_t threads, f.Int("threads", 1));
  const std::string sync = f.Str("sync", "none");
  std::string dir = f.Str("data-dir", "");
  std::string collection = f.Str("collection", "");
  const bool split = s->spec.exact_boundary && s->spec.boundary_layers > 0 && !s->spec.exact;
  if (split && (s->spec.boundary_layers < 1 || 2 * s->spec.boundary_layers >= shape.num_layers)) {
    return absl::InvalidArgumentError(absl::StrCat("--boundary with fp32 must be 1 … ",
                                                   (shape.num_layers - 1) / 2));
  }
  if (s->cache_kind == "memory") {
    if (!s->spec.exact) {
      return absl::InvalidArgumentError("--cache memory holds fp32 only (use --kv fp32)");
    }
    s->attend_kind = "exact";
    s->cache = std::make_unique<ExactKvCache>(shape);
    return absl::OkStatus();
  }
  if (s->cache_kind != "store") return absl::InvalidArgumentError("--cache is store or memory");
  StoreAttention attention;
  if (s->attend_kind == "store") {
    attention = StoreAttention::kStore;
  } else if (s->attend_kind == "decoded") {
    attention = StoreAttention::kDecoded;
  } else {
    return absl::InvalidArgumentError("--attend is store or decoded");
  }
  storage::StoreOptions options;
  options.query_threads = static_cast<int>(threads);
  if (sync == "none") {
    options.sync = storage::SyncPolicy::kNone;
  } else if (sync == "periodic") {
    options.sync = storage::SyncPolicy::kPeriodic;
  } else if (sync == "every") {
    options.sync = storage::SyncPolicy::kEveryWrite;
  } else {
    return absl::InvalidArgumentError("--sync is none, periodic or every");
  }
  if (dir.empty()) {
    char tmpl[] = "/tmp/tqdb-llm-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
    dir = s->temp_dir = tmpl;
  }
  if (collection.empty()) {
    collection = "llm-" + s->spec.Name();
    for (char& c : collection) {
      if (c == '/' || c == '+' || c == ':') c = '_';
    }
  }
  TQDB_ASSIGN_OR_RETURN(s->store, storage::Store::Open(options, dir));
  TQDB_ASSIGN_OR_RETURN(s->collection, OpenKvCollection(s->store.get(), collection,
                                                        CollectionConfig(s->spec, shape)));
  if (!split) {
    TQDB_ASSIGN_OR_RETURN(s->cache, StoreKvCache::Open(s->collection, static_cast<uint64_t>(seq),
                                                       shape, attention));
    return absl::OkStatus();
  }
  // Exact boundary layers: the store holds the middle ones.
  TQDB_ASSIGN_OR_RETURN(std::unique_ptr<KvCache> middle,
                        StoreKvCache::Open(s->collection, static_cast<uint64_t>(seq),
                                           MiddleShape(shape, s->spec.boundary_layers), attention));
  TQDB_ASSIGN_OR_RETURN(s->cache,
                        SplitKvCache::Create(shape, s->spec.boundary_layers, std::move(middle)));
  return absl::OkStatus();
}

std::string CommonJson(const Session& s) {
  std::string json = absl::StrCat(
      "\"model\":", JsonString(s.model_name), ",\"kv\":", JsonString(s.spec.Name()),
      ",\"cache\":", JsonString(s.cache_kind), ",\"attend\":", JsonString(s.attend_kind));
  if (s.collection != nullptr) {
    const KvShape shape = s.model->kv_shape();
    const double values = 2.0 * shape.num_layers * shape.num_kv_heads * shape.head_dim;
    size_t bytes = s.collection->token_code_bytes();
    const bool split = s.spec.exact_boundary && s.spec.boundary_layers > 0 && !s.spec.exact;
    if (s.spec.exact) bytes = static_cast<size_t>(values) * sizeof(float);  // all in the window
    if (split) {  // the exact boundary layers: float32 keys and values
      bytes += 2 * 2 * s.spec.boundary_layers * shape.num_kv_heads * shape.head_dim * sizeof(float);
    }
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.3f", 8.0 * bytes / values);
    absl::StrAppend(&json, ",\"code_bytes_per_token\":", bytes, ",\"code_bits_per_value\":", buf);
  }
  return json;
}

absl::Status RunPpl(FlagReader& f) {
  Session s;
  TQDB_RETURN_IF_ERROR(OpenSession(f, &s));
  const std::string text_path = f.Str("text", "../shared/data/llm/tinystories-valid-excerpt.txt");
  TQDB_ASSIGN_OR_RETURN(const int64_t context, f.Int("context", s.model->config().seq_len));
  TQDB_RETURN_IF_ERROR(f.CheckAllUsed());
  TQDB_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(text_path));
  const std::vector<int> tokens = s.tokenizer->Encode(text, /*bos=*/true, /*eos=*/false);
  TQDB_ASSIGN_OR_RETURN(const NllResult r, TeacherForcedNll(s.model.get(), s.cache.get(), tokens,
                                                            static_cast<int>(context)));
  std::printf(
      "{\"suite\":\"llm\",\"metric\":\"ppl\",%s,\"text\":%s,\"context\":%lld,\"windows\":%d,"
      "\"tokens\":%llu,\"mean_nll\":%.6f,\"ppl\":%.4f,\"seconds\":%.3f,\"tokens_per_s\":%.1f}\n",
      CommonJson(s).c_str(),
      JsonString(std::filesystem::path(text_path).filename().string()).c_str(),
      static_cast<long long>(context), r.windows, static_cast<unsigned long long>(r.tokens),
      r.mean_nll(), r.ppl(), r.seconds, r.seconds > 0 ? r.tokens / r.seconds : 0.0);
  return absl::OkStatus();
}

absl::Status RunGenerate(FlagReader& f) {
  Session s;
  TQDB_RETURN_IF_ERROR(OpenSession(f, &s));
  const std::string prompt = f.Str("prompt", "Once upon a time");
  TQDB_ASSIGN_OR_RETURN(const int64_t steps, f.Int("steps", 256));
  TQDB_RETURN_IF_ERROR(f.CheckAllUsed());
  TQDB_RETURN_IF_ERROR(s.cache->Truncate(0));  // a fresh text in a reused sequence
  const std::vector<int> feed = s.tokenizer->Encode(prompt, /*bos=*/true, /*eos=*/false);
  std::fputs(s.tokenizer->DecodeAll(std::vector<int>(feed.begin() + 1, feed.end())).c_str(),
             stdout);
  std::fflush(stdout);
  int prev = feed.back();
  GenerateOptions options;
  options.steps = static_cast<int>(steps);
  options.on_token = [&](int token) {
    const std::string piece = s.tokenizer->Decode(prev, token);
    prev = token;
    // Like llama2.c's safe_printf: lone unprintable bytes are dropped.
    if (piece.size() == 1 && static_cast<unsigned char>(piece[0]) < 0x20 && piece[0] != '\n' &&
        piece[0] != '\t') {
      return;
    }
    std::fputs(piece.c_str(), stdout);
    std::fflush(stdout);
  };
  const auto start = std::chrono::steady_clock::now();
  TQDB_ASSIGN_OR_RETURN(const std::vector<int> out,
                        GenerateGreedy(s.model.get(), s.cache.get(), feed, options));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("\n");
  // Forward passes: the prompt, then every new token but the last.
  const size_t forwards = feed.size() + (out.empty() ? 0 : out.size() - 1);
  std::fprintf(stderr,
               "{\"suite\":\"llm\",\"metric\":\"generate\",%s,\"prompt_tokens\":%zu,"
               "\"new_tokens\":%zu,\"seconds\":%.3f,\"tokens_per_s\":%.1f}\n",
               CommonJson(s).c_str(), feed.size(), out.size(), seconds,
               seconds > 0 ? forwards / seconds : 0.0);
  return absl::OkStatus();
}

// The trace of an exact run over --text, as agreement and needle take it.
absl::StatusOr<KvTrace> CaptureFromFlags(FlagReader& f, Session* s) {
  TQDB_RETURN_IF_ERROR(OpenModel(f, s));
  const std::string text_path = f.Str("text", "../shared/data/llm/tinystories-valid-excerpt.txt");
  TQDB_ASSIGN_OR_RETURN(const int64_t context, f.Int("context", s->model->config().seq_len));
  TQDB_ASSIGN_OR_RETURN(const int64_t windows, f.Int("windows", 0));
  TQDB_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(text_path));
  const std::vector<int> tokens = s->tokenizer->Encode(text, /*bos=*/true, /*eos=*/false);
  return CaptureKvTrace(s->model.get(), tokens, static_cast<int>(context),
                        static_cast<int>(windows));
}

std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    out.emplace_back(part);
  }
  return out;
}

std::string StatsJson(const AgreementStats& a) {
  char buf[160];
  std::snprintf(buf, sizeof(buf),
                "\"samples\":%lld,\"pearson\":%.6f,\"top1\":%.6f,\"top5\":%.6f,\"cosine\":%.6f",
                static_cast<long long>(a.samples), a.pearson, a.top1, a.top5, a.cosine);
  return buf;
}

absl::Status RunAgreement(FlagReader& f) {
  Session s;
  AgreementOptions options;
  TQDB_ASSIGN_OR_RETURN(const int64_t window, f.Int("window", 0));
  TQDB_ASSIGN_OR_RETURN(const int64_t positions, f.Int("positions", 32));
  TQDB_ASSIGN_OR_RETURN(const int64_t min_position, f.Int("min-position", 16));
  TQDB_ASSIGN_OR_RETURN(const int64_t seed, f.Int("seed", 1));
  if (window < 0 || positions < 1 || min_position < 0) {
    return absl::InvalidArgumentError("--window, --min-position ≥ 0 and --positions ≥ 1");
  }
  options.exact_window = static_cast<int>(window);
  options.positions_per_window = static_cast<int>(positions);
  options.min_position = static_cast<int>(min_position);
  options.seed = static_cast<uint64_t>(seed);
  const std::vector<std::string> specs =
      SplitList(f.Str("formats", "fp32,K4V4,K4V2,K3V3,K3V2,K2V2,tq4p/tq4,tq3p/tq3"));
  TQDB_ASSIGN_OR_RETURN(const KvTrace trace, CaptureFromFlags(f, &s));
  TQDB_RETURN_IF_ERROR(f.CheckAllUsed());
  const int d = trace.shape.head_dim;
  for (const std::string& text : specs) {
    std::string key_format = "fp32", value_format = "fp32";
    absl::Status st;
    if (text != "fp32") st = ParseFormatPair(text, &key_format, &value_format);
    absl::StatusOr<AgreementResult> r =
        st.ok() ? MeasureAgreement(trace, key_format, value_format, options)
                : absl::StatusOr<AgreementResult>(st);
    std::string line = absl::StrCat(
        "{\"suite\":\"llm\",\"metric\":\"agreement\",\"model\":", JsonString(s.model_name),
        ",\"kv\":", JsonString(text), ",\"key_format\":", JsonString(key_format),
        ",\"value_format\":", JsonString(value_format), ",\"window\":", window,
        ",\"head_dim\":", d, ",\"tokens\":", trace.TotalTokens());
    if (!r.ok()) {
      // One format the store rejects (QJL values) does not stop the others.
      absl::StrAppend(&line, ",\"error\":", JsonString(r.status().ToString()), "}");
      std::printf("%s\n", line.c_str());
      continue;
    }
    char bits[96];
    std::snprintf(bits, sizeof(bits), ",\"key_bits_per_value\":%.3f,\"value_bits_per_value\":%.3f",
                  8.0 * r->key_bytes / d, 8.0 * r->value_bytes / d);
    absl::StrAppend(&line, ",\"key_bytes\":", r->key_bytes, ",\"value_bytes\":", r->value_bytes,
                    bits, ",", StatsJson(r->all), ",\"per_layer\":[");
    for (size_t l = 0; l < r->per_layer.size(); ++l) {
      absl::StrAppend(&line, l ? "," : "", "{", StatsJson(r->per_layer[l]), "}");
    }
    std::printf("%s]}\n", line.c_str());
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

absl::Status RunNeedle(FlagReader& f) {
  Session s;
  NeedleOptions options;
  TQDB_ASSIGN_OR_RETURN(const int64_t trials, f.Int("trials", 100));
  TQDB_ASSIGN_OR_RETURN(const double noise, f.Double("noise", 0.01));
  TQDB_ASSIGN_OR_RETURN(const double margin, f.Double("margin", 0.5));
  TQDB_ASSIGN_OR_RETURN(const int64_t seed, f.Int("seed", 1));
  options.trials = static_cast<int>(trials);
  options.noise = static_cast<float>(noise);
  options.margin = static_cast<float>(margin);
  options.seed = static_cast<uint64_t>(seed);
  options.haystack_sizes.clear();
  for (const std::string& n : SplitList(f.Str("sizes", "4096,32768,262144"))) {
    uint64_t v;
    if (!absl::SimpleAtoi(n, &v)) return absl::InvalidArgumentError("--sizes wants integers");
    options.haystack_sizes.push_back(v);
  }
  const std::vector<std::string> formats =
      SplitList(f.Str("formats", "fp32,tq4,tq3,tq2,tq4p,tq3p,turbo4,turbo3,turbo2"));
  TQDB_ASSIGN_OR_RETURN(const KvTrace trace, CaptureFromFlags(f, &s));
  TQDB_RETURN_IF_ERROR(f.CheckAllUsed());
  const auto start = std::chrono::steady_clock::now();
  TQDB_ASSIGN_OR_RETURN(const std::vector<NeedleResult> results,
                        MeasureNeedle(trace, formats, options));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int d = trace.shape.head_dim;
  for (const NeedleResult& r : results) {
    std::printf(
        "{\"suite\":\"llm\",\"metric\":\"needle\",\"model\":%s,\"format\":%s,\"head_dim\":%d,"
        "\"code_bytes\":%zu,\"bits_per_value\":%.3f,\"haystack\":%zu,\"trials\":%d,"
        "\"first\":%d,\"top10\":%d,\"p_first\":%.4f,\"p_top10\":%.4f,\"mean_rank\":%.2f,"
        "\"noise\":%g,\"margin\":%g,\"keys_captured\":%zu,\"seconds\":%.1f}\n",
        JsonString(s.model_name).c_str(), JsonString(r.format).c_str(), d, r.code_bytes,
        8.0 * r.code_bytes / d, r.haystack, r.trials, r.first, r.top10,
        r.trials ? static_cast<double>(r.first) / r.trials : 0.0,
        r.trials ? static_cast<double>(r.top10) / r.trials : 0.0, r.mean_rank, noise, margin,
        trace.TotalTokens(), seconds);
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace tqdb::llm

int main(int argc, char** argv) {
  using namespace tqdb::llm;
  const std::string command = argc > 1 ? argv[1] : "";
  if (command != "ppl" && command != "generate" && command != "agreement" &&
      command != "needle") {
    Usage();
    return command.empty() || command == "--help" ? 0 : 2;
  }
  auto flags = ParseFlags(argc - 2, argv + 2);
  absl::Status status = flags.status();
  if (status.ok()) {
    FlagReader reader(*std::move(flags));
    if (command == "ppl") {
      status = RunPpl(reader);
    } else if (command == "generate") {
      status = RunGenerate(reader);
    } else if (command == "agreement") {
      status = RunAgreement(reader);
    } else {
      status = RunNeedle(reader);
    }
  }
  if (!status.ok()) {
    std::fprintf(stderr, "tqdb-llm %s: %s\n", command.c_str(), status.ToString().c_str());
    return 1;
  }
  return 0;
}
