"""``/v1/session/``: create, destroy, renew, info, node, list (``agent/session_endpoint.go``).

Create starts from Consul's defaults (agent node, ``serfHealth``, 15 s lock-delay, release),
decodes the body only when ``Content-Length > 0`` (leniently: unknown fields are ignored, field
names match case-insensitively, ``LockDelay`` below 1000 means seconds), applies
``fixupEmptySessionChecks``, then lets the state validate it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..durations import SECOND, DurationError, parse_duration
from ..settings import LOCK_DELAY_SECONDS_BELOW_NS
from . import render
from .api_common import ApiContext, QueryOptions, json_prefix
from .decode import DecodeError, decode_struct, go_duration_from_number, parse_body
from .definitions import SESSION
from .errors import InvalidInput, NotFound
from .httpcore import BodyTooLarge, Deferred, Request, Response
from .sessions import Session
from .store import QueryResult

SERF = "serfHealth"


def _lock_delay(value: Any) -> int:
    """``Session.UnmarshalJSON``'s LockDelay rule: string or ns number; < 1000 means seconds."""
    if isinstance(value, str):
        delay = parse_duration(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        delay = go_duration_from_number(float(value))
    else:
        delay = 0
    if delay < LOCK_DELAY_SECONDS_BELOW_NS:
        delay *= SECOND
    return delay


def session_from_body(body: bytes, node: str) -> Session:
    """Build the session to create from a request body, exactly as ``SessionCreate`` does."""
    session = Session(id="", node=node, node_checks=[SERF], checks=[SERF])
    if body:
        try:
            fields = decode_struct(parse_body(body), SESSION)
            if fields.get("LockDelay") is not None:
                session.lock_delay = _lock_delay(fields["LockDelay"])
        except (DecodeError, DurationError) as error:
            raise InvalidInput(f"Request decode failed: {error}") from None
        session.name = fields.get("Name", session.name)
        session.node = fields.get("Node", session.node)
        session.behavior = fields.get("Behavior", session.behavior)
        session.ttl = fields.get("TTL", session.ttl)
        if "NodeChecks" in fields:
            session.node_checks = fields["NodeChecks"]
        if "Checks" in fields:
            session.checks = fields["Checks"]
        if "ServiceChecks" in fields:
            checks = fields["ServiceChecks"]
            session.service_checks = (
                None
                if checks is None
                else [
                    {"ID": (c or {}).get("ID", ""), "Namespace": (c or {}).get("Namespace", "")}
                    for c in checks
                ]
            )
    _fixup_empty_checks(session)
    return session


def _fixup_empty_checks(session: Session) -> None:
    """``fixupEmptySessionChecks``: reconcile the deprecated ``Checks`` with ``NodeChecks``."""
    if not session.checks:
        session.node_checks = []
        session.checks = None
        return
    if session.checks == [SERF]:
        session.checks = None
        return
    if not session.node_checks:
        session.checks = None


class SessionEndpoint:
    """Handlers for ``/v1/session/...``."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api

    @staticmethod
    def _suffix(request: Request, prefix: str) -> str:
        return request.path[len(prefix) :]

    def create(self, request: Request) -> Response:
        """``PUT /v1/session/create``."""
        datacenter = self.api.datacenter(request)
        state = self.api.state
        try:
            body = request.body() if request.content_length > 0 else b""
        except BodyTooLarge as too_large:
            body = json_prefix(too_large)
        session = session_from_body(body, state.node_name)
        self.api.require_local_dc(datacenter)
        return self.api.json(request, {"ID": state.session_create(session)})

    def destroy(self, request: Request) -> Response:
        """``PUT /v1/session/destroy/<id>``: idempotent, always ``true``."""
        datacenter = self.api.datacenter(request)
        session_id = self._suffix(request, "/v1/session/destroy/")
        if not session_id:
            raise InvalidInput("Missing session")
        self.api.require_local_dc(datacenter)
        return self.api.json(request, self.api.state.session_destroy(session_id))

    def renew(self, request: Request) -> Response:
        """``PUT /v1/session/renew/<id>``: the session in a list, or 404 when unknown."""
        datacenter = self.api.datacenter(request)
        session_id = self._suffix(request, "/v1/session/renew/")
        if not session_id:
            raise InvalidInput("Missing session")
        self.api.require_local_dc(datacenter)
        found = self.api.state.session_renew(session_id)
        if not found:
            raise NotFound(f"Session id '{session_id}' not found")
        return self.api.json(request, [render.session(s) for s in found])

    def _read(
        self,
        request: Request,
        options: QueryOptions,
        run: Callable[[], QueryResult[list[Session]]],
    ) -> Response | Deferred:
        self.api.require_local_dc(options.datacenter)
        return self.api.respond(
            request,
            options,
            run,
            lambda r: self.api.json(
                request, [render.session(s) for s in r.value], headers=self.api.meta(r.index)
            ),
        )

    def info(self, request: Request) -> Response | Deferred:
        """``GET /v1/session/info/<id>``: ``[session]`` or ``[]``."""
        options = self.api.parse(request)
        session_id = self._suffix(request, "/v1/session/info/")
        if not session_id:
            raise InvalidInput("Missing session")
        return self._read(request, options, lambda: self.api.state.sessions.get(session_id))

    def node(self, request: Request) -> Response | Deferred:
        """``GET /v1/session/node/<node>``."""
        options = self.api.parse(request)
        node = self._suffix(request, "/v1/session/node/")
        if not node:
            raise InvalidInput("Missing node name")
        return self._read(request, options, lambda: self.api.state.sessions.for_node(node))

    def list(self, request: Request) -> Response | Deferred:
        """``GET /v1/session/list``."""
        return self._read(request, self.api.parse(request), self.api.state.sessions.list)
