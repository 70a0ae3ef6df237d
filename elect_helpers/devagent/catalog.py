"""The catalog: the datacenter's nodes, their services and health checks.

Follows ``agent/consul/state/catalog.go``: services and checks belong to a node and are keyed
by (node, ID) with the node compared case-insensitively, as Consul's indexes lower-case it.
Storing a check with status ``critical`` or deleting a check (directly, with its service or with
its node) invalidates the sessions bound to it, in the same transaction; deleting a node also
invalidates every session on it (``deleteNodeTxn``).  The session side of that is supplied by
:attr:`Catalog.on_check_lost` and :attr:`Catalog.on_node_lost`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .store import QueryResult, Store, Topic, WriteTxn

NODES = "nodes"
SERVICES = "services"
CHECKS = "checks"
SERVICE_EXTINCTION = "service_last_extinction"
NODE_EXTINCTION = "node_last_extinction"
MIN_UUID_LOOKUP_LEN = 2


def service_entry(name: str) -> str:
    """The ``service.<name>`` index entry (``serviceIndexName``; the index table's keys
    are matched ignoring case)."""
    return f"service.{name}".lower()


def node_entry(name: str) -> str:
    """The ``node.<name>`` index entry (``nodeIndexName``)."""
    return f"node.{name}".lower()


PASSING = "passing"
WARNING = "warning"
CRITICAL = "critical"
STATUSES = (PASSING, WARNING, CRITICAL)

SERF_CHECK_ID = "serfHealth"
SERF_CHECK_NAME = "Serf Health Status"
SERF_ALIVE_OUTPUT = "Agent alive and reachable"
CONSUL_SERVICE = "consul"


@dataclass
class Node:
    """A catalog node (``structs.Node``); ``None`` maps are encoded as ``null``, as Go encodes
    the nil map of a node registered through ``/v1/catalog/register`` without them."""

    id: str
    name: str
    address: str
    datacenter: str
    tagged_addresses: dict[str, str] | None = field(default_factory=dict)
    meta: dict[str, str] | None = field(default_factory=dict)
    create_index: int = 0
    modify_index: int = 0


@dataclass
class Service:
    """A service instance on the node (``structs.NodeService``)."""

    id: str
    service: str
    tags: list[str] = field(default_factory=list)
    address: str = ""
    tagged_addresses: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    port: int = 0
    socket_path: str = ""
    kind: str = ""
    weights: dict[str, int] = field(default_factory=lambda: {"Passing": 1, "Warning": 1})
    enable_tag_override: bool = False
    proxy: dict[str, Any] = field(default_factory=dict)
    connect: dict[str, Any] = field(default_factory=dict)
    locality: dict[str, str] | None = None
    create_index: int = 0
    modify_index: int = 0

    def same(self, other: Service) -> bool:
        """Equal apart from the raft indexes."""
        return replace(self, create_index=0, modify_index=0) == replace(
            other, create_index=0, modify_index=0
        )


@dataclass
class HealthCheck:
    """A health check (``structs.HealthCheck``)."""

    node: str
    check_id: str
    name: str
    status: str = CRITICAL
    notes: str = ""
    output: str = ""
    service_id: str = ""
    service_name: str = ""
    service_tags: list[str] = field(default_factory=list)
    type: str = ""
    interval: str = ""
    timeout: str = ""
    exposed_port: int = 0
    definition: dict[str, Any] = field(default_factory=dict)
    create_index: int = 0
    modify_index: int = 0

    def same(self, other: HealthCheck) -> bool:
        """Equal apart from the raft indexes (``HealthCheck.IsSame``)."""
        return replace(self, create_index=0, modify_index=0) == replace(
            other, create_index=0, modify_index=0
        )


def _key(node: str, item_id: str) -> tuple[str, str]:
    """The (node, ID) key of a service or check; the node is compared ignoring case."""
    return (node.lower(), item_id)


class Catalog:
    """The datacenter's catalog: nodes, services and checks with their table indexes."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._nodes: dict[str, Node] = {}
        self._services: dict[tuple[str, str], Service] = {}
        self._checks: dict[tuple[str, str], HealthCheck] = {}
        self.on_check_lost: Callable[[WriteTxn, str, str], None] = lambda txn, node, check: None
        self.on_node_lost: Callable[[WriteTxn, str], None] = lambda txn, node: None

    # ----- reads (under the store lock) -----------------------------------------------

    def node_named(self, name: str) -> Node | None:
        """The node called ``name`` (case-insensitive), or None."""
        return self._nodes.get(name.lower())

    def check(self, node: str, check_id: str) -> HealthCheck | None:
        """The check ``check_id`` of ``node`` (an exact ID match first, then ignoring case, as
        Consul's check index lower-cases IDs), or None."""
        found = self._checks.get(_key(node, check_id))
        if found is None:
            wanted = _key(node, check_id.lower())
            found = next(
                (c for (n, cid), c in self._checks.items() if (n, cid.lower()) == wanted), None
            )
        return found

    def nodes(self) -> QueryResult[list[Node]]:
        """All nodes; the index is the ``nodes`` entry (``Store.Nodes``)."""
        value = [replace(n) for _, n in sorted(self._nodes.items())]
        return QueryResult(self._store.table_index(NODES), value, (Topic(NODES),))

    def _find_node(self, name_or_id: str) -> Node | None:
        """``nodeServices``' lookup: by name, else by a unique node-ID prefix (cut to an even
        length) once the text has at least 2 characters."""
        node = self.node_named(name_or_id)
        if node is not None or len(name_or_id) < MIN_UUID_LOOKUP_LEN:
            return node
        prefix = name_or_id[: len(name_or_id) - len(name_or_id) % 2].lower()
        matches = [n for n in self._nodes.values() if n.id.lower().startswith(prefix)]
        return matches[0] if len(matches) == 1 else None

    def node_services(self, name: str) -> QueryResult[tuple[Node, list[Service]] | None]:
        """A node (by name or ID prefix) and its services, or None for an unknown node.

        The index is the node's own ``node.<name>`` entry; for an unknown node it is
        ``node_last_extinction`` (0 for a name shorter than 2 characters), as in
        ``Store.nodeServices``."""
        topics = (Topic(NODES), Topic(SERVICES))
        node = self._find_node(name)
        if node is None:
            index = self._store.table_index(NODE_EXTINCTION) if len(name) >= 2 else 0
            return QueryResult(index, None, topics)
        index = self._store.table_index(node_entry(node.name))
        return QueryResult(index, (replace(node), self.services_of(node.name)), topics)

    def services_tags(self) -> QueryResult[dict[str, list[str]]]:
        """``{service name: de-duplicated tags}`` over every instance; the index is the
        ``services`` entry (``Store.Services``)."""
        out: dict[str, list[str]] = {}
        for service in self._services.values():
            tags = out.setdefault(service.service, [])
            tags.extend(t for t in service.tags if t not in tags)
        index = self._store.table_index(SERVICES)
        return QueryResult(index, dict(sorted(out.items())), (Topic(SERVICES),))

    def service_index(self, name: str, with_checks: bool) -> int:
        """``maxIndexForService``: ``service_last_extinction`` when no instance of ``name``
        exists (and that entry does), else the ``service.<name>`` entry, else the max of
        ``nodes`` and ``services`` (and ``checks`` for health reads)."""
        exists = any(s.service == name for s in self._services.values())
        if not exists:
            extinct = self._store.index_entry(SERVICE_EXTINCTION)
            if extinct is not None:
                return extinct
        own = self._store.index_entry(service_entry(name))
        if own is not None:
            return own
        tables = (NODES, SERVICES, CHECKS) if with_checks else (NODES, SERVICES)
        return self._store.table_index(*tables)

    def service_instances(self, name: str) -> QueryResult[list[tuple[Node, Service]]]:
        """Every (node, instance) of the service called ``name`` (``Store.ServiceNodes``)."""
        pairs = [
            (replace(self._nodes[n]), replace(s))
            for (n, _), s in sorted(self._services.items())
            if s.service == name
        ]
        index = self.service_index(name, with_checks=False)
        return QueryResult(index, pairs, (Topic(NODES), Topic(SERVICES)))

    def service_health(
        self, name: str
    ) -> QueryResult[list[tuple[Node, Service, list[HealthCheck]]]]:
        """Every instance of ``name`` with its node's checks and its own checks
        (``checkServiceNodesTxn``)."""
        out = []
        for (node_key, _), service in sorted(self._services.items()):
            if service.service != name:
                continue
            on_node = [c for c in self._sorted_checks() if c.node.lower() == node_key]
            checks = [replace(c) for c in on_node if c.service_id == ""]
            checks += [replace(c) for c in on_node if c.service_id == service.id]
            out.append((replace(self._nodes[node_key]), replace(service), checks))
        index = self.service_index(name, with_checks=True)
        return QueryResult(index, out, (Topic(NODES), Topic(SERVICES), Topic(CHECKS)))

    def service_checks(self, name: str) -> QueryResult[list[HealthCheck]]:
        """The checks of every instance of the service called ``name``; the index is the
        ``checks`` entry (``Store.ServiceChecks``)."""
        value = [replace(c) for c in self._sorted_checks() if c.service_name == name and name]
        index = self._store.table_index(CHECKS)
        return QueryResult(index, value, (Topic(CHECKS),))

    def node_checks(self, name: str) -> QueryResult[list[HealthCheck]]:
        """All checks of the node called ``name`` (``[]`` for an unknown node); the index is
        the ``checks`` entry (``Store.NodeChecks``)."""
        value = [replace(c) for c in self._sorted_checks() if c.node.lower() == name.lower()]
        index = self._store.table_index(CHECKS)
        return QueryResult(index, value, (Topic(CHECKS),))

    def checks_in_state(self, state: str) -> QueryResult[list[HealthCheck]]:
        """All checks for ``any``; otherwise those whose status is ``state`` ignoring case
        (Consul's status index lower-cases both sides; ``any`` itself is matched exactly).
        The index is the ``checks`` entry (``checksInStateTxn``)."""
        wanted = state.lower()
        value = [replace(c) for c in self._sorted_checks() if state == "any" or c.status == wanted]
        index = self._store.table_index(CHECKS)
        return QueryResult(index, value, (Topic(CHECKS),))

    def _sorted_checks(self) -> list[HealthCheck]:
        return [c for _, c in sorted(self._checks.items())]

    def all_nodes(self) -> list[Node]:
        """Copies of every node, by name."""
        return [replace(n) for _, n in sorted(self._nodes.items())]

    def node_with_id(self, node_id: str) -> Node | None:
        """The node whose ID is ``node_id`` (ignoring case, as Consul's UUID index), or None."""
        wanted = node_id.lower()
        return next((n for n in self._nodes.values() if n.id.lower() == wanted), None)

    def service_on(self, node: str, service_id: str) -> Service | None:
        """The instance ``service_id`` on ``node``, or None."""
        return self._services.get(_key(node, service_id))

    def services_of(self, node: str) -> list[Service]:
        """Copies of the services on ``node``, by ID."""
        return [replace(s) for (n, _), s in sorted(self._services.items()) if n == node.lower()]

    def checks_of(self, node: str) -> list[HealthCheck]:
        """Copies of the checks on ``node``, by ID."""
        return [replace(c) for (n, _), c in sorted(self._checks.items()) if n == node.lower()]

    # ----- writes ---------------------------------------------------------------------
    #
    # Each write moves exactly the index entries Consul's state store moves
    # (agent/consul/state/catalog.go, catalog_ce.go): table entries with ``txn.touch`` (which
    # also wakes blocking queries), the finer ``service.<name>`` / ``node.<name>`` /
    # extinction entries with ``txn.bump`` / ``txn.drop``.

    def _bump_services_of_node(self, txn: WriteTxn, node: str) -> None:
        """``updateAllServiceIndexesOfNode``: node data is part of every health answer."""
        txn.bump(*(service_entry(s.service) for s in self.services_of(node)))

    def register_node(self, txn: WriteTxn, node: Node) -> None:
        """``ensureNodeTxn``: store a node; an unchanged node keeps its indexes and moves
        nothing.  A change moves ``nodes``, ``node.<name>`` and the node's services' entries."""
        existing = self._nodes.get(node.name.lower())
        if existing is not None and replace(existing, create_index=0, modify_index=0) == replace(
            node, create_index=0, modify_index=0
        ):
            return
        node.create_index = existing.create_index if existing else txn.index
        node.modify_index = txn.index
        self._nodes[node.name.lower()] = node
        txn.touch(NODES, node.name)
        txn.bump(node_entry(node.name))
        self._bump_services_of_node(txn, node.name)

    def deregister_node(self, txn: WriteTxn, name: str) -> bool:
        """``deleteNodeTxn``: drop the node's services and checks (invalidating sessions bound
        to them), the node, and every session on the node.  False for an unknown node."""
        node = self._nodes.get(name.lower())
        if node is None:
            return False
        self._bump_services_of_node(txn, name)
        for service in self.services_of(name):
            self.delete_service(txn, name, service.id)
        for check in self.checks_of(name):
            self.delete_check(txn, name, check.check_id)
        del self._nodes[name.lower()]
        txn.touch(NODES, node.name)
        txn.drop(node_entry(node.name))
        txn.bump(NODE_EXTINCTION)
        self.on_node_lost(txn, node.name)
        return True

    def ensure_service(self, txn: WriteTxn, node: str, service: Service) -> None:
        """``ensureServiceTxn``: insert or update a service instance on ``node``; an unchanged
        one keeps its indexes.  A change moves ``services``, ``service.<name>``, ``nodes`` and
        ``node.<node>`` (``catalogInsertService``)."""
        key = _key(node, service.id)
        existing = self._services.get(key)
        if existing is not None and existing.same(service):
            return
        service.create_index = existing.create_index if existing else txn.index
        service.modify_index = txn.index
        self._services[key] = service
        txn.touch(SERVICES, service.id)
        txn.touch(NODES, node)
        txn.bump(service_entry(service.service), node_entry(node))

    def delete_service(self, txn: WriteTxn, node: str, service_id: str) -> None:
        """``deleteServiceTxn``: remove a service instance of ``node`` and its checks
        (invalidating sessions bound to them).  The last instance of a name takes its
        ``service.<name>`` entry with it and moves ``service_last_extinction``."""
        service = self._services.get(_key(node, service_id))
        if service is None:
            return
        for check in [c for c in self.checks_of(node) if c.service_id == service_id]:
            self.delete_check(txn, node, check.check_id)
        txn.touch(CHECKS, None)
        del self._services[_key(node, service_id)]
        txn.touch(SERVICES, service_id)
        txn.touch(NODES, node)
        txn.bump(node_entry(node))
        if any(s.service == service.service for s in self._services.values()):
            txn.bump(service_entry(service.service))
        else:
            txn.drop(service_entry(service.service))
            txn.bump(SERVICE_EXTINCTION)

    def ensure_check(self, txn: WriteTxn, check: HealthCheck) -> None:
        """``ensureCheckTxn``: store the check; if it is critical, bound sessions are destroyed
        (even when nothing else changed).  A change moves ``checks`` and the entry of the
        check's service, or of every service on the node for a node check."""
        key = _key(check.node, check.check_id)
        existing = self._checks.get(key)
        if existing is not None and existing.same(check):
            check.create_index, check.modify_index = existing.create_index, existing.modify_index
        else:
            check.create_index = existing.create_index if existing else txn.index
            check.modify_index = txn.index
            self._checks[key] = check
            txn.touch(CHECKS, check.check_id)
            if check.service_id:
                owner = self._services.get(_key(check.node, check.service_id))
                if owner is not None:
                    txn.bump(service_entry(owner.service))
            else:
                self._bump_services_of_node(txn, check.node)
        if check.status == CRITICAL:
            self.on_check_lost(txn, check.node, check.check_id)

    def delete_check(self, txn: WriteTxn, node: str, check_id: str) -> None:
        """``deleteCheckTxn``: remove ``node``'s check and destroy sessions bound to it.  It
        moves ``checks`` and its service's entry, or for a node check every service entry of
        the node and ``services``."""
        check = self._checks.pop(_key(node, check_id), None)
        if check is None:
            return
        if check.service_id:
            owner = self._services.get(_key(node, check.service_id))
            txn.bump(service_entry(owner.service if owner else check.service_name))
        else:
            self._bump_services_of_node(txn, node)
            txn.touch(SERVICES, None)
        txn.touch(CHECKS, check_id)
        self.on_check_lost(txn, check.node, check_id)
