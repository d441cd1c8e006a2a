"""moto's S3 on 127.0.0.1 for the artifact benchmark: ``python moto_s3.py PORT [werkzeug|keepalive]``.

Both fronts serve the same WSGI application, moto's own, answering S3 only: ``python -m
moto.server`` finds the service of every request anew (it lists moto's own package folder and
tries each service's URL patterns: ≈45 % of its CPU per request, measured with py-spy), a cost
real S3 does not put on the machine running the benchmark; both the Harbor-shaped walk and
ours use only S3.

``werkzeug`` is moto's stock HTTP front, werkzeug's development server: it answers every
request with ``Connection: close``, starts a thread for every connection and logs every
request line. ``keepalive`` is a plain HTTP/1.1 front (the standard library's threading HTTP
server, one thread per kept-alive connection, no request log) in front of the same
application, as real S3 keeps connections alive. Under a parallel client the werkzeug front
spends most of moto's CPU on connections and logging (py-spy: Flask and moto's S3 code ≈12 %
of a small GET), so it caps a parallel reader long before S3's own work does; a sequential
reader like the Harbor-shaped walk barely notices which front it talks to.
"""
from __future__ import annotations

import io
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_to_bytes

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app


class S3Only(DomainDispatcherApplication):
    def get_backend_for_host(self, host):
        return "moto_api" if host == "moto_api" else "s3"


def keepalive_handler(app, port: int):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"   # keep-alive unless the client says otherwise

        def log_message(self, *args) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline().strip():   # trailers
                    pass
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _serve(self) -> None:
            body = self._body()
            path, _, query = self.path.partition("?")
            environ = {
                "REQUEST_METHOD": self.command, "SCRIPT_NAME": "",
                "PATH_INFO": unquote_to_bytes(path).decode("latin-1"), "QUERY_STRING": query,
                "REQUEST_URI": self.path, "RAW_URI": self.path,
                "SERVER_NAME": "127.0.0.1", "SERVER_PORT": str(port), "SERVER_PROTOCOL": self.request_version,
                "REMOTE_ADDR": self.client_address[0], "REMOTE_PORT": self.client_address[1],
                "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
                "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
                "wsgi.run_once": False}
            for name, value in self.headers.items():
                key = "HTTP_" + name.upper().replace("-", "_")
                if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                    environ[key] = f"{environ[key]},{value}" if key in environ else value
            answer: dict = {}

            def start_response(status, headers, exc_info=None):
                answer["status"], answer["headers"] = status, headers

            result = app(environ, start_response)
            try:
                data = b"".join(result)
            finally:
                getattr(result, "close", lambda: None)()
            headers = [(k, v) for k, v in answer["headers"] if k.lower() not in ("connection", "transfer-encoding")]
            if not any(k.lower() == "content-length" for k, _ in headers):
                headers.append(("Content-Length", str(len(data))))
            head = "".join(f"{k}: {v}\r\n" for k, v in headers)
            self.wfile.write(f"HTTP/1.1 {answer['status']}\r\n{head}\r\n".encode("latin-1")
                             + (b"" if self.command == "HEAD" else data))

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve

    return Handler


def main() -> None:
    port, front = int(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else "keepalive")
    app = S3Only(create_backend_app)
    if front == "werkzeug":
        from werkzeug.serving import run_simple
        run_simple("127.0.0.1", port, app, threaded=True)
    elif front == "keepalive":
        ThreadingHTTPServer.daemon_threads = True
        ThreadingHTTPServer(("127.0.0.1", port), keepalive_handler(app, port)).serve_forever()
    else:
        sys.exit(f"unknown front {front!r}: werkzeug or keepalive")


if __name__ == "__main__":
    main()
