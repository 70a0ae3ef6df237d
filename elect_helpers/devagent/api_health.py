"""``/v1/health/...``, ``/v1/catalog/...`` and ``/v1/status/...`` (read-only endpoints).

Health and catalog reads block on their tables, carry ``X-Consul-Effective-Consistency``,
and ``/v1/health/service`` answers blocking requests from the "streaming" backend like Consul
1.16-1.20 (``X-Consul-Query-Backend: streaming``, ``X-Consul-KnownLeader: false``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import render
from .api_common import ApiContext, QueryOptions
from .catalog import PASSING
from .errors import InvalidInput
from .httpcore import PLAIN, Deferred, PlainError, Request, Response
from .store import QueryResult

LEADER = "127.0.0.1:8300"
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _passing_filter(request: Request) -> bool:
    """``?passing``: presence means true unless it parses as false; junk is a 400."""
    if not request.has("passing"):
        return False
    value = request.get("passing")
    if value == "" or value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidInput("Invalid value for ?passing")


class HealthCatalogEndpoint:
    """Handlers for health, catalog and status reads."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api

    def _read(
        self,
        request: Request,
        options: QueryOptions,
        run: Callable[[], QueryResult[Any]],
        shape: Callable[[Any], Any],
        streaming: bool = False,
    ) -> Response | Deferred:
        """Answer (or block on) a read; ``shape`` builds the body from the result.

        ``shape`` may raise :class:`InvalidInput` for a parameter Consul only checks after
        its query (``?passing``): that 400 carries the read's meta headers, as there.
        """
        self.api.require_local_dc(options.datacenter)
        self.api.refuse_unsupported_filters(request)

        def finish(result: QueryResult[Any]) -> Response:
            if streaming:
                meta = self.api.meta(
                    result.index,
                    backend="streaming",
                    known_leader=False,
                    consistency=options.consistency,
                )
            else:
                meta = self.api.meta(result.index, consistency=options.consistency)
            try:
                body = shape(result.value)
            except InvalidInput as error:
                return Response(400, error.message.encode(), {**meta, "Content-Type": PLAIN})
            return self.api.json(request, body, headers=meta)

        return self.api.respond(request, options, run, finish)

    @staticmethod
    def _name(request: Request, prefix: str, missing: str) -> str:
        name = request.path[len(prefix) :]
        if not name:
            raise InvalidInput(missing)
        return name

    # ----- health -----------------------------------------------------------------------

    def health_service(self, request: Request) -> Response | Deferred:
        """``GET /v1/health/service/<name>`` with ``?passing`` and ``?tag``.

        Like ``healthServiceNodes``, ``?passing`` is parsed only after the (blocking) query.
        """
        options = self.api.parse(request)
        name = self._name(request, "/v1/health/service/", "Missing service name")
        tags = request.query.get("tag", [])
        catalog = self.api.state.catalog

        def shape(entries: list[Any]) -> list[dict[str, Any]]:
            passing = _passing_filter(request)
            out = []
            for node, service, checks in entries:
                if tags and not all(t in service.tags for t in tags):
                    continue
                if passing and any(c.status != PASSING for c in checks):
                    continue
                out.append(
                    {
                        "Node": render.node(node),
                        "Service": render.node_service(service),
                        "Checks": [render.health_check(c) for c in checks],
                    }
                )
            return out

        streaming = options.min_index > 0 or options.cached
        return self._read(
            request, options, lambda: catalog.service_health(name), shape, streaming=streaming
        )

    def health_checks(self, request: Request) -> Response | Deferred:
        """``GET /v1/health/checks/<service>``."""
        options = self.api.parse(request)
        name = self._name(request, "/v1/health/checks/", "Missing service name")
        catalog = self.api.state.catalog
        return self._read(request, options, lambda: catalog.service_checks(name), _checks_json)

    def health_node(self, request: Request) -> Response | Deferred:
        """``GET /v1/health/node/<node>``."""
        options = self.api.parse(request)
        name = self._name(request, "/v1/health/node/", "Missing node name")
        catalog = self.api.state.catalog
        return self._read(request, options, lambda: catalog.node_checks(name), _checks_json)

    def health_state(self, request: Request) -> Response | Deferred:
        """``GET /v1/health/state/<state>``: ``any``, or the checks whose status is ``state``.

        Consul does not validate the state (``checksInStateTxn``): an unknown one is ``[]``.
        """
        options = self.api.parse(request)
        state = self._name(request, "/v1/health/state/", "Missing check state")
        catalog = self.api.state.catalog
        return self._read(request, options, lambda: catalog.checks_in_state(state), _checks_json)

    # ----- catalog ----------------------------------------------------------------------

    def catalog_services(self, request: Request) -> Response | Deferred:
        """``GET /v1/catalog/services``: ``{name: [tags]}``."""
        options = self.api.parse(request)
        return self._read(request, options, self.api.state.catalog.services_tags, lambda v: v)

    def catalog_service(self, request: Request) -> Response | Deferred:
        """``GET /v1/catalog/service/<name>`` with ``?tag``."""
        options = self.api.parse(request)
        name = self._name(request, "/v1/catalog/service/", "Missing service name")
        tags = request.query.get("tag", [])
        catalog = self.api.state.catalog

        def shape(pairs: list[Any]) -> list[dict[str, Any]]:
            return [
                render.service_node(n, s)
                for n, s in pairs
                if not tags or all(t in s.tags for t in tags)
            ]

        return self._read(request, options, lambda: catalog.service_instances(name), shape)

    def catalog_nodes(self, request: Request) -> Response | Deferred:
        """``GET /v1/catalog/nodes``."""
        options = self.api.parse(request)
        return self._read(
            request,
            options,
            self.api.state.catalog.nodes,
            lambda nodes: [render.node(n) for n in nodes],
        )

    def catalog_node(self, request: Request) -> Response | Deferred:
        """``GET /v1/catalog/node/<node>``: ``{"Node", "Services"}`` or ``null``."""
        options = self.api.parse(request)
        name = self._name(request, "/v1/catalog/node/", "Missing node name")
        catalog = self.api.state.catalog

        def shape(found: Any) -> Any:
            if found is None:
                return None
            node, services = found
            return {
                "Node": render.node(node),
                "Services": {s.id: render.node_service(s) for s in services},
            }

        return self._read(request, options, lambda: catalog.node_services(name), shape)

    # ----- status -----------------------------------------------------------------------

    def status_leader(self, request: Request) -> Response:
        """``GET /v1/status/leader``: the raft leader's address as a JSON string."""
        self._status_dc(request)
        return self.api.json(request, LEADER)

    def status_peers(self, request: Request) -> Response:
        """``GET /v1/status/peers``."""
        self._status_dc(request)
        return self.api.json(request, [LEADER])

    def _status_dc(self, request: Request) -> None:
        datacenter = self.api.datacenter(request)
        if datacenter != self.api.state.datacenter:
            raise PlainError(500, "No path to datacenter")


def _checks_json(checks: list[Any]) -> list[dict[str, Any]]:
    return [render.health_check(c) for c in checks]
