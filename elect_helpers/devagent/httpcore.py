"""Request routing and error mapping, shaped like Consul's ``wrap`` (no sockets here).

:class:`Router` holds Go-``ServeMux``-style patterns (``/v1/kv/`` matches a subtree,
``/v1/session/create`` only itself) with their allowed methods.  :class:`HTTPService` answers
``OPTIONS`` and wrong methods (405 + ``Allow``) before calling a handler, maps
:class:`~.errors.AgentError` kinds to status codes with plain-text bodies, and turns a crash in
a handler into a logged 500 for that request only.  Handlers get a :class:`Request` and return
a :class:`Response`; :mod:`.httpserver` moves them over the wire.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from .errors import AgentError, Failure, InvalidInput, NotFound, TooLarge
from .store import QueryResult

log = logging.getLogger("elect_helpers.devagent.http")

PLAIN = "text/plain; charset=utf-8"
JSON_TYPE = "application/json"
READ_PIECE = 64 * 1024
MAX_BODY = 4 * 1024 * 1024
NOT_FOUND_TEXT = "Invalid URL path: not a recognized HTTP API endpoint\n"
UI_DISABLED_TEXT = (
    "Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent "
    "configuration and restart."
)


class IncompleteBody(Exception):
    """The client closed the connection before sending the whole body it announced."""


class BodyTooLarge(Exception):
    """The body is over :data:`MAX_BODY`, the dev agent's own cap (Consul has none but KV's).

    Raised once the first ``MAX_BODY`` bytes (kept in ``prefix``) are read, so no request can
    make the agent hold more than that in memory.  Unhandled, it becomes a 413.
    """

    def __init__(self, prefix: bytes) -> None:
        super().__init__(f"request body over {MAX_BODY} bytes")
        self.prefix = prefix


class PlainError(Exception):
    """A response a handler writes itself (status and plain text), like ``parseWait``'s.

    ``headers`` are extra response headers (e.g. the meta headers Consul's deferred
    ``setMeta`` still writes on an error).
    """

    def __init__(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = headers or {}


@dataclass
class Response:
    """What a handler answers: status, body bytes and extra headers."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Deferred:
    """A blocking read that must wait: handed to :class:`~.blocking.Parker` by the server.

    ``run`` re-runs the read (under the store lock); ``render`` turns a result into the final
    response.  Answers for the same ``cache_key`` at the same index are identical, so a herd of
    watchers woken together shares one rendering.
    """

    run: Callable[[], QueryResult[Any]]
    render: Callable[[QueryResult[Any]], Response]
    min_index: int
    timeout_s: float
    cache_key: tuple[str, str]


class Request:
    """One parsed request: method, decoded path, query (presence-aware) and a lazy body.

    ``headers`` maps lower-cased header names to values.  Raises ``ValueError`` for a target
    or ``Content-Length`` that Go's net/http would refuse (the server answers 400).
    """

    def __init__(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
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
        length = headers.get("content-length")
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if length is None:
            self.content_length = -1 if self.chunked else 0
        elif length.isascii() and length.isdigit():
            self.content_length = int(length)
        else:
            raise ValueError(f"bad Content-Length {length!r}")

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
            elif self.content_length > MAX_BODY:
                raise BodyTooLarge(self._read_exactly(MAX_BODY))
            elif self.content_length > 0:
                self._body = self._read_exactly(self.content_length)
            else:
                self._body = b""
        return self._body

    @property
    def body_consumed(self) -> bool:
        """Whether the body has been read from the connection."""
        return self._body is not None or (self.content_length <= 0 and not self.chunked)

    def _read_exactly(self, length: int) -> bytes:
        """Read ``length`` bytes in pieces, so a cut-short body costs only what arrived."""
        parts = []
        missing = length
        while missing > 0:
            piece = self._rfile.read(min(missing, READ_PIECE))
            if not piece:
                raise IncompleteBody(
                    f"unexpected EOF: got {length - missing} of {length} body bytes"
                )
            parts.append(piece)
            missing -= len(piece)
        return b"".join(parts)

    def _read_chunked(self) -> bytes:
        parts = []
        total = 0
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
            if total + size > MAX_BODY:
                parts.append(self._read_exactly(MAX_BODY - total))
                raise BodyTooLarge(b"".join(parts))
            parts.append(self._read_exactly(size))
            total += size
            self._rfile.readline(65537)


Handler = Callable[[Request], "Response | Deferred"]


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
        """Register ``handler`` for ``pattern`` and ``methods`` (replacing an earlier one)."""
        route = Route(pattern, methods, handler)
        if pattern.endswith("/"):
            self._subtrees = [r for r in self._subtrees if r.pattern != pattern]
            self._subtrees.append(route)
            self._subtrees.sort(key=lambda r: len(r.pattern), reverse=True)
        else:
            self._exact[pattern] = route

    def routes(self) -> list[tuple[str, tuple[str, ...], Handler]]:
        """Every registered (pattern, methods, handler), exact patterns first."""
        routes = [*self._exact.values(), *self._subtrees]
        return [(r.pattern, r.methods, r.handler) for r in routes]

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

    def handle(self, request: Request) -> Response | Deferred:
        """Answer one request (or defer a blocking read); never raises."""
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
            if isinstance(response, Deferred):
                response.render = self._guarded(request, response.render)
                return response
        except IncompleteBody:
            # The JSON endpoints stream the body into Go's decoder, which reports the cut.
            response = Response(
                400,
                b"Request decode failed: unexpected EOF",
                {"Content-Type": PLAIN, "Connection": "close"},
            )
        except BodyTooLarge:
            text = f"Request body too large for the embedded dev agent (at most {MAX_BODY} bytes)"
            response = Response(413, text.encode(), {"Content-Type": PLAIN, "Connection": "close"})
        except PlainError as error:
            response = Response(
                error.status, error.text.encode(), {**error.headers, "Content-Type": PLAIN}
            )
        except AgentError as error:
            response = Response(status_for(error), error.message.encode(), {"Content-Type": PLAIN})
        except Exception as error:
            response = self._crashed(request, error)
        return self._wrapped(response)

    def _crashed(self, request: Request, error: Exception) -> Response:
        log.exception("handler for %s %s failed", request.method, request.path)
        text = f"Internal error in the embedded dev agent: {type(error).__name__}: {error}"
        return Response(500, text.encode(), {"Content-Type": PLAIN})

    def _guarded(
        self, request: Request, render: Callable[[QueryResult[Any]], Response]
    ) -> Callable[[QueryResult[Any]], Response]:
        def guarded(result: QueryResult[Any]) -> Response:
            try:
                return self._wrapped(render(result))
            except Exception as error:
                return self._wrapped(self._crashed(request, error))

        return guarded

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
