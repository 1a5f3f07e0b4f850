"""Python client of tqdb-server, over the generated tqdb.v1 stubs.

    from tqdb_client import Client
    db = Client("127.0.0.1:50051")
    db.create_embedding_collection("docs", dim=128, metric="cosine")
    db.upsert("docs", ids, vectors)            # vectors: numpy [n, dim]
    ids, distances = db.search("docs", query, k=10)

Vectors are numpy arrays in the layouts of proto/tqdb/v1/tqdb.proto (token
tensors [num_layers, num_kv_heads, n_tokens, head_dim]). float16 arrays travel
as f16 bytes, everything else as packed little-endian f32 bytes (or as
repeated floats with packed=False). A failed call raises TqdbError with the
server's status code (grpc.StatusCode) and message.

The stubs (tqdb/v1/tqdb_pb2*.py) are generated into the build tree
(build/generated/proto/python): put that directory on PYTHONPATH.
"""

import numpy as np
import grpc

from tqdb.v1 import tqdb_pb2 as pb
from tqdb.v1 import tqdb_pb2_grpc as pb_grpc

__all__ = ["Client", "TqdbError"]

_METRICS = {
    "ip": pb.METRIC_INNER_PRODUCT,
    "inner_product": pb.METRIC_INNER_PRODUCT,
    "cosine": pb.METRIC_COSINE,
    "l2": pb.METRIC_L2,
}
_RAW = {None: pb.RAW_TYPE_NONE, "f16": pb.RAW_TYPE_F16, "f32": pb.RAW_TYPE_F32}
_KINDS = {pb.COLLECTION_KIND_KV: "kv", pb.COLLECTION_KIND_EMBEDDING: "embedding"}


class TqdbError(Exception):
    """A failed call: `code` is the grpc.StatusCode, `message` the server's."""

    def __init__(self, code, message):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except grpc.RpcError as e:
        raise TqdbError(e.code(), e.details()) from None


class Client:
    """A connection to one tqdb-server. Thread-safe (one gRPC channel)."""

    def __init__(self, target, token=None, timeout=60.0, packed=True,
                 max_message_bytes=256 << 20, root_certificates=None, tls=False):
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        if tls or root_certificates is not None:
            creds = grpc.ssl_channel_credentials(root_certificates)
            self._channel = grpc.secure_channel(target, creds, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._timeout = timeout
        self._packed = packed
        self._collections = pb_grpc.CollectionsStub(self._channel)
        self._kv = pb_grpc.KvStub(self._channel)
        self._vectors = pb_grpc.VectorsStub(self._channel)
        # grpc.health.v1.Health/Check, called by path: HealthCheckRequest{}
        # is empty bytes, and the response's field 1 is the status.
        self._health_check = self._channel.unary_unary(
            "/grpc.health.v1.Health/Check")

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _unary(self, method, request):
        return _call(method, request, timeout=self._timeout, metadata=self._metadata)

    # --- tensors

    def _tensor(self, array, shape=None):
        a = np.asarray(array)
        t = pb.Tensor()
        if a.dtype == np.float16:
            t.data = np.ascontiguousarray(a, dtype="<f2").tobytes()
            t.dtype = pb.DTYPE_F16
        elif self._packed:
            t.data = np.ascontiguousarray(a, dtype="<f4").tobytes()
            t.dtype = pb.DTYPE_F32
        else:
            t.values.extend(a.astype(np.float32).ravel().tolist())
        t.shape.extend(list(a.shape) if shape is None else shape)
        return t

    @staticmethod
    def _array(t):
        if t.data and t.dtype == pb.DTYPE_F16:
            a = np.frombuffer(t.data, dtype="<f2").astype(np.float16)
        elif t.data and t.dtype == pb.DTYPE_BF16:  # numpy has no bfloat16: widened
            a = (np.frombuffer(t.data, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif t.data:
            a = np.frombuffer(t.data, dtype="<f4").astype(np.float32)
        else:
            a = np.asarray(t.values, dtype=np.float32)
        return a.reshape(tuple(t.shape)) if len(t.shape) else a

    # --- health and collections

    def healthy(self):
        """True when the server reports SERVING (no token needed)."""
        resp = _call(self._health_check, b"", timeout=self._timeout)
        return resp == b"\x08\x01"

    def create_kv_collection(self, name, num_layers, num_kv_heads, head_dim, **config):
        """Creates a KV collection; `config` takes the other KvConfig fields.
        Returns describe_collection's dict."""
        req = pb.CreateCollectionRequest(name=name, kv=pb.KvConfig(
            num_layers=num_layers, num_kv_heads=num_kv_heads, head_dim=head_dim, **config))
        return _describe(self._unary(self._collections.CreateCollection, req).collection)

    def create_embedding_collection(self, name, dim, metric="ip", keep_raw=None,
                                    format="", center=None, seed=0):
        """metric: "ip", "cosine" or "l2"; keep_raw: None, "f16" or "f32"."""
        cfg = pb.EmbeddingConfig(dim=dim, metric=_METRICS[metric], keep_raw=_RAW[keep_raw],
                                 format=format, seed=seed)
        if center is not None:
            cfg.center.extend(np.asarray(center, dtype=np.float32).tolist())
        req = pb.CreateCollectionRequest(name=name, embedding=cfg)
        return _describe(self._unary(self._collections.CreateCollection, req).collection)

    def drop_collection(self, name):
        self._unary(self._collections.DropCollection, pb.DropCollectionRequest(name=name))

    def list_collections(self):
        """[(name, "kv" | "embedding")], by name."""
        resp = self._unary(self._collections.ListCollections, pb.ListCollectionsRequest())
        return [(c.name, _KINDS.get(c.kind, "unknown")) for c in resp.collections]

    def describe_collection(self, name):
        """{"name", "kind", "config": {...}, "stats": {...}}."""
        req = pb.DescribeCollectionRequest(name=name)
        return _describe(self._unary(self._collections.DescribeCollection, req).collection)

    # --- KV

    def create_sequence(self, collection, seq):
        self._unary(self._kv.CreateSequence,
                    pb.CreateSequenceRequest(collection=collection, sequence_id=seq))

    def _append_request(self, collection, seq, keys, values):
        keys, values = np.asarray(keys), np.asarray(values)
        if keys.ndim != 4:
            raise ValueError("keys must be [num_layers, num_kv_heads, n_tokens, head_dim]")
        return pb.AppendRequest(collection=collection, sequence_id=seq, n_tokens=keys.shape[2],
                                keys=self._tensor(keys), values=self._tensor(values))

    def append(self, collection, seq, keys, values):
        """Appends tokens ([L, H, n, D] arrays); returns the new length."""
        resp = self._unary(self._kv.Append, self._append_request(collection, seq, keys, values))
        return resp.length

    def append_stream(self, items):
        """One client-streaming call over (collection, seq, keys, values)
        tuples; returns (tokens appended, last length)."""
        requests = (self._append_request(*item) for item in items)
        resp = _call(self._kv.AppendStream, requests, timeout=self._timeout,
                     metadata=self._metadata)
        return resp.appended, resp.length

    def score(self, collection, seq, layer, queries, begin=0, end=None, scale=0.0,
              result_dtype=None):
        """Logits [H, n] of queries [H, head_dim] against one layer's keys.

        result_dtype: None (float32), "float16" (a float16 array, half the bytes
        on the wire) or "bfloat16" (sent as bfloat16, returned as float32).
        """
        req = pb.ScoreRequest(collection=collection, sequence_id=seq, layer=layer,
                              queries=self._tensor(queries), scale=scale, begin=begin,
                              result_dtype=_result_dtype(result_dtype))
        if end is not None:
            req.end = end
        return self._array(self._unary(self._kv.Score, req).logits)

    def attend(self, collection, seq, layer, queries, begin=0, end=None, scale=0.0,
               result_dtype=None):
        """Attention output [H, head_dim]; result_dtype as in score()."""
        req = pb.AttendRequest(collection=collection, sequence_id=seq, layer=layer,
                               queries=self._tensor(queries), scale=scale, begin=begin,
                               result_dtype=_result_dtype(result_dtype))
        if end is not None:
            req.end = end
        return self._array(self._unary(self._kv.Attend, req).output)

    def read(self, collection, seq, begin=0, end=None, chunk_tokens=0):
        """Decoded (keys, values), each [L, H, end - begin, D] float32."""
        req = pb.ReadRequest(collection=collection, sequence_id=seq, begin=begin,
                             packed=self._packed, chunk_tokens=chunk_tokens)
        if end is not None:
            req.end = end

        def collect():
            stream = self._kv.Read(req, timeout=self._timeout, metadata=self._metadata)
            return [(self._array(c.keys), self._array(c.values)) for c in stream]

        chunks = _call(collect)
        if not chunks:
            return np.zeros((0,), np.float32), np.zeros((0,), np.float32)
        return (np.concatenate([k for k, _ in chunks], axis=2),
                np.concatenate([v for _, v in chunks], axis=2))

    def truncate(self, collection, seq, length):
        self._unary(self._kv.Truncate,
                    pb.TruncateRequest(collection=collection, sequence_id=seq, length=length))

    def drop_sequence(self, collection, seq):
        self._unary(self._kv.DropSequence,
                    pb.DropSequenceRequest(collection=collection, sequence_id=seq))

    def fork(self, collection, source, target, length=None):
        """Returns the new sequence's length."""
        req = pb.ForkRequest(collection=collection, source_id=source, target_id=target)
        if length is not None:
            req.length = length
        return self._unary(self._kv.Fork, req).length

    def sequence_length(self, collection, seq):
        req = pb.GetSequenceRequest(collection=collection, sequence_id=seq)
        return self._unary(self._kv.GetSequence, req).length

    def list_sequences(self, collection):
        req = pb.ListSequencesRequest(collection=collection)
        return list(self._unary(self._kv.ListSequences, req).sequence_ids)

    # --- vectors

    def upsert(self, collection, ids, vectors):
        """ids: n ints; vectors: [n, dim]. Returns n."""
        req = pb.UpsertRequest(collection=collection, ids=[int(i) for i in ids],
                               vectors=self._tensor(vectors))
        return self._unary(self._vectors.Upsert, req).upserted

    def delete(self, collection, ids):
        """Returns how many of the ids existed."""
        req = pb.DeleteRequest(collection=collection, ids=[int(i) for i in ids])
        return self._unary(self._vectors.Delete, req).deleted

    def get(self, collection, ids):
        """(vectors [n, dim] float32, found [n] bool)."""
        req = pb.GetRequest(collection=collection, ids=[int(i) for i in ids],
                            packed=self._packed)
        resp = self._unary(self._vectors.Get, req)
        return self._array(resp.vectors), np.asarray(resp.found, dtype=bool)

    def search(self, collection, query, k, oversample=0):
        """(ids int64 [<= k], distances float32 [<= k]), best first."""
        req = pb.SearchRequest(collection=collection, query=self._tensor(query), k=k,
                               oversample=oversample)
        return _hits(self._unary(self._vectors.Search, req).hits)

    def search_batch(self, collection, queries, k, oversample=0):
        """One (ids, distances) per row of queries [nq, dim]."""
        req = pb.SearchBatchRequest(collection=collection, queries=self._tensor(queries), k=k,
                                    oversample=oversample)
        return [_hits(r.hits) for r in self._unary(self._vectors.SearchBatch, req).results]


def _result_dtype(name):
    """The proto DType of a score/attend result_dtype argument."""
    dtypes = {None: pb.DTYPE_UNSPECIFIED, "float32": pb.DTYPE_F32, "float16": pb.DTYPE_F16,
              "bfloat16": pb.DTYPE_BF16}
    if name not in dtypes:
        raise ValueError(f"result_dtype must be one of {sorted(k for k in dtypes if k)} or None, "
                         f"got {name!r}")
    return dtypes[name]


def _hits(hits):
    return (np.asarray([h.id for h in hits], dtype=np.int64),
            np.asarray([h.distance for h in hits], dtype=np.float32))


def _describe(d):
    from google.protobuf.json_format import MessageToDict
    which = d.WhichOneof("config")
    stats = d.WhichOneof("stats")
    return {
        "name": d.name,
        "kind": _KINDS.get(d.kind, "unknown"),
        "config": MessageToDict(getattr(d, which), preserving_proto_field_name=True,
                                including_default_value_fields=True) if which else {},
        "stats": MessageToDict(getattr(d, stats), preserving_proto_field_name=True,
                               including_default_value_fields=True) if stats else {},
    }
