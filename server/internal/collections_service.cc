#include "server/internal/collections_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "server/internal/call.h"

namespace tqdb::server::internal {
namespace {

namespace pb = ::tqdb::v1;

absl::StatusOr<storage::KvCollectionConfig> FromProto(const pb::KvConfig& in) {
  storage::KvCollectionConfig c;
  c.num_layers = in.num_layers();
  c.num_kv_heads = in.num_kv_heads();
  c.head_dim = in.head_dim();
  if (!in.key_format().empty()) c.key_format = in.key_format();
  if (!in.value_format().empty()) c.value_format = in.value_format();
  c.boundary_layers = in.boundary_layers();
  if (!in.boundary_key_format().empty()) c.boundary_key_format = in.boundary_key_format();
  if (!in.boundary_value_format().empty()) c.boundary_value_format = in.boundary_value_format();
  if (in.page_tokens() != 0) c.page_tokens = in.page_tokens();
  c.seed = in.seed();
  return c;
}

absl::StatusOr<storage::EmbeddingCollectionConfig> FromProto(const pb::EmbeddingConfig& in) {
  storage::EmbeddingCollectionConfig c;
  c.dim = in.dim();
  switch (in.metric()) {
    case pb::METRIC_UNSPECIFIED:
    case pb::METRIC_INNER_PRODUCT:
      c.metric = index::Metric::kInnerProduct;
      break;
    case pb::METRIC_COSINE:
      c.metric = index::Metric::kCosine;
      break;
    case pb::METRIC_L2:
      c.metric = index::Metric::kL2;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown metric ", in.metric()));
  }
  if (!in.format().empty()) c.format = in.format();
  switch (in.keep_raw()) {
    case pb::RAW_TYPE_NONE:
      c.keep_raw = storage::RawType::kNone;
      break;
    case pb::RAW_TYPE_F16:
      c.keep_raw = storage::RawType::kF16;
      break;
    case pb::RAW_TYPE_F32:
      c.keep_raw = storage::RawType::kF32;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown keep_raw ", in.keep_raw()));
  }
  c.center.assign(in.center().begin(), in.center().end());
  c.seed = in.seed();
  return c;
}

void ToProto(const storage::KvCollectionConfig& c, pb::KvConfig* out) {
  out->set_num_layers(c.num_layers);
  out->set_num_kv_heads(c.num_kv_heads);
  out->set_head_dim(c.head_dim);
  out->set_key_format(c.key_format);
  out->set_value_format(c.value_format);
  out->set_boundary_layers(c.boundary_layers);
  out->set_boundary_key_format(c.boundary_key_format);
  out->set_boundary_value_format(c.boundary_value_format);
  out->set_page_tokens(c.page_tokens);
  out->set_seed(c.seed);
}

void ToProto(const storage::EmbeddingCollectionConfig& c, pb::EmbeddingConfig* out) {
  out->set_dim(c.dim);
  switch (c.metric) {
    case index::Metric::kInnerProduct:
      out->set_metric(pb::METRIC_INNER_PRODUCT);
      break;
    case index::Metric::kCosine:
      out->set_metric(pb::METRIC_COSINE);
      break;
    case index::Metric::kL2:
      out->set_metric(pb::METRIC_L2);
      break;
  }
  out->set_format(c.format);
  switch (c.keep_raw) {
    case storage::RawType::kNone:
      out->set_keep_raw(pb::RAW_TYPE_NONE);
      break;
    case storage::RawType::kF16:
      out->set_keep_raw(pb::RAW_TYPE_F16);
      break;
    case storage::RawType::kF32:
      out->set_keep_raw(pb::RAW_TYPE_F32);
      break;
  }
  out->mutable_center()->Assign(c.center.begin(), c.center.end());
  out->set_seed(c.seed);
}

void ToProto(const storage::KvStats& s, pb::KvStats* out) {
  out->set_sequences(s.sequences);
  out->set_tokens(s.tokens);
  out->set_stored_tokens(s.stored_tokens);
  out->set_code_bytes(s.code_bytes);
  out->set_disk_bytes(s.disk_bytes);
  out->set_memory_bytes(s.memory_bytes);
  out->set_compression_vs_fp16(s.compression_vs_fp16);
}

void ToProto(const storage::EmbeddingStats& s, pb::EmbeddingStats* out) {
  out->set_count(s.count);
  out->set_code_bytes(s.code_bytes);
  out->set_disk_bytes(s.disk_bytes);
  out->set_memory_bytes(s.memory_bytes);
}

pb::CollectionKind KindToProto(storage::CollectionKind kind) {
  return kind == storage::CollectionKind::kKv ? pb::COLLECTION_KIND_KV
                                              : pb::COLLECTION_KIND_EMBEDDING;
}

}  // namespace

absl::Status CollectionsService::Describe(const std::string& name,
                                          pb::CollectionDescription* out) {
  {
    TQDB_ASSIGN_OR_RETURN(const storage::CollectionInfo info, store_->GetCollectionInfo(name));
    out->set_name(name);
    out->set_kind(KindToProto(info.kind));
    if (info.kind == storage::CollectionKind::kKv) {
      TQDB_ASSIGN_OR_RETURN(auto kv, store_->GetKvCollection(name));
      TQDB_ASSIGN_OR_RETURN(storage::KvStats stats, kv->Stats());
      ToProto(kv->config(), out->mutable_kv());
      ToProto(stats, out->mutable_kv_stats());
    } else {
      TQDB_ASSIGN_OR_RETURN(auto emb, store_->GetEmbeddingCollection(name));
      TQDB_ASSIGN_OR_RETURN(storage::EmbeddingStats stats, emb->Stats());
      ToProto(emb->config(), out->mutable_embedding());
      ToProto(stats, out->mutable_embedding_stats());
    }
    return absl::OkStatus();
  }
}

grpc::Status CollectionsService::CreateCollection(grpc::ServerContext* ctx,
                                                  const pb::CreateCollectionRequest* req,
                                                  pb::CreateCollectionResponse* resp) {
  Call call(ctx, *auth_, "Collections/CreateCollection", req->name());
  return call.Run([&]() -> absl::Status {
    switch (req->config_case()) {
      case pb::CreateCollectionRequest::kKv: {
        TQDB_ASSIGN_OR_RETURN(storage::KvCollectionConfig config, FromProto(req->kv()));
        TQDB_RETURN_IF_ERROR(store_->CreateKvCollection(req->name(), config).status());
        break;
      }
      case pb::CreateCollectionRequest::kEmbedding: {
        TQDB_ASSIGN_OR_RETURN(storage::EmbeddingCollectionConfig config,
                              FromProto(req->embedding()));
        TQDB_RETURN_IF_ERROR(store_->CreateEmbeddingCollection(req->name(), config).status());
        break;
      }
      default:
        return absl::InvalidArgumentError("set config: kv or embedding");
    }
    return Describe(req->name(), resp->mutable_collection());
  });
}

grpc::Status CollectionsService::DropCollection(grpc::ServerContext* ctx,
                                                const pb::DropCollectionRequest* req,
                                                pb::DropCollectionResponse* /*resp*/) {
  Call call(ctx, *auth_, "Collections/DropCollection", req->name());
  return call.Run([&]() -> absl::Status { return store_->DropCollection(req->name()); });
}

grpc::Status CollectionsService::ListCollections(grpc::ServerContext* ctx,
                                                 const pb::ListCollectionsRequest* /*req*/,
                                                 pb::ListCollectionsResponse* resp) {
  Call call(ctx, *auth_, "Collections/ListCollections", "");
  return call.Run([&]() -> absl::Status {
    std::vector<storage::CollectionInfo> infos = store_->ListCollections();
    for (const storage::CollectionInfo& info : infos) {
      auto* entry = resp->add_collections();
      entry->set_name(info.name);
      entry->set_kind(KindToProto(info.kind));
    }
    call.set_items(infos.size());
    return absl::OkStatus();
  });
}

grpc::Status CollectionsService::DescribeCollection(grpc::ServerContext* ctx,
                                                    const pb::DescribeCollectionRequest* req,
                                                    pb::DescribeCollectionResponse* resp) {
  Call call(ctx, *auth_, "Collections/DescribeCollection", req->name());
  return call.Run(
      [&]() -> absl::Status { return Describe(req->name(), resp->mutable_collection()); });
}

}  // namespace tqdb::server::internal
