"""The lean S3 request path (registry.s3wire) against a small local HTTP server: bodies by
length, by chunks and until close; a kept-alive connection the server dropped is replaced;
what it does not speak is a WireError; the signature is the one botocore computes."""
from __future__ import annotations

import datetime
import socket
import threading
from types import SimpleNamespace

import pytest

from harbor_upgrade.registry.s3wire import Connections, Signer, WireError


class Server:
    """Answers each request on a connection with the next canned answer; close_after_each
    closes the connection after every answer (a server that drops kept-alive connections)."""

    def __init__(self, answers: list[bytes], close_after_each: bool = False):
        self.answers, self.close_after_each = list(answers), close_after_each
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            conn, _ = self.sock.accept()
            self.connections += 1
            with conn, conn.makefile("rb") as reader:   # the socket closes once both are closed
                while self.answers:
                    head = b""
                    while (line := reader.readline()) not in (b"\r\n", b""):
                        head += line
                    if not head:
                        break
                    self.requests.append(head)
                    conn.sendall(self.answers.pop(0))
                    if self.close_after_each:
                        break

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bucket/"


def body_of(conns: Connections, target: str = "/bucket/k") -> tuple[int, bytes]:
    response = conns.get(target, {"host": conns.host_header})
    chunks = []
    while piece := response.read1(3):
        chunks.append(piece)
    response.release()
    return response.status, b"".join(chunks)


def test_length_chunks_and_close_delimited_bodies_on_one_kept_alive_connection():
    server = Server([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\n"
                     b"Trailer: t\r\n\r\n",
                     b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
                     b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"])
    conns = Connections(server.url(), 4, 5, 5)
    assert [body_of(conns) for _ in range(4)] == [(200, b"hello"), (200, b"wikipedia"), (404, b""),
                                                  (200, b"until the end")]
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /bucket/k HTTP/1.1\r\nhost: 127.0.0.1:")
    conns.close()


def test_a_connection_the_server_dropped_is_replaced():
    server = Server([b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"] * 3, close_after_each=True)
    conns = Connections(server.url(), 4, 5, 5)
    assert [body_of(conns) for _ in range(3)] == [(200, b"a")] * 3
    assert server.connections == 3
    conns.close()


@pytest.mark.parametrize("answer", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
                                    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])
def test_what_it_does_not_speak_is_a_wire_error(answer):
    conns = Connections(Server([answer]).url(), 4, 5, 5)
    with pytest.raises(WireError):
        body_of(conns)
    conns.close()


def test_a_body_cut_short_is_a_wire_error():
    conns = Connections(Server([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"],
                               close_after_each=True).url(), 4, 5, 5)
    with pytest.raises(WireError):
        body_of(conns)


@pytest.mark.parametrize("token", [None, "session-token"])
def test_the_signature_is_botocores(token, monkeypatch):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    now = datetime.datetime(2026, 12, 2, 13, 5, 9, tzinfo=datetime.UTC)
    path, query = "/bucket/a%20b/c~d", "delimiter=%2F&list-type=2&prefix=a%2Fb"
    ours = Signer(SimpleNamespace(get_frozen_credentials=lambda: creds.get_frozen_credentials()),
                  "eu-west-1", "s3.example:9000").headers(path, query, now)
    import botocore.auth
    monkeypatch.setattr(botocore.auth.datetime, "datetime",
                        SimpleNamespace(utcnow=lambda: now.replace(tzinfo=None), now=lambda *a: now))
    request = AWSRequest(method="GET", url=f"http://s3.example:9000{path}?{query}")
    S3SigV4Auth(creds, "s3", "eu-west-1").add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"]
