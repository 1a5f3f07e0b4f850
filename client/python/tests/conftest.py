"""Starts a real tqdb-server on an ephemeral port for the client tests.

TQDB_SERVER_BIN names the binary (ctest sets it); PYTHONPATH must hold the
generated stubs and client/python.
"""

import os
import signal
import subprocess

import pytest


def start_server(data_dir, *flags):
    binary = os.environ.get("TQDB_SERVER_BIN")
    if not binary:
        pytest.fail("TQDB_SERVER_BIN is not set (run through ctest)")
    proc = subprocess.Popen(
        [binary, "--data-dir", str(data_dir), "--listen", "127.0.0.1:0",
         "--shutdown-grace-s", "2", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        proc.wait()
        pytest.fail(f"tqdb-server did not start: {line!r}")
    return proc, line.strip().rsplit(":", 1)[1]


def stop_server(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    proc, port = start_server(tmp_path_factory.mktemp("tqdb") / "data")
    yield f"127.0.0.1:{port}"
    stop_server(proc)


@pytest.fixture(params=[True, False], ids=["packed", "floats"])
def db(server, request):
    from tqdb_client import Client
    client = Client(server, packed=request.param)
    client.suffix = "_packed" if request.param else "_floats"
    yield client
    client.close()
