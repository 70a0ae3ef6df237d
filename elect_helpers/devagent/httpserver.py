"""The connection side of the HTTP stack: a lean HTTP/1.1 keep-alive loop per connection.

``http.server.BaseHTTPRequestHandler`` parses headers through the e-mail package, which costs
more than the dev agent's whole request handling; this handler reads the request line and
headers itself, answers through :class:`~.httpcore.HTTPService`, and writes each response
with a single ``sendall`` (``TCP_NODELAY`` set), so a herd of woken blocking queries is
answered quickly.  Malformed requests get Go net/http's ``400 Bad Request`` and a close.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import socket
import socketserver
import threading
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from .blocking import Parker, Wire
from .httpcore import MAX_BODY, PLAIN, READ_PIECE, Deferred, HTTPService, Request, Response

log = logging.getLogger("elect_helpers.devagent.http")

GZIP_MIN_SIZE = 1400
LINGER_S = 0.5
MAX_LINE = 65536
MAX_HEADERS = 200
_PHRASES = {status.value: status.phrase for status in HTTPStatus}


class _BadRequest(Exception):
    """The bytes on the connection are not an HTTP/1.x request."""


class _DateCache:
    """The ``Date`` header value, recomputed at most once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = ""

    def get(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._value = formatdate(now, usegmt=True)
            self._second = now
        return self._value


_DATE = _DateCache()


class _Connection(socketserver.StreamRequestHandler):
    """Serves one client connection: requests in a loop until close or error."""

    server: DevHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def handle(self) -> None:
        try:
            while self._one_request():
                pass
        except _BadRequest:
            self._write_raw(400, b"400 Bad Request", {"Content-Type": PLAIN}, close=True)
        except OSError:
            log.debug("connection from %s ended with an error", self.client_address, exc_info=True)
        except Exception:  # a bug outside the handlers: a logged 500, then this connection ends
            log.exception("serving a connection from %s failed", self.client_address)
            with contextlib.suppress(OSError):
                self._write_raw(500, b"Internal error in the embedded dev agent", {}, close=True)

    def _read_head(self) -> tuple[str, str, str, dict[str, str]] | None:
        line = self.rfile.readline(MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):
            line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            return None
        if len(line) > MAX_LINE:
            raise _BadRequest
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0].isalpha():
            raise _BadRequest
        method, target, version = parts
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            raw = self.rfile.readline(MAX_LINE + 1)
            if raw in (b"\r\n", b"\n"):
                return method, target, version, headers
            if not raw or len(raw) > MAX_LINE:
                raise _BadRequest
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep or not name.strip():
                raise _BadRequest
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        raise _BadRequest

    def _one_request(self) -> bool:
        head = self._read_head()
        if head is None:
            return False
        method, target, version, headers = head
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        if headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        started = time.monotonic()
        try:
            request = Request(method, target, headers, self.rfile)
        except ValueError:
            raise _BadRequest from None
        answer = self.server.service.handle(request)
        gzip_ok = "gzip" in headers.get("accept-encoding", "")
        if isinstance(answer, Deferred):
            close = not keep_alive
            wire = Wire(
                encode=lambda response: self._encode(method, response, gzip_ok, close),
                send=self.wfile.write,
                variant=(method == "HEAD", gzip_ok, close),
            )
            self.server.parker.park(answer, wire)
            return keep_alive
        response = answer
        if response.headers.get("Connection") == "close":
            keep_alive = False
        elif not request.body_consumed:
            if request.chunked or request.content_length > MAX_BODY:
                keep_alive = False
            else:
                with contextlib.suppress(Exception):
                    request.body()
        self._write(method, response, gzip_ok, close=not keep_alive)
        if not keep_alive and not request.body_consumed:
            self._linger()
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "Request finished: method=%s url=%s from=%s:%s latency=%.3fms",
                method, target, *self.client_address[:2], (time.monotonic() - started) * 1000,
            )  # fmt: skip
        return keep_alive

    def _linger(self) -> None:
        """Half-close, then discard what the client still sends for a moment (Go's
        ``closeWriteAndWait``): closing with an unread body would reset the connection and
        could destroy the answer before the client reads it."""
        conn = self.connection
        with contextlib.suppress(OSError):
            self.wfile.flush()
            conn.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_S
            while (left := deadline - time.monotonic()) > 0:
                conn.settimeout(left)
                if not conn.recv(READ_PIECE):
                    break

    def _write(self, method: str, response: Response, gzip_ok: bool, close: bool) -> None:
        self.wfile.write(self._encode(method, response, gzip_ok, close))

    def _encode(self, method: str, response: Response, gzip_ok: bool, close: bool) -> bytes:
        body = response.body
        headers = response.headers
        if gzip_ok and len(body) >= GZIP_MIN_SIZE:
            body = gzip.compress(body, compresslevel=5)
            headers = {**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        return _payload(response.status, body, headers, close, head_only=method == "HEAD")

    def _write_raw(self, status: int, body: bytes, headers: dict[str, str], close: bool) -> None:
        self.wfile.write(_payload(status, body, headers, close))


def _payload(
    status: int, body: bytes, headers: dict[str, str], close: bool, head_only: bool = False
) -> bytes:
    """Status line, headers and body as one buffer, sent in one write (no Nagle stall)."""
    lines = [f"HTTP/1.1 {status} {_PHRASES.get(status, '')}", f"Date: {_DATE.get()}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k not in ("Content-Length", "Connection")]
    if body and "Content-Type" not in headers:
        lines.append(f"Content-Type: {PLAIN}")
    lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")
    return head if head_only else head + body


class DevHTTPServer(socketserver.ThreadingTCPServer):
    """A threading server whose open connections can all be cut on shutdown."""

    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], service: HTTPService, parker: Parker) -> None:
        self.service = service
        self.parker = parker
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Connection)

    def track(self, connection: socket.socket, add: bool) -> None:
        """Remember (or forget) an open client connection."""
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut down every open client connection (keep-alive ones included)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log connection-level errors quietly instead of printing tracebacks to stderr."""
        log.debug("connection error from %s", client_address, exc_info=True)
