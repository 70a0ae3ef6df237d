"""``ClientAgent``: a client agent that joins a running dev agent's datacenter.

Like a Consul client agent it serves the whole HTTP API on its own port, but owns only its
local state: the services and checks registered through it (it runs their checks itself) and
its view of the members.  Everything else - KV, sessions, catalog, health, status - belongs to
the datacenter and is forwarded to the server, as a Consul client forwards those RPCs;
``PUT /v1/session/create`` gets the client's node as its default ``Node`` first, as
``SessionCreate`` sets it before decoding the body.

Local changes reach the catalog as Consul's anti-entropy does: a change made over HTTP is
pushed before the response (the HTTP handlers' ``syncChanges``), a change made by a check
runner is pushed right after by a background syncer, and the full state is pushed again every
push/pull interval (and after the server comes back), which also re-joins a client the server
forgot.  The client knows the server is alive from the server's pings; once they have stayed
away longer than the server would take to declare a member failed, it says "No known Consul
servers" for everything it would forward (``structs.ErrNoServers``; before that a forward that
fails is an "rpc error making call"), while its local reads keep working.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

from ..durations import SECOND
from .api_common import ApiContext
from .blocking import Parker
from .catalog import CHECKS, SERF_CHECK_ID, SERVICES
from .datacenter import (
    FORCE_LEAVE_PATH,
    LEAVE_PATH,
    SERVER_PATH,
    SYNC_PATH,
    client_tags,
    record_json,
)
from .filters import filter_members
from .gossip import DEV_GOSSIP, GossipConfig, Status
from .httpcore import JSON_TYPE, PLAIN, HTTPService, Request, Response, Router
from .httpserver import DevHTTPServer
from .pingwire import PingListener
from .routes import build_router
from .state import CONSUL_VERSION, DevState
from .store import Topic

log = logging.getLogger("elect_helpers.devagent")

FORWARD_TIMEOUT_S = 30.0
BLOCKING_FORWARD_TIMEOUT_S = 700.0  # above Consul's 10 min cap plus its 1/16 jitter
SYNC_TIMEOUT_S = 10.0
NO_SERVERS = "No known Consul servers"
FORWARDED_HEADERS = ("content-type", "x-consul-token", "authorization")
DROPPED_RESPONSE_HEADERS = {
    "content-length", "date", "connection", "transfer-encoding", "content-encoding", "vary",
}  # fmt: skip
LOCAL_MUTATIONS = (
    "/v1/agent/service/register",
    "/v1/agent/service/deregister/",
    "/v1/agent/check/register",
    "/v1/agent/check/deregister/",
    "/v1/agent/check/pass/",
    "/v1/agent/check/warn/",
    "/v1/agent/check/fail/",
    "/v1/agent/check/update/",
    "/v1/agent/maintenance",
    "/v1/agent/service/maintenance/",
)


class JoinError(Exception):
    """Joining failed: nothing answers, no dev agent answers, or the server refused us."""


@dataclass(frozen=True)
class ServerLocation:
    """Where a joining client finds the server, and the datacenter it serves."""

    address: str
    datacenter: str


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) as a tuple; ValueError if it is not one."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"not a host:port address: {address!r}")
    return host.strip("[]"), int(port)


def locate_server(join: str, timeout_s: float = 5.0) -> ServerLocation:
    """Ask the agent at ``join`` (server or client) where the datacenter's server is."""
    try:
        split_address(join)
    except ValueError:
        raise JoinError(
            f"-join {join!r} is not an address: give the host:port of a running dev agent's "
            "HTTP API, e.g. 127.0.0.1:8500"
        ) from None
    url = f"http://{join}{SERVER_PATH}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise JoinError(
            f"no dev agent answers at {join}: GET {SERVER_PATH} got HTTP {error.code} (a real "
            "Consul agent, or something else, listens there; -join takes the HTTP address of "
            "an embedded dev agent, server or client)"
        ) from None
    except (OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise JoinError(
            f"nothing answers at {join} ({reason}); start the dev agent first "
            "(python -m elect_helpers.devagent) and pass its HTTP address to -join"
        ) from None
    except ValueError:
        raise JoinError(f"no dev agent answers at {join}: its answer is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("Server"), str):
        raise JoinError(f"no dev agent answers at {join}: unexpected answer {data!r}")
    server = join if data.get("IsServer") else data["Server"]
    return ServerLocation(server, str(data.get("Datacenter", "dc1")))


def with_default_node(body: bytes, node: str) -> bytes:
    """A session-create body with ``Node`` defaulting to ``node`` (an absent or null field).

    Bodies that are not a JSON object are left alone: the server answers them with the same
    decode error it would give the client agent.
    """
    if not body.strip():
        return json.dumps({"Node": node}).encode()
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict):
        return body
    keys = [k for k in data if k.lower() == "node"]
    if not keys:
        data["Node"] = node
    elif all(data[k] is None for k in keys):
        for k in keys:
            del data[k]
        data["Node"] = node
    else:
        return body
    return json.dumps(data).encode()


class ServerView:
    """The client's belief about the server: alive while its pings keep coming."""

    def __init__(self, config: GossipConfig) -> None:
        self._config = config
        self._last_ping = time.monotonic()
        self.version = -1
        self.members: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def pinged(self, version: int) -> bool:
        """Record a ping; True if the member list changed since we last fetched it."""
        with self._lock:
            self._last_ping = time.monotonic()
            return version != self.version

    def alive(self) -> bool:
        """Whether the server pinged us within the time it takes to declare a member failed."""
        silence_ns = (time.monotonic() - self._last_ping) * 1e9
        _, latest = self._config.detection_bounds_ns(max(2, len(self.members)))
        return silence_ns <= latest

    def update(self, members: list[dict[str, Any]], version: int) -> None:
        """Store the member list the server answered a sync with."""
        with self._lock:
            self.members = members
            self.version = version


class ClientAgent:
    """A client agent process's parts: local state, HTTP API, gossip port, syncer."""

    def __init__(
        self,
        join: str,
        node_name: str,
        port: int = 0,
        host: str = "127.0.0.1",
        serf_port: int = 0,
        gossip: GossipConfig | None = None,
        advertise_serf: str | None = None,
        session_ttl_min_ns: int = 10 * SECOND,
        node_id: str | None = None,
    ) -> None:
        if node_id is not None:
            try:
                node_id = str(uuid.UUID(node_id))
            except ValueError:
                raise ValueError(
                    f"-node-id {node_id!r} is not a UUID (Consul's node IDs are UUIDs, e.g. "
                    f"{uuid.uuid4()})"
                ) from None
        self.node_id = node_id
        self.session_ttl_min_ns = session_ttl_min_ns
        self.join_address = join
        self.advertise_serf = split_address(advertise_serf) if advertise_serf else None
        self.host = host
        self.requested_port = port
        self.requested_serf_port = serf_port
        self.config = gossip or DEV_GOSSIP
        self._node_name = node_name
        self.server: ServerLocation | None = None
        self.state: DevState | None = None
        self.view = ServerView(self.config)
        self._http: DevHTTPServer | None = None
        self._ping: PingListener | None = None
        self._sync_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._watch_armed = False
        self.left = threading.Event()

    # ----- start / stop --------------------------------------------------------------------

    @property
    def node_name(self) -> str:
        """The client's node name."""
        return self._node_name

    @property
    def datacenter(self) -> str:
        """The datacenter it joined."""
        assert self.server is not None
        return self.server.datacenter

    @property
    def port(self) -> int:
        """The HTTP port actually listened on."""
        assert self._http is not None
        return self._http.server_address[1]

    @property
    def address(self) -> str:
        """``host:port`` of the HTTP API."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.address}"

    @property
    def serf_port(self) -> int:
        """The gossip port actually listened on."""
        assert self._ping is not None
        return self._ping.port

    def start(self) -> ClientAgent:
        """Find the server, open the ports, join (raises :class:`JoinError`), start syncing."""
        self.server = locate_server(self.join_address)
        state = DevState(
            node_name=self._node_name,
            datacenter=self.server.datacenter,
            gossip=self.config,
            session_ttl_min_ns=self.session_ttl_min_ns,
            node_id=self.node_id,
        )
        self.state = state
        self._ping = PingListener((self.host, self.requested_serf_port), self._answer_ping)
        service = HTTPService(Router(), {"X-Consul-Default-ACL-Policy": "allow"})
        parker = Parker(state.store)
        try:
            self._http = DevHTTPServer((self.host, self.requested_port), service, parker)
        except OSError:
            self._ping.server_close()
            state.close()
            parker.stop()
            raise
        service.router = self._router(state)
        state.start()
        try:
            self.sync_now(raise_refusal=True)
        except JoinError:
            self._close_ports()
            raise
        self._ping.start()
        threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.5},
                         name="client-http", daemon=True).start()  # fmt: skip
        threading.Thread(target=self._sync_loop, name="anti-entropy", daemon=True).start()
        log.info("client agent %s joined %s (server %s)", self.node_name, self.datacenter,
                 self.server.address)  # fmt: skip
        return self

    def leave(self) -> None:
        """Leave gracefully: the server deregisters our node (and its sessions) at once."""
        assert self.state is not None and self.server is not None
        payload = {"Node": self.node_name, "ID": self.state.node_id}
        with self._sync_lock:
            # No anti-entropy after this point: a sync that reached the server after the leave
            # (a check result, a write through our API) would register the node again, and the
            # server would then declare it failed instead of left.
            self._stop.set()
            self._wake.set()
            try:
                self._put(LEAVE_PATH, payload)
                log.info("left the datacenter gracefully")
            except (OSError, http.client.HTTPException) as error:
                log.error("could not tell the server we leave (%s); it will notice the silence",
                          error)  # fmt: skip
        self.left.set()

    def stop(self) -> None:
        """Stop syncing and serving (without leaving)."""
        self._stop.set()
        self._wake.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.parker.stop()
            self._http.close_connections()
        if self._ping is not None:
            self._ping.stop()
        self._close_ports()

    def _close_ports(self) -> None:
        if self._http is not None:
            self._http.server_close()
        if self._ping is not None:
            self._ping.server_close()
        if self.state is not None:
            self.state.close()

    # ----- gossip ----------------------------------------------------------------------------

    def _answer_ping(self, ping: dict[str, Any]) -> dict[str, Any]:
        assert self.state is not None
        if self.view.pinged(int(ping.get("Version", -1))):
            self._wake.set()
        return {"Ack": ping.get("Ping"), "Node": self.node_name, "ID": self.state.node_id}

    # ----- anti-entropy ---------------------------------------------------------------------

    def _sync_payload(self) -> dict[str, Any]:
        state = self.state
        assert state is not None and self._ping is not None
        with state.store.lock:
            node = state.catalog.node_named(self.node_name)
            services = [s for s in state.catalog.services_of(self.node_name)]
            checks = [
                c for c in state.catalog.checks_of(self.node_name) if c.check_id != SERF_CHECK_ID
            ]
            if not self._watch_armed:
                self._watch_armed = True
                state.store.watch((Topic(SERVICES), Topic(CHECKS)), self._local_change)
        assert node is not None
        return {
            "Node": {
                "ID": state.node_id,
                "Node": self.node_name,
                "Address": node.address,
                "Datacenter": self.datacenter,
                "TaggedAddresses": node.tagged_addresses,
                "Meta": node.meta,
            },
            "Services": [record_json(s) for s in services if s.id != "consul"],
            "Checks": [record_json(c) for c in checks],
            "Serf": list(self.advertise_serf or (self.host, self._ping.port)),
            "HTTP": self.address if self._http is not None else "",
        }

    def _local_change(self) -> None:
        self._watch_armed = False
        self._wake.set()

    def sync_now(self, raise_refusal: bool = False) -> bool:
        """Push the full local state; True on success.  A refusal is logged (or raised)."""
        with self._sync_lock:
            if self._stop.is_set():
                return False  # stopped or left: the server no longer hears from us
            try:
                answer = self._put(SYNC_PATH, self._sync_payload())
            except _Refused as refused:
                message = f"Failed to join {self.join_address}: {refused}"
                if raise_refusal:
                    raise JoinError(message) from None
                log.error("failed to sync remote state: %s", refused)
                return False
            except (OSError, http.client.HTTPException) as error:
                if raise_refusal:
                    raise JoinError(
                        f"Failed to join {self.join_address}: the server at "
                        f"{self.server.address if self.server else '?'} did not answer ({error})"
                    ) from None
                log.warning("failed to sync remote state: %s", error)
                return False
            self.view.update(list(answer.get("Members", [])), int(answer.get("Version", -1)))
            return True

    def _sync_loop(self) -> None:
        interval_s = self.config.push_pull_interval_ns / 1e9
        while not self._stop.is_set():
            self._wake.wait(interval_s)
            self._wake.clear()
            if not self._stop.is_set():
                self.sync_now()

    def _put(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.server is not None
        host, port = split_address(self.server.address)
        connection = http.client.HTTPConnection(host, port, timeout=SYNC_TIMEOUT_S)
        try:
            connection.request(
                "PUT", path, json.dumps(payload).encode(), {"Content-Type": JSON_TYPE}
            )
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status == 409:
            raise _Refused(body.decode(errors="replace"))
        if response.status != 200:
            raise http.client.HTTPException(f"HTTP {response.status}: {body[:200]!r}")
        return json.loads(body or b"{}")

    # ----- HTTP ------------------------------------------------------------------------------

    def _router(self, state: DevState) -> Router:
        router = build_router(ApiContext(state), self.port, self.host)
        for pattern, methods, handler in router.routes():
            if not pattern.startswith("/v1/agent/"):
                router.add(pattern, methods, self._forward)
            elif pattern in LOCAL_MUTATIONS:
                router.add(pattern, methods, self._synced(handler))
        router.add("/v1/session/create", ("PUT",), self._session_create)
        router.add("/v1/agent/members", ("GET",), self._members)
        router.add("/v1/agent/leave", ("PUT",), self._leave)
        router.add(SERVER_PATH, ("GET",), self._where_is_server)
        router.add(FORCE_LEAVE_PATH, ("PUT",), self._forward)
        return router

    def _synced(self, handler: Any) -> Any:
        def handle(request: Request) -> Response:
            response = handler(request)
            self.sync_now()
            return response

        return handle

    def _where_is_server(self, request: Request) -> Response:
        assert self.server is not None
        body = {"Server": self.server.address, "IsServer": False, "Datacenter": self.datacenter}
        return Response(200, json.dumps(body).encode(), {"Content-Type": JSON_TYPE})

    def _members(self, request: Request) -> Response:
        """The client's member view: the server's last list, with what it sees itself."""
        assert self.state is not None
        members = []
        for entry in self.view.members:
            entry = dict(entry)
            if entry.get("Name", "").lower() == self.node_name.lower():
                entry["Status"] = Status.ALIVE.value
            elif entry.get("Tags", {}).get("role") == "consul" and not self.view.alive():
                entry["Status"] = Status.FAILED.value
            members.append(entry)
        if not members:
            members = [
                {
                    "Name": self.node_name,
                    "Addr": self.host,
                    "Port": self.serf_port,
                    "Tags": client_tags(self.datacenter, self.state.node_id),
                    "Status": Status.ALIVE.value,
                }
            ]
        body = json.dumps(filter_members(request.get("filter"), members), indent=4).encode()
        return Response(200, body, {"Content-Type": JSON_TYPE})

    def _leave(self, request: Request) -> Response:
        """``PUT /v1/agent/leave``: leave, answer, then shut down (as ``consul leave``)."""
        self.leave()
        return Response(200)

    def _session_create(self, request: Request) -> Response:
        body = request.body() if request.content_length != 0 else b""
        return self._forward(request, with_default_node(body, self.node_name))

    def _forward(self, request: Request, body: bytes | None = None) -> Response:
        """Send the request to the server and answer what it answers."""
        assert self.server is not None
        if not self.view.alive():
            return Response(500, NO_SERVERS.encode(), {"Content-Type": PLAIN})
        if body is None:
            body = request.body() if request.content_length != 0 else b""
        target = request.raw_path + (f"?{request.raw_query}" if request.raw_query else "")
        headers = {k: v for k, v in request.headers.items() if k in FORWARDED_HEADERS}
        blocking = "index" in request.query
        host, port = split_address(self.server.address)
        timeout = BLOCKING_FORWARD_TIMEOUT_S if blocking else FORWARD_TIMEOUT_S
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            connection.request(request.method, target, body or None, headers)
            answer = connection.getresponse()
            payload = answer.read()
        except (OSError, http.client.HTTPException) as error:
            text = f"rpc error making call: {_go_dial_error(self.server.address, error)}"
            return Response(500, text.encode(), {"Content-Type": PLAIN})
        finally:
            connection.close()
        out = {k: v for k, v in answer.getheaders() if k.lower() not in DROPPED_RESPONSE_HEADERS}
        return Response(answer.status, payload, out)


class _Refused(Exception):
    """The server refused our sync (a node name held by another live agent)."""


def _go_dial_error(address: str, error: BaseException) -> str:
    """A connection failure worded as Go's net package words it."""
    if isinstance(error, ConnectionRefusedError):
        return f"dial tcp {address}: connect: connection refused"
    if isinstance(error, TimeoutError):
        return f"read tcp {address}: i/o timeout"
    return f"{address}: {error}"


def client_banner(agent: ClientAgent) -> str:
    """The start-up banner of a client agent, with the ``HTTP address:`` line tools read."""
    rows = [
        ("Version", f"'{CONSUL_VERSION}' (embedded Python stand-in)"),
        ("Node name", f"'{agent.node_name}'"),
        ("Datacenter", f"'{agent.datacenter}'"),
        ("Server", "false (client agent of the dev datacenter)"),
        ("Joined", agent.server.address if agent.server else ""),
        ("Gossip port", str(agent.serf_port)),
        ("HTTP address", agent.url),
    ]
    lines = ["==> Starting embedded Consul client agent (in memory only)..."]
    lines += [f"{label:>16}: {value}" for label, value in rows]
    lines += ["", "==> Log data will now stream in as it occurs:", ""]
    return "\n".join(lines)
