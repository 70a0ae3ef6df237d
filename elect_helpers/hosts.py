"""Hosts for :class:`~elect_helpers.cluster.Cluster`: one client agent per node.

In a real deployment each host runs its own Consul agent, and a node talks only to its
host's agent.  A *host* here is a client agent of the embedded dev agent's datacenter
(``python -m elect_helpers.devagent -join SERVER -node NAME``) plus the node process, whose
``CONSUL_HTTP_ADDR`` points at that agent.  Sessions the node creates then belong to the
host's Consul node and are bound, by default, to its ``serfHealth`` check, so a host that
dies is noticed the way Consul notices it: the server's failure detector declares the
member failed and marks ``serfHealth`` critical, which invalidates those sessions.

:class:`HostAgents` starts the client agents (through the cluster's
:class:`~elect_helpers.supervisor.Supervisor`, so they die with the controller), and does
what happens to a host: crash (SIGKILL), freeze (SIGSTOP), thaw (SIGCONT), a cut from the
network and its healing, and a graceful leave (SIGTERM: a client agent leaves the
datacenter first, as Consul's ``leave_on_terminate`` does for clients).

The network of a host is two loopback links (:class:`~elect_helpers.netproxy.LinkProxy`):
the agent joins the server through one (its forwarded requests go that way) and advertises
the other as its gossip address (``-advertise-serf-lan``), so the server's probes go that
way.  Cutting both black-holes the host as a real partition would; the node keeps talking
to its own agent, which is on the same host.

Only the embedded dev agent can take client agents from this playground: joining a real
Consul datacenter needs a ``consul`` agent per machine.  :func:`hosts_unavailable_reason`
says why hosts cannot be had from a given agent, and :class:`HostsUnavailable` is the one
error a cluster with hosts raises then.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import consul

from elect_helpers.errors import ClusterError, NodeStartError
from elect_helpers.netproxy import LinkProxy
from elect_helpers.supervisor import ChildProcess, Supervisor

#: Where every dev agent (server or client) says where its datacenter's server is; a real
#: Consul agent answers 404 there.
SERVER_PATH = "/_devagent/server"
PROBE_TIMEOUT = 2.0  # seconds for one request to an agent while starting or probing
READY_POLL = 0.05  # seconds between readiness polls of a starting client agent
SERF_CHECK_ID = "serfHealth"

#: ``/v1/agent/self`` DebugConfig fields of the server's LAN gossip timings (Consul's names).
GOSSIP_FIELDS = {
    "probe_interval": "GossipLANProbeInterval",
    "probe_timeout": "GossipLANProbeTimeout",
    "suspicion_mult": "GossipLANSuspicionMult",
}
_GOSSIP_FLAGS = {
    "probe_interval": "-gossip-lan-probe-interval",
    "probe_timeout": "-gossip-lan-probe-timeout",
    "suspicion_mult": "-gossip-lan-suspicion-mult",
}


class HostsUnavailable(ClusterError):
    """Hosts (client agents) cannot be started against this agent; the message says why."""


def _get_json(url: str) -> tuple[int, object]:
    """``(status, decoded body)`` of a GET; raises OSError when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None
    except ValueError:
        return 200, None


def hosts_unavailable_reason(address: str) -> str | None:
    """None if the agent at ``address`` (host:port) takes client agents, else why not.

    Only the embedded dev agent answers :data:`SERVER_PATH`; a real Consul agent (e.g. a
    single ``consul agent -dev``) answers 404 there, and its datacenter can grow only by
    running ``consul agent -join`` on other machines.
    """
    try:
        status, body = _get_json(f"http://{address}{SERVER_PATH}")
    except OSError as error:
        return f"no agent answers at {address} ({getattr(error, 'reason', error)})"
    if status == 200 and isinstance(body, dict) and isinstance(body.get("Server"), str):
        return None
    return (
        f"the agent at {address} is not the embedded dev agent (it answers {SERVER_PATH} with "
        f"HTTP {status}), so this playground cannot start client agents that join it: a real "
        "Consul datacenter gets one agent per machine with `consul agent -join`. Host "
        "actions (crash, freeze, cut a host) need the embedded agent: unset CONSUL_HTTP_ADDR "
        "and run without a consul binary on PATH, or use Cluster(hosts=False)"
    )


def server_config_flags(address: str) -> list[str]:
    """``-session-ttl-min`` and ``-gossip-lan-*`` flags matching the server's own settings.

    A datacenter is normally given one configuration: the server enforces the session TTL
    minimum and is the dev datacenter's prober, and each client reports the same values
    in its ``/v1/agent/self`` (where the nodes read ``session_ttl_min``) and uses the same
    timings for its view of the server.  Settings the server does not show are left out.
    """
    try:
        status, body = _get_json(f"http://{address}/v1/agent/self")
    except OSError:
        return []
    config = body.get("DebugConfig") if status == 200 and isinstance(body, dict) else None
    if not isinstance(config, dict):
        return []
    flags = []
    ttl_min = config.get("SessionTTLMin")
    if isinstance(ttl_min, str):
        flags += ["-session-ttl-min", ttl_min]
    for name, debug_field in GOSSIP_FIELDS.items():
        value = config.get(debug_field)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            flags += [_GOSSIP_FLAGS[name], str(value)]
    return flags


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class Host:
    """One host's client agent as the controller last saw it.

    ``http_address`` is where its HTTP API listens (the node's ``CONSUL_HTTP_ADDR``); it
    changes on restart.  ``node_id`` is kept across restarts, as a real agent keeps it in
    its data directory, so a host that comes back after a crash is the same Consul node
    and takes its name back at once.  ``serf_port`` (where the agent listens for gossip) and the two
    ``links`` (to the server, and from the server to that port) are kept across restarts.
    """

    name: str
    process: ChildProcess
    serf_port: int
    to_server: LinkProxy
    from_server: LinkProxy
    node_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    http_address: str | None = None

    @property
    def is_cut(self) -> bool:
        """Whether the host is cut off the network."""
        return self.to_server.is_cut

    @property
    def state(self) -> str:
        """``up``, ``cut off``, ``frozen``, ``crashed``, ``left`` or ``exited`` (``new``
        before start)."""
        self.process.refresh()
        if self.process.state in ("running", "paused") and self.is_cut:
            return "cut off" if self.process.state == "running" else "frozen"
        return {
            "running": "up",
            "paused": "frozen",
            "killed": "crashed",
            "stopped": "left",
        }.get(self.process.state, self.process.state)


class HostAgents:
    """The client agents of one cluster's hosts, joined to the server at ``server``.

    ``on_signal(name, detail)`` is called before each signal sent to a host's agent (the
    cluster logs it in that node's timeline).
    """

    def __init__(
        self,
        supervisor: Supervisor,
        server: str,
        log_dir: Path,
        on_signal: Callable[[str, str], None],
        start_timeout: float = 20.0,
    ) -> None:
        reason = hosts_unavailable_reason(server)
        if reason is not None:
            raise HostsUnavailable(f"cannot give the nodes hosts: {reason}")
        self.server = server
        self.start_timeout = start_timeout
        self._supervisor = supervisor
        self._log_dir = log_dir
        self._on_signal = on_signal
        self._config_flags = server_config_flags(server)
        self._hosts: dict[str, Host] = {}
        self._env = {k: v for k, v in os.environ.items() if k != "CONSUL_HTTP_ADDR"}

    # -- lookup -----------------------------------------------------------------------------

    def get(self, name: str) -> Host | None:
        """The host of node ``name`` (None if it never had one)."""
        return self._hosts.get(name)

    def names(self) -> list[str]:
        """Every host started so far, in start order."""
        return list(self._hosts)

    def require(self, name: str, action: str, states: Iterable[str] = ("up", "frozen")) -> Host:
        """The host of ``name`` if it is in one of ``states``; else a ClusterError saying so."""
        host = self._hosts.get(name)
        if host is None:
            raise ClusterError(f"cannot {action}: {name} has no host (start it first)")
        wanted = tuple(states)
        if host.state not in wanted:
            raise ClusterError(
                f"cannot {action}: {name}'s host is {host.state}, not {' or '.join(wanted)}"
            )
        return host

    # -- starting ---------------------------------------------------------------------------

    def argv(self, host: Host, http_port: int) -> list[str]:
        """The client agent's command line."""
        return [
            sys.executable, "-m", "elect_helpers.devagent",
            "-join", host.to_server.address,
            "-node", host.name,
            "-node-id", host.node_id,
            "-serf-lan-port", str(host.serf_port),
            "-advertise-serf-lan", host.from_server.address,
            "-http-port", str(http_port),
            "-log-level", "warn",
            *self._config_flags,
        ]  # fmt: skip

    def ensure_up(self, names: Iterable[str]) -> None:
        """Start the client agent of every named host that is not up (all at once), and
        wait until each answers; raises :class:`NodeStartError` naming those that failed."""
        starting: list[tuple[Host, int]] = []
        for name in names:
            host = self._hosts.get(name)
            if host is None:
                host = self._new_host(name)
                self._hosts[name] = host
            if host.state in ("up", "frozen", "cut off"):
                continue
            port = free_port()
            read_fd = self._supervisor.launch(
                host.process, lambda _fd, host=host, port=port: self.argv(host, port), self._env
            )
            with contextlib.suppress(OSError):
                os.close(read_fd)  # the agent reports readiness over HTTP, not this pipe
            host.http_address = f"127.0.0.1:{port}"
            starting.append((host, port))
        failures = self._await_answers([host for host, _ in starting])
        if failures:
            raise NodeStartError("; ".join(failures))

    def _new_host(self, name: str) -> Host:
        serf_port = free_port()
        return Host(
            name,
            ChildProcess(
                f"{name}'s host agent",
                self._log_dir / f"{name}.agent.stderr",
                on_signal=lambda detail, name=name: self._on_signal(name, detail),
            ),
            serf_port,
            to_server=LinkProxy(self.server, name=f"{name}-to-server").start(),
            from_server=LinkProxy(f"127.0.0.1:{serf_port}", name=f"{name}-gossip").start(),
        )

    def _await_answers(self, hosts: list[Host]) -> list[str]:
        deadline = time.monotonic() + self.start_timeout
        waiting = list(hosts)
        failures = []
        while waiting:
            for host in list(waiting):
                host.process.refresh()
                if not host.process.alive:
                    waiting.remove(host)
                    failures.append(
                        f"{host.name}'s host agent exited with status "
                        f"{host.process.exit_code}{host.process.stderr_note()}"
                    )
                elif _answers(host.http_address):
                    waiting.remove(host)
            if waiting and time.monotonic() > deadline:
                for host in waiting:
                    host.process.kill_quietly()
                    failures.append(
                        f"{host.name}'s host agent did not answer within "
                        f"{self.start_timeout:g}s and was killed{host.process.stderr_note()}"
                    )
                break
            if waiting:
                time.sleep(READY_POLL)
        return failures

    # -- what happens to a host ---------------------------------------------------------------

    def crash(self, name: str) -> None:
        """SIGKILL the host's agent (the node is the cluster's to kill)."""
        host = self.require(name, "crash the host", ("up", "frozen", "cut off"))
        self._supervisor.kill(host.process)

    def freeze(self, name: str) -> None:
        """SIGSTOP the host's agent."""
        host = self.require(name, "freeze the host", ("up",))
        self._supervisor.pause(host.process)

    def thaw(self, name: str) -> None:
        """SIGCONT a frozen host's agent."""
        host = self.require(name, "thaw the host", ("frozen",))
        self._supervisor.resume(host.process)

    def _await_failed(self, name: str) -> None:
        """Wait (up to ``start_timeout``) until the server no longer sees the node alive:
        force-leave only moves a *failed* member to left, as in Consul."""
        deadline = time.monotonic() + self.start_timeout
        while serf_health(self.server, name) == "passing" and time.monotonic() < deadline:
            time.sleep(READY_POLL)

    def cut(self, name: str) -> None:
        """Cut the host off the network: both its links black-holed."""
        host = self.require(name, "cut the host off", ("up",))
        self._on_signal(name, "controller cut the host off the network")
        host.to_server.cut()
        host.from_server.cut()

    def heal(self, name: str) -> None:
        """Reconnect a cut-off host."""
        host = self._hosts.get(name)
        if host is None or not host.is_cut:
            state = host.state if host else "not started"
            raise ClusterError(f"cannot heal the host: {name}'s host is {state}, not cut off")
        self._on_signal(name, "controller healed the host's network")
        host.to_server.heal()
        host.from_server.heal()

    def close(self, timeout: float) -> None:
        """Remove every host from the datacenter: SIGTERM each live agent (it leaves
        gracefully first, so the server deregisters its node) and reap it; force-leave the
        nodes of hosts that crashed, as an operator runs ``consul force-leave``."""
        for host in self._hosts.values():
            if host.is_cut:
                host.to_server.heal()
                host.from_server.heal()
        alive = [h.process for h in self._hosts.values() if h.process.alive]
        self._supervisor.terminate(alive, timeout, "cluster closing: the host leaves")
        for host in self._hosts.values():
            # A host that crashed, or whose leave did not reach the server, is still a node.
            if serf_health(self.server, host.name) is not None:
                self._await_failed(host.name)
                force_leave(self.server, host.name)
            host.to_server.close()
            host.from_server.close()


def force_leave(server: str, node: str) -> bool:
    """``PUT /v1/agent/force-leave/<node>`` on the server; whether it answered 200."""
    request = urllib.request.Request(
        f"http://{server}/v1/agent/force-leave/{urllib.parse.quote(node)}", method="PUT"
    )
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT) as response:
            return response.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def serf_health(server: str, node: str) -> str | None:
    """The node's ``serfHealth`` status in the catalog (None if the node is not there)."""
    try:
        status, body = _get_json(f"http://{server}/v1/health/node/{urllib.parse.quote(node)}")
    except OSError:
        return None
    if status != 200 or not isinstance(body, list):
        return None
    for check in body:
        if isinstance(check, dict) and check.get("CheckID") == SERF_CHECK_ID:
            return str(check.get("Status"))
    return None


def check_statuses(client: consul.Consul, nodes: Iterable[str]) -> dict[str, str]:
    """The catalog's checks of the given Consul nodes: ``service:<id>`` -> status for
    service checks, ``<node>/serfHealth`` -> status for each node's serfHealth."""
    wanted = set(nodes)
    _, checks = client.health.state("any")
    statuses = {}
    for check in checks:
        if check.get("Node") not in wanted:
            continue
        if check["CheckID"] == SERF_CHECK_ID:
            statuses[f"{check['Node']}/{SERF_CHECK_ID}"] = check["Status"]
        else:
            statuses[check["CheckID"]] = check["Status"]
    return statuses


def _answers(address: str | None) -> bool:
    """Whether a client agent's HTTP API answers (it has joined by then)."""
    if address is None:
        return False
    try:
        status, _ = _get_json(f"http://{address}/v1/agent/self")
    except OSError:
        return False
    return status == 200
