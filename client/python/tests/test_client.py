"""End-to-end tests of the Python client against a real tqdb-server."""

import grpc
import numpy as np
import pytest

from conftest import start_server, stop_server
from tqdb_client import Client, TqdbError

L, H, D = 2, 2, 16


def expect_code(code, fn, *args, **kwargs):
    with pytest.raises(TqdbError) as e:
        fn(*args, **kwargs)
    assert e.value.code == code, e.value


def test_health_and_collections(db):
    assert db.healthy()
    name = "py_kv" + db.suffix
    created = db.create_kv_collection(name, num_layers=L, num_kv_heads=H, head_dim=D)
    assert created["kind"] == "kv"
    assert created["config"]["key_format"] == "tq4"
    expect_code(grpc.StatusCode.ALREADY_EXISTS, db.create_kv_collection, name, L, H, D)
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, db.create_kv_collection, "py_bad", 0, H, D)
    assert (name, "kv") in db.list_collections()
    assert db.describe_collection(name)["stats"]["sequences"] == "0"
    db.drop_collection(name)
    expect_code(grpc.StatusCode.NOT_FOUND, db.describe_collection, name)


def test_kv(db):
    name = "py_kvdata" + db.suffix
    db.create_kv_collection(name, num_layers=L, num_kv_heads=H, head_dim=D)
    db.create_sequence(name, 7)
    rng = np.random.default_rng(1)
    keys = rng.uniform(-1, 1, (L, H, 20, D)).astype(np.float32)
    values = rng.uniform(-1, 1, (L, H, 20, D)).astype(np.float32)
    assert db.append(name, 7, keys[:, :, :10], values[:, :, :10]) == 10
    assert db.append_stream([(name, 7, keys[:, :, 10:15], values[:, :, 10:15]),
                             (name, 7, keys[:, :, 15:], values[:, :, 15:])]) == (10, 20)

    k, v = db.read(name, 7)
    assert k.shape == (L, H, 20, D)
    assert np.linalg.norm(k - keys) / np.linalg.norm(keys) < 0.2
    k2, _ = db.read(name, 7, chunk_tokens=3)
    np.testing.assert_array_equal(k, k2)

    q = rng.uniform(-1, 1, (4, D)).astype(np.float32)
    logits = db.score(name, 7, 1, q)
    assert logits.shape == (4, 20)
    exact = np.einsum("hd,htd->ht", q, np.repeat(k[1], 2, axis=0))
    assert np.abs(logits - exact).max() < 0.2
    out = db.attend(name, 7, 0, q)
    assert out.shape == (4, D)
    # Half-precision results: the float32 ones rounded to nearest even.
    half = db.score(name, 7, 1, q, result_dtype="float16")
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, logits.astype(np.float16))
    np.testing.assert_array_equal(db.attend(name, 7, 0, q, result_dtype="float16"),
                                  out.astype(np.float16))
    bf = db.score(name, 7, 1, q, result_dtype="bfloat16")
    assert bf.dtype == np.float32
    assert np.abs(bf - logits).max() <= np.abs(logits).max() * 2.0 ** -8
    with pytest.raises(ValueError):
        db.score(name, 7, 1, q, result_dtype="int8")

    # Bad inputs: exact codes, nothing stored.
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, db.append, name, 7, keys[:, :1, :2],
                values[:, :1, :2])
    bad = keys[:, :, :1].copy()
    bad[0, 0, 0, 0] = np.nan
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, db.append, name, 7, bad, values[:, :, :1])
    expect_code(grpc.StatusCode.NOT_FOUND, db.append, name, 8, keys[:, :, :1], values[:, :, :1])
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, db.score, name, 7, 0, q[:, :5])
    expect_code(grpc.StatusCode.ALREADY_EXISTS, db.create_sequence, name, 7)
    assert db.sequence_length(name, 7) == 20

    # float16 arrays travel as f16 bytes.
    db.create_sequence(name, 9)
    assert db.append(name, 9, keys[:, :, :4].astype(np.float16),
                     values[:, :, :4].astype(np.float16)) == 4

    assert db.fork(name, 7, 8, length=5) == 5
    db.truncate(name, 7, 3)
    assert db.sequence_length(name, 7) == 3
    assert db.list_sequences(name) == [7, 8, 9]
    db.drop_sequence(name, 7)
    expect_code(grpc.StatusCode.NOT_FOUND, db.sequence_length, name, 7)


def test_vectors(db):
    name = "py_vec" + db.suffix
    db.create_embedding_collection(name, dim=8, metric="l2", keep_raw="f32")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((100, 8)).astype(np.float32)
    assert db.upsert(name, range(100), x) == 100
    got, found = db.get(name, [0, 5, 500])
    assert found.tolist() == [True, True, False]
    np.testing.assert_array_equal(got[:2], x[[0, 5]])
    ids, dist = db.search(name, x[42], k=3, oversample=4)
    assert ids[0] == 42 and dist[0] == pytest.approx(0.0, abs=1e-5)
    results = db.search_batch(name, x[:5], k=2, oversample=4)
    assert [r[0][0] for r in results] == [0, 1, 2, 3, 4]

    expect_code(grpc.StatusCode.INVALID_ARGUMENT, db.search, name, x[0], k=0)
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, db.search, name, x[0, :7], k=3)
    bad = x[:2].copy()
    bad[1, 3] = np.inf
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, db.upsert, name, [200, 201], bad)
    expect_code(grpc.StatusCode.NOT_FOUND, db.search, "py_none", x[0], k=3)
    assert db.describe_collection(name)["stats"]["count"] == "100"
    assert db.delete(name, [1, 2, 999]) == 2


def test_auth(tmp_path):
    token = tmp_path / "token"
    token.write_text("py-token\n")
    proc, port = start_server(tmp_path / "data", "--auth-token-file", str(token))
    try:
        target = f"127.0.0.1:{port}"
        with Client(target) as anon, Client(target, token="nope") as wrong, \
                Client(target, token="py-token") as good:
            assert anon.healthy()
            expect_code(grpc.StatusCode.UNAUTHENTICATED, anon.list_collections)
            expect_code(grpc.StatusCode.UNAUTHENTICATED, wrong.create_embedding_collection,
                        "e", dim=4)
            assert good.list_collections() == []
    finally:
        assert stop_server(proc) == 0
