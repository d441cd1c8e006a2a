"""Hostile objects and a misbehaving server on S3 (the session's SeaweedFS): oversized and
deeply nested objects and names with terminal controls are problems of their artifact, as
on a filesystem; a server that stops answering, drips, or sends an endless body ends as a
clear error per object within the timeouts, never a hang, and never more than the size
bound is read. The misbehaviour is injected by a small proxy in front of the real server
(neither it nor moto can be told to hang on one object)."""
from __future__ import annotations

import itertools
import os
import socket
import socketserver
import threading
import time

import pytest

from harbor_upgrade.artifacts import backfill
from harbor_upgrade.registry.s3 import S3Storage
from harbor_upgrade.registry.storage import ObjectTooLarge, StorageError
from tests.support.artifacts import register
from tests.support.hostile_trees import build, freeze_atimes, good_rows, judge, read_since_frozen, run_artifacts

S3_CASES = ["manifest-padded-5m", "config-padded-5m", "chart-nested-900", "manifest-nested-900",
            "repository-name-escape", "tag-name-escape", "revision-name-escape"]


@pytest.mark.parametrize("case", S3_CASES)
def test_hostile_objects_on_s3_are_reported(case, harbor24, tmp_path, clean_rows,  # noqa: F811 - fixtures
                                            s3_server, s3_upload):
    tree, expected = build(case, tmp_path / "storage", tmp_path / "outside")
    register(harbor24.dsn, tree.db_rows)
    bucket, rootdirectory = s3_upload(tree.root)
    frozen = freeze_atimes(tree.outside)
    result = run_artifacts(harbor24.dsn, ["--storage", f"s3://{bucket}{rootdirectory}", "--s3-endpoint", s3_server,
                                          "--s3-region", "us-east-1"], tmp_path / "report.json")
    assert judge(result, expected, good_rows(harbor24.dsn), clean_rows[0], read_since_frozen(frozen)) == []


class FaultyProxy(socketserver.ThreadingTCPServer):
    """Forwards each request to the S3 server on a connection of its own, except requests whose line
    holds a marker: ``hang`` (never answered), ``endless`` (a 2 GB body of zeros, sent for
    as long as it is read), ``chunked-endless`` (the same without a length), ``drip`` (one
    byte of a 100-byte body every half second)."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: str, hang_on: bytes = b"hang"):
        self.upstream = upstream.split("//", 1)[1]
        self.hang_on = hang_on
        self.sent = 0
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        conn: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(65536)
            if not chunk:
                return
            head += chunk
        line = head.split(b"\r\n", 1)[0]
        try:
            if self.server.hang_on in line:
                time.sleep(30)
            elif b"chunked-endless" in line:
                conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                piece = b"%x\r\n%s\r\n" % (65536, b"\0" * 65536)
                while True:
                    conn.sendall(piece)
                    self.server.sent += 65536
            elif b"endless" in line:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2147483648\r\n\r\n")
                while True:
                    conn.sendall(b"\0" * 65536)
                    self.server.sent += 65536
            elif b"drip" in line:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
                for _ in range(100):
                    time.sleep(0.5)
                    conn.sendall(b"x")
            else:
                head = head.replace(b"Connection: keep-alive", b"Connection: close")
                if b"Connection: close" not in head:
                    head = head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
                host, port = self.server.upstream.split(":")
                with socket.create_connection((host, int(port))) as up:
                    up.sendall(head)
                    while data := up.recv(65536):
                        conn.sendall(data)
        except OSError:
            pass  # the client went away


_buckets = itertools.count()


@pytest.fixture
def faulty(weed):
    bucket = f"faulty-{os.getpid()}-{next(_buckets)}"
    client = weed.client()
    client.create_bucket(Bucket=bucket)
    for key in ("ok", "hang", "endless", "chunked-endless", "drip"):
        client.put_object(Bucket=bucket, Key=f"reg/docker/registry/v2/{key}/data", Body=b"{}")
    client.close()
    proxy = FaultyProxy(weed.endpoint)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    storage = S3Storage(bucket, "reg", endpoint_url=proxy.endpoint, timeout=1, connect_timeout=1, retries=1)
    yield proxy, storage
    storage.close()
    proxy.shutdown()
    proxy.server_close()


def test_a_hung_or_dripping_server_is_a_clear_error_per_object_within_the_timeouts(faulty):
    proxy, storage = faulty
    assert storage.read("ok/data") == b"{}"
    for key in ("hang", "drip"):
        began = time.monotonic()
        with pytest.raises(StorageError) as e:
            storage.read(f"{key}/data")
        assert time.monotonic() - began < 15
        assert f"{key}/data" in str(e.value)
    assert storage.read("ok/data") == b"{}"   # the other objects are still read


def test_an_endless_body_is_never_read_past_the_bound(faulty):
    proxy, storage = faulty
    with pytest.raises(ObjectTooLarge, match="larger than 4 MiB"):
        storage.read("endless/data")           # its length says 2 GB: not read at all
    with pytest.raises(ObjectTooLarge):
        storage.read("chunked-endless/data", limit=1 << 20)
    # what the proxy pushed into the sockets before the connection closed: loopback buffers hold
    # a few MB (the exact bound read is tests/unit/test_storage_bounds.py); an unbounded read takes 2 GB
    assert proxy.sent < 64 << 20
    assert storage.read_head("ok/data", 1) == b"{"


def test_a_backfill_whose_server_hangs_ends_as_a_storage_error(harbor24,  # noqa: F811 - fixture
                                                               tmp_path, s3_server, s3_upload):
    tree, _ = build("manifest-padded-5m", tmp_path / "storage", tmp_path / "outside")
    register(harbor24.dsn, tree.db_rows)
    bucket, rootdirectory = s3_upload(tree.root)
    hung = tree.db_rows[0][1].split(":")[1]   # the first manifest of the good repository
    proxy = FaultyProxy(s3_server, hang_on=f"/{hung}/data".encode())   # its blob is never answered
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    storage = S3Storage(bucket, rootdirectory, endpoint_url=proxy.endpoint, timeout=1, connect_timeout=1, retries=1)
    try:
        began = time.monotonic()
        with pytest.raises(StorageError) as e:
            backfill(harbor24.dsn, storage, jobs=2)
        assert time.monotonic() - began < 60
        assert hung in str(e.value)
    finally:
        storage.close()
        proxy.shutdown()
        proxy.server_close()
