"""The emulator's HTTP server keeps HTTP/1.1 connections open between requests, as AWS endpoints do.

moto serves with werkzeug's development server, whose request handler (werkzeug 3.1) ends every response with
`Connection: close`: every botocore call then opens a new TCP connection and the server starts a new thread
for it, and after each response the thread waits 10 ms for stray request bytes. The lake's Lambda workers,
Step Functions tasks and the CLI make tens of calls per object, each paying that in the emulator's one
interpreter. botocore keeps a pool of connections per client and reuses them when the server lets it.

One named patch (`sdlf_cli.local.cfn._patching`) puts a subclass of moto's request handler in place of the one
moto's threaded server is built with (install it before the server starts). It serves a request on a kept-alive
connection when the request allows it to be framed without guessing - HTTP/1.1, no `Connection: close`, no
`Transfer-Encoding` (a body is delimited by `Content-Length`, or absent) - and otherwise hands it to moto's
handler unchanged, which closes the connection after it. On a kept-alive connection the request body is read
to its end even when the application did not read it (so the next request starts where it should), the
response is framed by its `Content-Length` (set from the body when the application set none), and an
application error is answered with a 500 and the connection closed, as werkzeug does. A connection idle for
`IDLE_SECONDS` is closed by the server; `close_connections(server)` closes all of a stopping server's, so no
kept-alive connection outlives the emulator that accepted it.
"""
from __future__ import annotations

import socket
import threading
from typing import Any

PATCH_NAME = "server: HTTP/1.1 connections are kept alive between requests"
IDLE_SECONDS = 60.0  # a kept-alive connection's thread ends after this long without a request

_NO_BODY_STATUSES = (204, 304)


def _keep_alive_handler(moto_handler: type) -> type:
    from werkzeug.exceptions import InternalServerError
    from werkzeug.wsgi import LimitedStream

    class KeepAliveRequestHandler(moto_handler):  # type: ignore[misc, valid-type]
        timeout = IDLE_SECONDS

        def setup(self) -> None:
            super().setup()
            # A response larger than a segment, or a 100 Continue before it, is more than one write: without
            # this, Nagle's algorithm holds the rest back until the client's delayed ACK (~40 ms) on a
            # connection that stays open.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with _connections_lock:
                _connections.setdefault(id(self.server), set()).add(self.connection)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                with _connections_lock:
                    _connections.get(id(self.server), set()).discard(self.connection)

        def log_error(self, format: str, *args: Any) -> None:
            if format.startswith("Request timed out"):
                return  # a kept-alive connection left idle for IDLE_SECONDS: closed, as it should be
            super().log_error(format, *args)

        def _framed(self) -> int | None:
            """The request body's length when this request can be served on a kept-alive connection."""
            if self.request_version != "HTTP/1.1" or self.close_connection or "Transfer-Encoding" in self.headers:
                return None
            length = self.headers.get("Content-Length")
            if length is None:
                return 0
            try:
                value = int(length)
            except ValueError:
                return None
            return value if value >= 0 else None

        def run_wsgi(self) -> None:
            length = self._framed()
            if length is None:
                super().run_wsgi()  # moto's handler: ends with Connection: close
                self.close_connection = True
                return
            if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.environ = environ = self.make_environ()
            body = LimitedStream(self.rfile, length)
            environ["wsgi.input"] = body
            started: list = []
            chunks: list[bytes] = []

            def start_response(status: str, headers: list, exc_info: Any = None) -> Any:
                started[:] = [status, headers]
                return chunks.append

            def run(app: Any) -> None:
                chunks.clear()
                iterable = app(environ, start_response)
                try:
                    for data in iterable:
                        chunks.append(data)
                finally:
                    if hasattr(iterable, "close"):
                        iterable.close()

            try:
                run(self.server.app)
            except Exception as exc:  # what werkzeug does: log it, answer 500
                if self.server.passthrough_errors:
                    raise
                from werkzeug.debug.tbtools import DebugTraceback

                self.server.log("error", f"Error on request:\n{DebugTraceback(exc).render_traceback_text()}")
                run(InternalServerError())
                self.close_connection = True
            body.exhaust()  # the next request on this connection starts after this one's body
            self._respond(environ, started[0], started[1], b"".join(chunks))

        def _respond(self, environ: dict, status: str, headers: list, payload: bytes) -> None:
            code_text, _, message = status.partition(" ")
            code = int(code_text)
            self.send_response(code, message)
            names = set()
            for name, value in headers:
                if name.lower() == "connection":
                    continue
                self.send_header(name, value)
                names.add(name.lower())
            bodiless = environ["REQUEST_METHOD"] == "HEAD" or code < 200 or code in _NO_BODY_STATUSES
            if "content-length" not in names and not bodiless:
                self.send_header("Content-Length", str(len(payload)))
            if self.close_connection:
                self.send_header("Connection", "close")
            # The head and the body leave in one write: one system call and one TCP segment for a small
            # response, instead of end_headers()'s write of the head followed by the body's own.
            self._headers_buffer.append(b"\r\n")
            if payload and not bodiless:
                self._headers_buffer.append(payload)
            self.wfile.write(b"".join(self._headers_buffer))
            self._headers_buffer = []
            self.wfile.flush()

    return KeepAliveRequestHandler


_connections: dict[int, set[socket.socket]] = {}
_connections_lock = threading.Lock()


def close_connections(server: Any) -> None:
    """Closes every connection `server` (a werkzeug server) still has open: their threads end."""
    with _connections_lock:
        connections = _connections.pop(id(server), set())
    for connection in connections:
        try:
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # closed meanwhile


def install() -> None:
    from moto.moto_server import threaded_moto_server

    from sdlf_cli.local.cfn import _patching

    _patching.wrap(threaded_moto_server, "MotoRequestHandler", PATCH_NAME, _keep_alive_handler)


def uninstall() -> None:
    from sdlf_cli.local.cfn import _patching

    _patching.uninstall(PATCH_NAME)
