"""A small HTTP/1.1 server stack on the standard library, shaped like Consul's ``wrap``.

:class:`Router` holds Go-``ServeMux``-style patterns (``/v1/kv/`` matches a subtree,
``/v1/session/create`` only itself) with their allowed methods.  :class:`HTTPService` answers
``OPTIONS`` and wrong methods (405 + ``Allow``) before calling a handler, maps
:class:`~.errors.AgentError` kinds to status codes with plain-text bodies, turns a crash in a
handler into a logged 500 for that request only, gzips large bodies for clients that accept it,
and keeps connections alive.  Handlers get a :class:`Request` and return a :class:`Response`.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO

from .errors import AgentError, Failure, InvalidInput, NotFound, TooLarge

log = logging.getLogger("elect_helpers.devagent.http")

PLAIN = "text/plain; charset=utf-8"
JSON_TYPE = "application/json"
GZIP_MIN_SIZE = 1400
NOT_FOUND_TEXT = "Invalid URL path: not a recognized HTTP API endpoint\n"
UI_DISABLED_TEXT = (
    "Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent "
    "configuration and restart."
)
MAX_DISCARD = 4 * 1024 * 1024


class IncompleteBody(Exception):
    """The client closed the connection before sending the whole body it announced."""


class PlainError(Exception):
    """A response a handler writes itself (status and plain text), like ``parseWait``'s."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@dataclass
class Response:
    """What a handler answers: status, body bytes and extra headers."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Request:
    """One parsed request: method, decoded path, query (presence-aware) and a lazy body."""

    def __init__(
        self,
        method: str,
        target: str,
        headers: Message,
        rfile: BinaryIO,
    ) -> None:
        self.method = method
        split = urllib.parse.urlsplit(target)
        self.raw_path = split.path
        self.path = urllib.parse.unquote(split.path)
        self.raw_query = split.query
        self.query: dict[str, list[str]] = {}
        for key, value in urllib.parse.parse_qsl(split.query, keep_blank_values=True):
            self.query.setdefault(key, []).append(value)
        self.headers = headers
        self._rfile = rfile
        self._body: bytes | None = None
        length = headers.get("Content-Length")
        self.chunked = "chunked" in (headers.get("Transfer-Encoding") or "").lower()
        try:
            self.content_length = int(length) if length is not None else (-1 if self.chunked else 0)
        except ValueError:
            self.content_length = 0

    def has(self, name: str) -> bool:
        """Whether the query parameter is present (Consul's presence flags)."""
        return name in self.query

    def get(self, name: str) -> str:
        """The first value of a query parameter, or ``""``."""
        values = self.query.get(name)
        return values[0] if values else ""

    def body(self) -> bytes:
        """Read (once) and return the request body."""
        if self._body is None:
            if self.chunked:
                self._body = self._read_chunked()
            elif self.content_length > 0:
                data = self._rfile.read(self.content_length)
                if len(data) < self.content_length:
                    raise IncompleteBody(
                        f"unexpected EOF: got {len(data)} of {self.content_length} body bytes"
                    )
                self._body = data
            else:
                self._body = b""
        return self._body

    @property
    def body_consumed(self) -> bool:
        """Whether the body has been read from the connection."""
        return self._body is not None or (self.content_length <= 0 and not self.chunked)

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            line = self._rfile.readline(65537)
            if not line:
                raise IncompleteBody("unexpected EOF in a chunked body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise IncompleteBody("malformed chunked encoding") from None
            if size == 0:
                while self._rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            chunk = self._rfile.read(size)
            if len(chunk) < size:
                raise IncompleteBody("unexpected EOF in a chunked body")
            parts.append(chunk)
            self._rfile.readline(65537)


Handler = Callable[[Request], Response]


@dataclass
class Route:
    """A registered endpoint: pattern, allowed methods, handler."""

    pattern: str
    methods: tuple[str, ...]
    handler: Handler


class Router:
    """Go ``ServeMux`` matching: exact patterns, and subtree patterns ending in ``/``."""

    def __init__(self) -> None:
        self._exact: dict[str, Route] = {}
        self._subtrees: list[Route] = []

    def add(self, pattern: str, methods: tuple[str, ...], handler: Handler) -> None:
        """Register ``handler`` for ``pattern`` and ``methods``."""
        route = Route(pattern, methods, handler)
        if pattern.endswith("/"):
            self._subtrees.append(route)
            self._subtrees.sort(key=lambda r: len(r.pattern), reverse=True)
        else:
            self._exact[pattern] = route

    def match(self, path: str) -> Route | None:
        """The route for ``path`` (longest pattern wins), or None."""
        route = self._exact.get(path)
        if route is not None:
            return route
        for candidate in self._subtrees:
            if path.startswith(candidate.pattern):
                return candidate
        return None

    def redirect_for(self, path: str) -> str | None:
        """ServeMux's trailing-slash redirect target for ``path``, if any."""
        if path + "/" in {r.pattern for r in self._subtrees} and path not in self._exact:
            return path + "/"
        return None


def status_for(error: AgentError) -> int:
    """The HTTP status Consul uses for each error kind."""
    if isinstance(error, InvalidInput):
        return 400
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, TooLarge):
        return 413
    assert isinstance(error, Failure | AgentError)
    return 500


def json_body(obj: Any, pretty: bool, newline: bool) -> bytes:
    """Encode like Consul's ``marshalJSON``: 4-space indent when pretty (dev mode)."""
    if pretty:
        text = json.dumps(obj, indent=4, ensure_ascii=False)
    else:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if newline:
        text += "\n"
    return text.encode("utf-8")


class HTTPService:
    """Dispatches requests to routes with Consul's method, error and header rules."""

    def __init__(self, router: Router, base_headers: dict[str, str]) -> None:
        self.router = router
        self.base_headers = base_headers

    def handle(self, request: Request) -> Response:
        """Answer one request; never raises."""
        if not request.path.isprintable():
            return Response(400)
        route = self.router.match(request.path)
        if route is None:
            return self._unrouted(request)
        allow = ",".join(("OPTIONS", *route.methods))
        if request.method == "OPTIONS":
            return self._wrapped(Response(200, b"", {"Allow": allow}))
        if request.method not in route.methods:
            return self._wrapped(
                Response(
                    405,
                    f"method {request.method} not allowed".encode(),
                    {"Allow": allow, "Content-Type": PLAIN},
                )
            )
        try:
            response = route.handler(request)
        except IncompleteBody as error:
            response = Response(
                400, str(error).encode(), {"Content-Type": PLAIN, "Connection": "close"}
            )
        except PlainError as error:
            response = Response(error.status, error.text.encode(), {"Content-Type": PLAIN})
        except AgentError as error:
            response = Response(status_for(error), error.message.encode(), {"Content-Type": PLAIN})
        except Exception as error:
            log.exception("handler for %s %s failed", request.method, request.path)
            text = f"Internal error in the embedded dev agent: {type(error).__name__}: {error}"
            response = Response(500, text.encode(), {"Content-Type": PLAIN})
        return self._wrapped(response)

    def _wrapped(self, response: Response) -> Response:
        merged = dict(self.base_headers)
        merged.update(response.headers)
        response.headers = merged
        return response

    def _unrouted(self, request: Request) -> Response:
        target = self.router.redirect_for(request.path)
        if target is not None:
            location = target + ("?" + request.raw_query if request.raw_query else "")
            body = f'<a href="{location}">Moved Permanently</a>.\n\n'.encode()
            return Response(
                301, body, {"Location": location, "Content-Type": "text/html; charset=utf-8"}
            )
        if request.path != "/":
            return Response(404, NOT_FOUND_TEXT.encode(), {"Content-Type": PLAIN})
        return Response(200, UI_DISABLED_TEXT.encode(), {"Content-Type": PLAIN})


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: DevHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def _dispatch(self) -> None:
        started = time.monotonic()
        request = Request(self.command, self.path, self.headers, self.rfile)
        response = self.server.service.handle(request)
        if response.headers.get("Connection") == "close":
            self.close_connection = True
        elif not request.body_consumed:
            if request.chunked or request.content_length > MAX_DISCARD:
                self.close_connection = True
            else:
                request.body()
        self._send(request, response)
        log.debug(
            "Request finished: method=%s url=%s from=%s:%s latency=%.3fms",
            self.command,
            self.path,
            *self.client_address[:2],
            (time.monotonic() - started) * 1000,
        )

    def _send(self, request: Request, response: Response) -> None:
        try:
            self._write(response)
        except OSError:
            self.close_connection = True
            log.debug("client went away before the response to %s %s", request.method, request.path)

    def _write(self, response: Response) -> None:
        body = response.body
        headers = response.headers
        accepts_gzip = "gzip" in (self.headers.get("Accept-Encoding") or "")
        if accepts_gzip and len(body) >= GZIP_MIN_SIZE and response.status != 304:
            body = gzip.compress(body, compresslevel=5)
            headers = {**headers, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        self.send_response_only(response.status)
        self.send_header("Date", self.date_time_string())
        for name, value in headers.items():
            if name != "Content-Length":
                self.send_header(name, value)
        if body and "Content-Type" not in headers:
            self.send_header("Content-Type", PLAIN)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection and "Connection" not in headers:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer unparseable requests as Go's net/http does: ``HTTP/1.1 400 Bad Request``."""
        self.request_version = "HTTP/1.1"
        self.close_connection = True
        phrase = self.responses.get(code, ("",))[0]
        body = f"{code} {phrase}".encode()
        self.send_response_only(code)
        self.send_header("Content-Type", PLAIN)
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http: " + format, *args)


class DevHTTPServer(ThreadingHTTPServer):
    """A threading server whose open connections can all be cut on shutdown."""

    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], service: HTTPService) -> None:
        self.service = service
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

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
