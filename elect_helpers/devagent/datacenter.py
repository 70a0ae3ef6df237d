"""The server's side of a dev datacenter: client agents join it, sync to it, and are probed.

The embedded agent stays the datacenter's single server (no Raft, no second server: a dev
datacenter).  Client agents (:mod:`.client`) reach it over its HTTP port on paths outside
``/v1`` (Consul's agents use the server RPC port 8300 instead; these paths are internal and
not part of Consul's API):

* ``GET /_devagent/server`` - answered by every agent: where the datacenter's server is;
* ``PUT /_devagent/sync`` - a client's join and anti-entropy push: its node, services and
  checks, which replace what the catalog holds for its node (serfHealth excepted);
* ``PUT /_devagent/leave`` - a graceful leave.

The server probes each client's gossip port (:mod:`.pingwire`) and runs the failure detector
of :mod:`.gossip`; each member change is reconciled into the catalog as Consul's leader does
(``agent/consul/leader.go``): ``handleAliveMember`` registers the node with a passing
``serfHealth``, ``handleFailedMember`` sets it critical with "Agent not live or unreachable"
(which invalidates the sessions bound to it in that same transaction), ``handleLeftMember``
deregisters the node (which invalidates every session on it).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from typing import Any

from .api_agent import serf_member, server_serf_tags
from .catalog import (
    CRITICAL,
    PASSING,
    SERF_ALIVE_OUTPUT,
    SERF_CHECK_ID,
    SERF_CHECK_NAME,
    HealthCheck,
    Node,
    Service,
)
from .errors import Failure, InvalidInput, go_quote
from .filters import filter_members
from .gossip import Change, GossipConfig, Member, MemberTable, Status
from .httpcore import JSON_TYPE, Request, Response, Router
from .pingwire import Pinger
from .state import CONSUL_VERSION, SERF_LAN_PORT, DevState

log = logging.getLogger("elect_helpers.devagent")

SERF_FAILED_OUTPUT = "Agent not live or unreachable"
SERVER_PATH = "/_devagent/server"
SYNC_PATH = "/_devagent/sync"
LEAVE_PATH = "/_devagent/leave"
FORCE_LEAVE_PATH = "/v1/agent/force-leave/"


class NameConflict(Failure):
    """Another live agent already holds this node name (``ensureNoNodeWithSimilarNameTxn``)."""


def client_tags(datacenter: str, node_id: str) -> dict[str, str]:
    """The serf tags a Consul client agent gossips."""
    return {
        "build": f"{CONSUL_VERSION}:embedded",
        "dc": datacenter,
        "id": node_id,
        "role": "node",
        "segment": "",
        "vsn": "2",
        "vsn_max": "3",
        "vsn_min": "2",
    }


def server_tags(datacenter: str, node_id: str) -> dict[str, str]:
    """The serf tags of the dev server (the same set ``/v1/agent/self`` shows)."""
    return server_serf_tags(datacenter, node_id)


def member_json(member: Member, datacenter: str) -> dict[str, Any]:
    """One entry of ``/v1/agent/members`` (a suspect member is still reported alive)."""
    tags = (server_tags if member.server else client_tags)(datacenter, member.node_id)
    entry = serf_member(member.name, tags)
    entry["Addr"] = member.address
    entry["Port"] = member.serf_port
    entry["Status"] = member.status.value
    return entry


def node_from_json(data: dict[str, Any]) -> Node:
    """A node record from a sync request (the client's ``syncNodeInfo``)."""
    return Node(
        id=str(data["ID"]),
        name=str(data["Node"]),
        address=str(data.get("Address", "127.0.0.1")),
        datacenter=str(data.get("Datacenter", "")),
        tagged_addresses=dict(data.get("TaggedAddresses") or {}),
        meta=dict(data.get("Meta") or {}),
    )


def record_json(record: Service | HealthCheck) -> dict[str, Any]:
    """A service or check as the sync wire carries it."""
    return dataclasses.asdict(record)


class Datacenter:
    """Members, their probes, and the leader's reconciliation of them into the catalog."""

    def __init__(self, state: DevState, config: GossipConfig, http_address: str) -> None:
        self.state = state
        self.config = config
        self.http_address = http_address
        self.table = MemberTable(config)
        self._stop = threading.Event()
        self._probers: dict[str, threading.Thread] = {}
        self._seq = 0
        self.table.join(
            Member(
                name=state.node_name,
                node_id=state.node_id,
                address="127.0.0.1",
                serf_port=SERF_LAN_PORT,
                http_address=http_address,
                server=True,
            )
        )

    # ----- routes ------------------------------------------------------------------------

    def add_routes(self, router: Router) -> None:
        """The internal paths, and ``/v1/agent/members`` listing every member."""
        router.add(SERVER_PATH, ("GET",), self.handle_server)
        router.add(SYNC_PATH, ("PUT",), self.handle_sync)
        router.add(LEAVE_PATH, ("PUT",), self.handle_leave)
        router.add("/v1/agent/members", ("GET",), self.handle_members)
        router.add(FORCE_LEAVE_PATH, ("PUT",), self.handle_force_leave)

    def handle_server(self, request: Request) -> Response:
        """Where the server is: any agent answers this, so a client can join through any."""
        return _json({"Server": self.http_address, "IsServer": True, "Datacenter": self.dc})

    def handle_members(self, request: Request) -> Response:
        """``GET /v1/agent/members``: the server and every client, with their status."""
        members = filter_members(request.get("filter"), self.members_json())
        body = json.dumps(members, indent=4).encode()
        return Response(200, body, {"Content-Type": JSON_TYPE})

    def handle_sync(self, request: Request) -> Response:
        """A client's join or anti-entropy push; answers the member list."""
        data = _body(request)
        try:
            node = node_from_json(data["Node"])
            services = [Service(**s) for s in data.get("Services", [])]
            checks = [HealthCheck(**c) for c in data.get("Checks", [])]
            host, port = data["Serf"]
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInput(f"bad sync request: {error}") from None
        try:
            self.sync(node, services, checks, (str(host), int(port)), str(data.get("HTTP", "")))
        except NameConflict as conflict:
            return Response(409, conflict.message.encode(), {"Content-Type": "text/plain"})
        return _json({"Members": self.members_json(), "Version": self.table.version})

    def handle_leave(self, request: Request) -> Response:
        """A client leaves gracefully: its node is deregistered at once."""
        data = _body(request)
        name, node_id = str(data.get("Node", "")), str(data.get("ID", ""))
        member = self.table.get(name)
        if member is not None and member.node_id == node_id and not member.server:
            self.reconcile(self.table.leave(name))
        return _json({})

    def handle_force_leave(self, request: Request) -> Response:
        """``PUT /v1/agent/force-leave/<node>[?prune]``: a failed member is moved to left and
        its node deregistered (serf ``RemoveFailedNodePrune`` and ``handleLeftMember``)."""
        name = request.path[len(FORCE_LEAVE_PATH) :]
        log.info("Force leaving node: %s", name)
        self.reconcile(self.table.force_leave(name, prune=request.has("prune")))
        return Response(200)

    # ----- membership ---------------------------------------------------------------------

    @property
    def dc(self) -> str:
        """The datacenter's name."""
        return self.state.datacenter

    def members_json(self) -> list[dict[str, Any]]:
        """Every member as ``/v1/agent/members`` shows it."""
        return [member_json(m, self.dc) for m in self.table.snapshot()]

    def sync(
        self,
        node: Node,
        services: list[Service],
        checks: list[HealthCheck],
        serf: tuple[str, int],
        http_address: str,
    ) -> None:
        """Join (or refresh) a client and make the catalog hold exactly its services and checks."""
        state = self.state
        node.datacenter = self.dc
        with state.store.write() as txn:
            self._refuse_name_conflict(node)
            existing = self.table.get(node.name)
            changes = self.table.join(
                Member(
                    name=node.name,
                    node_id=node.id,
                    address=serf[0],
                    serf_port=serf[1],
                    http_address=http_address,
                )
            )
            if existing is not None and existing.node_id != node.id:
                log.info("node %r taken over by a new agent (ID %s)", node.name, node.id)
            catalog = state.catalog
            catalog.register_node(txn, node)
            if changes or catalog.check(node.name, SERF_CHECK_ID) is None:
                log.info("member joined, marking health alive: %s", node.name)
                catalog.ensure_check(txn, _serf_check(node.name, PASSING))
            keep_services = {s.id for s in services}
            for service in catalog.services_of(node.name):
                if service.id not in keep_services:
                    catalog.delete_service(txn, node.name, service.id)
            for service in services:
                catalog.ensure_service(txn, node.name, service)
            keep_checks = {c.check_id for c in checks} | {SERF_CHECK_ID}
            for check in catalog.checks_of(node.name):
                if check.check_id not in keep_checks:
                    catalog.delete_check(txn, node.name, check.check_id)
            for check in checks:
                check.node = node.name
                catalog.ensure_check(txn, check)
        self._start_prober(node.name)

    def _refuse_name_conflict(self, node: Node) -> None:
        """Consul's catalog refuses a node name held by a live node with another ID."""
        existing = self.state.catalog.node_named(node.name)
        if existing is None or existing.id == node.id:
            return
        serf = self.state.catalog.check(existing.name, SERF_CHECK_ID)
        if serf is not None and serf.status == CRITICAL:
            return
        raise NameConflict(
            f"failed inserting node: Error while renaming Node ID: {go_quote(node.id)}: "
            f"Node name {node.name} is reserved by node {existing.id} with name "
            f"{existing.name} ({existing.address})"
        )

    def reconcile(self, changes: list[Change]) -> None:
        """Apply member changes to the catalog as the leader's ``reconcileMember`` does."""
        for change in changes:
            name = change.member.name
            if change.member.server:
                continue
            with self.state.store.write() as txn:
                catalog = self.state.catalog
                node = catalog.node_named(name)
                serf = catalog.check(name, SERF_CHECK_ID)
                if change.status is Status.ALIVE:
                    if node is not None and (serf is None or serf.status != PASSING):
                        log.info("member joined, marking health alive: %s", name)
                        catalog.ensure_check(txn, _serf_check(name, PASSING))
                elif change.status is Status.FAILED:
                    if node is not None and (serf is None or serf.status != CRITICAL):
                        log.info("member failed, marking health critical: %s", name)
                        catalog.ensure_check(txn, _serf_check(name, CRITICAL))
                elif change.status is Status.LEFT and node is not None:
                    log.info("deregistering member: %s (reason: left)", name)
                    catalog.deregister_node(txn, name)

    # ----- probing -------------------------------------------------------------------------

    def _start_prober(self, name: str) -> None:
        key = name.lower()
        thread = self._probers.get(key)
        if thread is not None and thread.is_alive():
            return
        thread = threading.Thread(
            target=self._probe_loop, args=(name,), name=f"probe {name}", daemon=True
        )
        self._probers[key] = thread
        thread.start()

    def _probe_loop(self, name: str) -> None:
        interval_s = self.config.probe_interval_ns / 1e9
        timeout_s = self.config.probe_timeout_ns / 1e9
        pinger: Pinger | None = None
        try:
            while not self._stop.is_set():
                member = self.table.get(name)
                if member is None or member.status is Status.LEFT:
                    return
                start = time.monotonic()
                address = (member.address, member.serf_port)
                if pinger is None or pinger.address != address:
                    if pinger is not None:
                        pinger.close()
                    pinger = Pinger(address)
                acked = self._probe_round(pinger, member.node_id, start, interval_s, timeout_s)
                now_ns = time.monotonic_ns()
                if acked:
                    self.reconcile(self.table.acked(name, member.node_id, now_ns))
                else:
                    self.reconcile(self.table.unanswered(name, now_ns))
                self._wait_for_next_round(name, start + interval_s)
        finally:
            if pinger is not None:
                pinger.close()

    def _probe_round(
        self, pinger: Pinger, node_id: str, start: float, interval_s: float, timeout_s: float
    ) -> bool:
        """A direct ping, then (standing in for indirect pings and the TCP fallback) retries
        until the interval ends; False only once the whole interval passed without an ack."""
        deadline = start + interval_s
        wait = timeout_s
        while not self._stop.is_set():
            self._seq += 1
            payload = {"Ping": self._seq, "From": self.state.node_name,
                       "Version": self.table.version}  # fmt: skip
            ack = pinger.ping(payload, min(wait, max(deadline - time.monotonic(), 0.001)))
            if ack is not None and ack.get("ID") == node_id and ack.get("Ack") == payload["Ping"]:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._stop.wait(min(remaining, timeout_s / 5))
            if deadline - time.monotonic() <= 0:
                return False
            wait = deadline - time.monotonic()
        return True

    def _wait_for_next_round(self, name: str, next_round: float) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_round:
                return
            deadline_ns = self.table.deadline_ns(name)
            wake = next_round
            if deadline_ns is not None:
                wake = min(wake, deadline_ns / 1e9)
            self._stop.wait(max(wake - now, 0.0))
            if deadline_ns is not None and time.monotonic_ns() >= deadline_ns:
                self.reconcile(self.table.tick(name, time.monotonic_ns()))

    def close(self) -> None:
        """Stop probing."""
        self._stop.set()


def _serf_check(node: str, status: str) -> HealthCheck:
    return HealthCheck(
        node=node,
        check_id=SERF_CHECK_ID,
        name=SERF_CHECK_NAME,
        status=status,
        output=SERF_ALIVE_OUTPUT if status == PASSING else SERF_FAILED_OUTPUT,
    )


def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(request.body() or b"{}")
    except ValueError as error:
        raise InvalidInput(f"bad request body: {error}") from None
    if not isinstance(data, dict):
        raise InvalidInput("bad request body: not a JSON object")
    return data


def _json(obj: Any) -> Response:
    return Response(200, json.dumps(obj).encode(), {"Content-Type": JSON_TYPE})
