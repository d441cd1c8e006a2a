"""The lean request path of the S3 backend: SigV4 signing of a GET and HTTP/1.1 on kept-alive
connections, for the hundreds of thousands of small GETs (objects, listing pages) a backfill sends.

Measured per GET on SeaweedFS (CPU of the client): botocore's signer and urllib3 1.37 ms, this
signer and urllib3 0.93 ms, this signer and http.client 0.56 ms, this path 0.19 ms (load 17 on
2 CPUs, so all of them high). urllib3 and http.client spend it parsing headers with the email
package and re-checking URLs; botocore recomputes the signing key with four HMACs a request.

``Signer`` signs as SigV4 says for S3 (a payload hash of the empty body, the host, date and
session token signed; the key derived once a day and per credentials). ``Connections`` keeps
connections to one origin alive and hands each to one request at a time. Only what a GET
needs is spoken: no request body, no redirects, no proxy; a response is read by its
Content-Length, its chunks, or until the connection closes. Anything else (a malformed
answer, a connection that breaks) raises ``WireError`` (an OSError), and the caller asks
again through boto3, whose retries and errors name the problem.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import io
import socket
import ssl
import threading
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_LINE_MAX = 64 << 10
_HEADERS_MAX = 200
_READ_BUFFER = 64 << 10


class WireError(OSError):
    """An answer this path does not speak, or a connection that broke."""


class Signer:
    """SigV4 headers for a GET of path?query on host (S3: the path is signed as sent)."""

    def __init__(self, credentials, region: str, host: str, service: str = "s3"):
        self.credentials, self.region, self.host, self.service = credentials, region, host, service
        self._key: tuple[str, str, bytes] | None = None
        self._lock = threading.Lock()

    def _signing_key(self, secret: str, day: str) -> bytes:
        with self._lock:
            if self._key is None or self._key[:2] != (secret, day):
                key = hmac.new(("AWS4" + secret).encode(), day.encode(), hashlib.sha256).digest()
                for part in (self.region, self.service, "aws4_request"):
                    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
                self._key = (secret, day, key)
            return self._key[2]

    def headers(self, path: str, query: str = "", now: datetime.datetime | None = None) -> dict[str, str]:
        # frozen per request: refreshable credentials (roles) renew themselves here
        creds = self.credentials.get_frozen_credentials()
        stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        signed = {"host": self.host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": stamp}
        if creds.token:
            signed["x-amz-security-token"] = creds.token
        names = ";".join(signed)
        canonical = "\n".join(("GET", path, query, "".join(f"{k}:{v}\n" for k, v in signed.items()), names,
                               EMPTY_SHA256))
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(creds.secret_key, day), to_sign.encode(), hashlib.sha256).hexdigest()
        signed["authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
                                   f"SignedHeaders={names}, Signature={signature}")
        return signed


class Response:
    """The status and headers of an answer; its body through read1(n) (b"" at its end)."""

    def __init__(self, conn: _Connection, status: int, headers: dict[str, str]):
        self._conn, self.status, self.headers = conn, status, headers
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if length is not None and not self._chunked:
            if not length.strip().isdigit():
                conn.close()
                raise WireError(f"an answer with Content-Length {length!r}")
            self._left: int | None = int(length)
        else:
            self._left = None
        self._chunk_left = 0
        self._done = self._left == 0
        self._reusable = not self._closes(headers)

    @staticmethod
    def _closes(headers: dict[str, str]) -> bool:
        return "close" in headers.get("connection", "").lower()

    def read1(self, n: int) -> bytes:
        if self._done or n <= 0:
            return b""
        reader = self._conn.reader
        if self._chunked:
            if self._chunk_left == 0:
                size = reader.readline(_LINE_MAX).split(b";", 1)[0].strip()
                try:
                    self._chunk_left = int(size, 16)
                except ValueError:
                    raise WireError(f"a chunk size {size[:40]!r}") from None
                if self._chunk_left == 0:   # the last chunk, then trailers up to an empty line
                    for _ in range(_HEADERS_MAX):
                        if reader.readline(_LINE_MAX) in (b"\r\n", b"\n", b""):
                            break
                    self._done = True
                    return b""
            data = reader.read1(min(n, self._chunk_left))
            if not data:
                raise WireError("the connection closed inside a chunk")
            self._chunk_left -= len(data)
            if self._chunk_left == 0 and reader.readline(_LINE_MAX) not in (b"\r\n", b"\n"):
                raise WireError("a chunk without its line end")
            return data
        if self._left is None:   # until the connection closes
            data = reader.read1(n)
            if not data:
                self._done, self._reusable = True, False
            return data
        data = reader.read1(min(n, self._left))
        if not data:
            raise WireError("the connection closed before the whole body came")
        self._left -= len(data)
        self._done = self._left == 0
        return data

    def release(self) -> None:
        """The connection back to its pool if the body was read to its end, else closed."""
        if self._done and self._reusable:
            self._conn.release()
        else:
            self._conn.close()

    def close(self) -> None:
        self._conn.close()


class _Connection:
    def __init__(self, owner: Connections):
        self.owner = owner
        sock = socket.create_connection((owner.hostname, owner.port), timeout=owner.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if owner.tls is not None:
                sock = owner.tls.wrap_socket(sock, server_hostname=owner.hostname)
            sock.settimeout(owner.read_timeout)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.reader = cast(io.BufferedReader, sock.makefile("rb", buffering=_READ_BUFFER))
        self.used = False

    def request(self, head: bytes) -> Response:
        try:
            self.sock.sendall(head)
            line = self.reader.readline(_LINE_MAX)
        except ConnectionError:
            if self.used:   # reset or closed by the server while it was kept alive
                raise _Stale() from None
            raise
        if not line:
            raise _Stale() if self.used else WireError("the server closed the connection without an answer")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise WireError(f"not an HTTP answer: {line[:60]!r}")
        headers: dict[str, str] = {}
        for _ in range(_HEADERS_MAX):
            raw = self.reader.readline(_LINE_MAX)
            if raw in (b"\r\n", b"\n"):
                break
            if not raw.endswith(b"\n"):
                raise WireError("an answer's headers end too early or a header is too long")
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep:
                raise WireError(f"a header line without a colon: {raw[:60]!r}")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        else:
            raise WireError(f"more than {_HEADERS_MAX} header lines")
        self.used = True
        response = Response(self, int(parts[1]), headers)
        if parts[0] == b"HTTP/1.0" and "keep-alive" not in headers.get("connection", "").lower():
            response._reusable = False
        return response

    def release(self) -> None:
        self.owner._put(self)

    def close(self) -> None:
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass


class _Stale(Exception):
    """A kept-alive connection the server had closed meanwhile (the request was not answered)."""


class Connections:
    """Kept-alive connections to the origin of url (http or https), at most max_idle kept."""

    def __init__(self, url: str, max_idle: int, connect_timeout: float, read_timeout: float,
                 tls_context: Callable[[], ssl.SSLContext] | None = None):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.hostname = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.host_header = parts.netloc.rpartition("@")[2]
        self.tls = (tls_context or ssl.create_default_context)() if parts.scheme == "https" else None
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.max_idle = max_idle
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def get(self, target: str, headers: dict[str, str]) -> Response:
        """Send GET target with headers (a Host header is added); the response, its body unread."""
        head = (f"GET {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                + "\r\n").encode("latin-1")
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            fresh = conn is None
            if conn is None:
                conn = _Connection(self)
            try:
                return conn.request(head)
            except _Stale:
                conn.close()
                if fresh:   # cannot happen: a fresh connection is never stale
                    raise WireError("the server closed a new connection without an answer") from None
            except BaseException:
                conn.close()
                raise

    def _put(self, conn: _Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
