"""``/v1/health/...``, ``/v1/catalog/...`` and ``/v1/status/...`` (read-only endpoints).

Health and catalog reads block on their tables, carry ``X-Consul-Effective-Consistency``,
and ``/v1/health/service`` answers blocking requests from the "streaming" backend like Consul
1.16-1.20 (``X-Consul-Query-Backend: streaming``, ``X-Consul-KnownLeader: false``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from . import render
from .api_common import ApiContext, QueryOptions
from .bexpr import GoType
from .catalog import PASSING, HealthCheck
from .errors import Failure, InvalidInput
from .filters import (
    CHECK_SERVICE_NODE,
    HEALTH_CHECK,
    NODE,
    NODE_SERVICE,
    SERVICE_NODE,
    Filter,
    node_meta_pairs,
    optional_filter,
    satisfies_meta,
    streamed_meta_filters,
)
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
        error_meta: bool = True,
    ) -> Response | Deferred:
        """Answer (or block on) a read; ``shape`` builds the body from the result.

        ``shape`` may raise :class:`InvalidInput` for a parameter checked only after the query:
        that 400 carries the read's meta headers.  A
        :class:`Failure` from ``shape`` (a filter failing on the data) is Consul's 500 for an
        error inside the query: with an empty reply's meta headers where ``error_meta``.
        """
        self.api.require_local_dc(options.datacenter)

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
            except Failure as error:
                failed = self._failed(error, error_meta)
                return Response(
                    500, failed.text.encode(), {**failed.headers, "Content-Type": PLAIN}
                )
            return self.api.json(request, body, headers=meta)

        return self.api.respond(request, options, run, finish)

    def _filter(
        self, request: Request, options: QueryOptions, element: GoType, with_meta: bool = True
    ) -> Filter | None:
        """The read's ``?filter``, created where Consul's server endpoint creates it.

        That is after the datacenter check and before the (blocking) query; the 500 carries
        the meta headers of an empty reply where the handler defers ``setMeta``
        (``with_meta``; not ``/v1/health/service``, which sets them only on success).
        """
        self.api.require_local_dc(options.datacenter)
        try:
            return optional_filter(request.get("filter"), element)
        except Failure as error:
            raise self._failed(error, with_meta) from None

    def _failed(self, error: Failure, with_meta: bool = True) -> PlainError:
        headers = self.api.meta(0, known_leader=False) if with_meta else {}
        return PlainError(500, error.message, headers)

    @staticmethod
    def _name(request: Request, prefix: str, missing: str) -> str:
        name = request.path[len(prefix) :]
        if not name:
            raise InvalidInput(missing)
        return name

    # ----- health -----------------------------------------------------------------------

    def health_service(self, request: Request) -> Response | Deferred:
        """``GET /v1/health/service/<name>`` with ``?passing`` and ``?tag``.

        As in 1.20's ``healthServiceNodes``, ``?passing`` is parsed before the query: a bad
        value is a plain 400 without meta headers, ahead of any datacenter or filter error.
        """
        options = self.api.parse(request)
        name = self._name(request, "/v1/health/service/", "Missing service name")
        passing = _passing_filter(request)
        tags = request.query.get("tag", [])
        catalog = self.api.state.catalog
        streaming = options.min_index > 0 or options.cached
        filters = self._health_service_filters(request, options, streaming)
        meta_filters = node_meta_pairs(request.query.get("node-meta", []))

        def shape(entries: list[Any]) -> list[dict[str, Any]]:
            out = []
            for node, service, checks in entries:
                if tags and not all(t in service.tags for t in tags):
                    continue
                if not streaming and not satisfies_meta(node.meta, meta_filters):
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
            for one in filters:
                out = one.items(out)
            return out

        return self._read(
            request,
            options,
            lambda: catalog.service_health(name),
            shape,
            streaming=streaming,
            error_meta=False,
        )

    def _health_service_filters(
        self, request: Request, options: QueryOptions, streaming: bool
    ) -> list[Filter]:
        """``?filter`` (and, streamed, ``?node-meta``) as the backend answering builds them.

        The blocking-query backend wraps a bad filter in ``CreateFilter``'s prefix; the
        streaming view (``newFilterEvaluator``) does not, and adds one evaluator per
        ``?node-meta`` pair.  Neither 500 carries meta headers.
        """
        self.api.require_local_dc(options.datacenter)
        expression = request.get("filter")
        try:
            if not streaming:
                found = optional_filter(expression, CHECK_SERVICE_NODE)
                return [found] if found else []
            built = [Filter(expression, CHECK_SERVICE_NODE, wrapped=False)] if expression else []
            pairs = node_meta_pairs(request.query.get("node-meta", []))
            return built + streamed_meta_filters(pairs)
        except Failure as error:
            raise self._failed(error, with_meta=False) from None

    def health_checks(self, request: Request) -> Response | Deferred:
        """``GET /v1/health/checks/<service>``."""
        options = self.api.parse(request)
        name = self._name(request, "/v1/health/checks/", "Missing service name")
        found = self._filter(request, options, HEALTH_CHECK)
        run = self._on_meta_nodes(request, lambda: self.api.state.catalog.service_checks(name))
        return self._read(request, options, run, _checks_json(found))

    def health_node(self, request: Request) -> Response | Deferred:
        """``GET /v1/health/node/<node>``."""
        options = self.api.parse(request)
        name = self._name(request, "/v1/health/node/", "Missing node name")
        found = self._filter(request, options, HEALTH_CHECK)
        catalog = self.api.state.catalog
        return self._read(request, options, lambda: catalog.node_checks(name), _checks_json(found))

    def health_state(self, request: Request) -> Response | Deferred:
        """``GET /v1/health/state/<state>``: ``any``, or the checks whose status is ``state``.

        Consul does not validate the state (``checksInStateTxn``): an unknown one is ``[]``.
        """
        options = self.api.parse(request)
        state = self._name(request, "/v1/health/state/", "Missing check state")
        found = self._filter(request, options, HEALTH_CHECK)
        run = self._on_meta_nodes(request, lambda: self.api.state.catalog.checks_in_state(state))
        return self._read(request, options, run, _checks_json(found))

    def _on_meta_nodes(
        self, request: Request, run: Callable[[], QueryResult[list[HealthCheck]]]
    ) -> Callable[[], QueryResult[list[HealthCheck]]]:
        """``run``, keeping only checks on nodes whose meta has every ``?node-meta`` pair
        (``ServiceChecksByNodeMeta`` / ``ChecksInStateByNodeMeta``)."""
        pairs = node_meta_pairs(request.query.get("node-meta", []))
        if not pairs:
            return run
        catalog = self.api.state.catalog

        def filtered() -> QueryResult[list[HealthCheck]]:
            result = run()
            kept = []
            for check in result.value:
                node = catalog.node_named(check.node)
                if node is not None and satisfies_meta(node.meta, pairs):
                    kept.append(check)
            return replace(result, value=kept)

        return filtered

    # ----- catalog ----------------------------------------------------------------------

    def catalog_services(self, request: Request) -> Response | Deferred:
        """``GET /v1/catalog/services``: ``{name: [tags]}``."""
        options = self.api.parse(request)
        found = self._filter(request, options, SERVICE_NODE)
        pairs = node_meta_pairs(request.query.get("node-meta", []))
        catalog = self.api.state.catalog
        if found is None and not pairs:
            return self._read(request, options, catalog.services_tags, lambda v: v)

        def run() -> QueryResult[list[Any]]:
            listing = catalog.services_tags()
            instances = [p for name in listing.value for p in catalog.service_instances(name).value]
            return replace(listing, value=instances)  # type: ignore[arg-type]

        def shape(instances: list[Any]) -> dict[str, list[str]]:
            nodes = [
                render.service_node(n, s) for n, s in instances if satisfies_meta(n.meta, pairs)
            ]
            if found is not None:
                nodes = found.items(nodes)
            out: dict[str, list[str]] = {}
            for entry in nodes:
                tags = out.setdefault(entry["ServiceName"], [])
                tags.extend(t for t in entry["ServiceTags"] if t not in tags)
            return dict(sorted(out.items()))

        return self._read(request, options, run, shape)

    def catalog_service(self, request: Request) -> Response | Deferred:
        """``GET /v1/catalog/service/<name>`` with ``?tag``."""
        options = self.api.parse(request)
        name = self._name(request, "/v1/catalog/service/", "Missing service name")
        tags = request.query.get("tag", [])
        found = self._filter(request, options, SERVICE_NODE)
        meta_filters = node_meta_pairs(request.query.get("node-meta", []))
        catalog = self.api.state.catalog

        def shape(pairs: list[Any]) -> list[dict[str, Any]]:
            out = [
                render.service_node(n, s)
                for n, s in pairs
                if (not tags or all(t in s.tags for t in tags))
                and satisfies_meta(n.meta, meta_filters)
            ]
            return found.items(out) if found is not None else out

        return self._read(request, options, lambda: catalog.service_instances(name), shape)

    def catalog_nodes(self, request: Request) -> Response | Deferred:
        """``GET /v1/catalog/nodes``."""
        options = self.api.parse(request)
        found = self._filter(request, options, NODE)
        meta_filters = node_meta_pairs(request.query.get("node-meta", []))

        def shape(nodes: list[Any]) -> list[dict[str, Any]]:
            out = [render.node(n) for n in nodes if satisfies_meta(n.meta, meta_filters)]
            return found.items(out) if found is not None else out

        return self._read(request, options, self.api.state.catalog.nodes, shape)

    def catalog_node(self, request: Request) -> Response | Deferred:
        """``GET /v1/catalog/node/<node>``: ``{"Node", "Services"}`` or ``null``."""
        options = self.api.parse(request)
        name = self._name(request, "/v1/catalog/node/", "Missing node name")
        flt = self._filter(request, options, NODE_SERVICE)
        catalog = self.api.state.catalog

        def shape(found: Any) -> Any:
            if found is None:
                return None
            node, services = found
            rendered = {s.id: render.node_service(s) for s in services}
            return {
                "Node": render.node(node),
                "Services": flt.values(rendered) if flt is not None else rendered,
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


def _checks_json(found: Filter | None) -> Callable[[list[Any]], list[dict[str, Any]]]:
    """Render checks, then apply the read's filter (if any) to them."""

    def shape(checks: list[Any]) -> list[dict[str, Any]]:
        out = [render.health_check(c) for c in checks]
        return found.items(out) if found is not None else out

    return shape
