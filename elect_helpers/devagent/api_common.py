"""Helpers shared by the HTTP endpoints: query options, meta headers and JSON responses.

Mirrors ``agent/http.go``: ``parseDC`` (``datacenter`` beats ``dc``), ``parseConsistency``
(presence flags, stale/consistent conflict, ``max_stale``), ``parseWait`` (``wait`` before
``index``, plain-text 400s) and ``setMeta`` (index never below 1, known leader, last contact,
query backend, effective consistency where Consul sets it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..durations import DurationError, parse_duration
from .decode import DecodeError, parse_body
from .errors import Failure, go_quote
from .httpcore import (
    JSON_TYPE,
    BodyTooLarge,
    Deferred,
    PlainError,
    Request,
    Response,
    json_body,
)
from .state import DevState
from .store import QueryResult

T = TypeVar("T")

UINT64_MAX = 2**64 - 1


def parse_uint(text: str) -> int:
    """Go's ``strconv.ParseUint(text, 10, 64)``; raises :class:`Failure` with Go's error text."""
    if not text.isascii() or not text.isdigit():
        raise Failure(f"strconv.ParseUint: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if value > UINT64_MAX:
        raise Failure(f"strconv.ParseUint: parsing {go_quote(text)}: value out of range")
    return value


def json_prefix(too_large: BodyTooLarge) -> bytes:
    """What Consul's streaming JSON decoder would have judged of a body over the cap.

    Go stops at the first complete value or the first syntax error, so when the first
    ``MAX_BODY`` bytes already hold either, they are the body to decode.  A value still open
    there is re-raised: Go would read on, and the agent answers 413 instead.
    """
    try:
        parse_body(too_large.prefix)
    except DecodeError as error:
        if error.truncated:
            raise too_large from None
    return too_large.prefix


@dataclass
class QueryOptions:
    """The parsed common read options of one request."""

    datacenter: str
    min_index: int = 0
    wait_ns: int = 0
    stale: bool = False
    consistent: bool = False
    cached: bool = False

    @property
    def consistency(self) -> str:
        """The ``X-Consul-Effective-Consistency`` value for these options."""
        if self.consistent:
            return "consistent"
        if self.stale:
            return "stale"
        return "leader"


class ApiContext:
    """What every endpoint needs: the state, the agent's datacenter and response helpers."""

    def __init__(self, state: DevState) -> None:
        self.state = state

    # ----- parsing ----------------------------------------------------------------------

    def datacenter(self, request: Request) -> str:
        """``parseDC``: ``?datacenter`` wins over ``?dc``; default is the agent's."""
        return request.get("datacenter") or request.get("dc") or self.state.datacenter

    def require_local_dc(self, datacenter: str) -> None:
        """Refuse other datacenters as a single-DC dev agent does."""
        if datacenter != self.state.datacenter:
            raise Failure("No path to datacenter")

    def parse(self, request: Request) -> QueryOptions:
        """Consul's ``s.parse``: DC, consistency flags, then ``wait`` and ``index``."""
        options = QueryOptions(datacenter=self.datacenter(request))
        options.stale = request.has("stale")
        options.consistent = request.has("consistent")
        options.cached = request.has("cached")
        max_stale = request.get("max_stale")
        if max_stale:
            try:
                if parse_duration(max_stale) > 0:
                    options.stale = True
            except DurationError:
                raise PlainError(400, f"Invalid max_stale value {go_quote(max_stale)}") from None
        if options.stale and options.consistent:
            raise PlainError(400, "Cannot specify ?stale with ?consistent, conflicting semantics.")
        if options.cached and options.consistent:
            raise PlainError(400, "Cannot specify ?cached with ?consistent, conflicting semantics.")
        wait = request.get("wait")
        if wait:
            try:
                options.wait_ns = parse_duration(wait)
            except DurationError:
                raise PlainError(400, "Invalid wait time") from None
        index = request.get("index")
        if index:
            if not index.isascii() or not index.isdigit() or int(index) > UINT64_MAX:
                raise PlainError(400, "Invalid index")
            options.min_index = int(index)
        return options

    # ----- reads ------------------------------------------------------------------------

    def respond(
        self,
        request: Request,
        options: QueryOptions,
        run: Callable[[], QueryResult[T]],
        render: Callable[[QueryResult[T]], Response],
    ) -> Response | Deferred:
        """Run a read; answer now, or defer it as a blocking query (``?index`` not passed).

        Consul's ``blockingquery.Query``: without ``index`` the read runs once; otherwise it
        is answered once its index exceeds ``index`` or the (jittered) wait runs out.
        """
        state = self.state
        with state.store.lock:
            result = run()
        result.index = max(result.index, 1)
        if options.min_index == 0 or result.index > options.min_index or state.store.closed:
            return render(result)
        return Deferred(
            run=run,  # type: ignore[arg-type]
            render=render,  # type: ignore[arg-type]
            min_index=options.min_index,
            timeout_s=state.query_timeout_s(options.wait_ns),
            cache_key=(request.raw_path, request.raw_query),
        )

    # ----- responses --------------------------------------------------------------------

    def json(
        self, request: Request, obj: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        """A JSON response, pretty-printed as dev mode does (newline only with ``?pretty``)."""
        body = json_body(obj, pretty=True, newline=request.has("pretty"))
        return Response(status, body, {"Content-Type": JSON_TYPE, **(headers or {})})

    @staticmethod
    def meta(
        index: int,
        backend: str = "blocking-query",
        known_leader: bool = True,
        consistency: str | None = None,
    ) -> dict[str, str]:
        """``setMeta`` headers for a read answered at ``index``."""
        headers = {
            "X-Consul-Index": str(max(index, 1)),
            "X-Consul-KnownLeader": "true" if known_leader else "false",
            "X-Consul-LastContact": "0",
            "X-Consul-Query-Backend": backend,
        }
        if consistency is not None:
            headers["X-Consul-Effective-Consistency"] = consistency
        return headers
