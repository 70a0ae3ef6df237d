"""A controller for a group of simulated node processes.

:class:`Cluster` starts ``python -m elect_helpers.node`` processes (or, with ``program=``,
the Go candidates of :mod:`elect_helpers.gonodes`, which take the same options and write the
same events), sends them the signals
that stand for the failure modes (SIGTERM = graceful step-down, SIGKILL = crash,
SIGSTOP/SIGCONT = a frozen process), lists what each node believes next to what Consul
says, and merges their event logs into one timeline.  It can also run the fenced resource
(:class:`elect_helpers.fencing.ResourceServer`) its leaders write to.

It is a thin layer over three modules with one job each: :mod:`elect_helpers.supervisor`
(starting, signalling and reaping the processes; no orphans even if the controller is
SIGKILLed), :mod:`elect_helpers.consul_view` (what Consul says, and removing leftovers) and
:mod:`elect_helpers.timeline` (what the nodes' own events say they believe).
:meth:`Cluster.close` (also run at exit) stops the nodes, reaps them and removes what they
left in Consul.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import consul

from elect_helpers import connection, consul_view, gonodes, lock, timeline
from elect_helpers.errors import (
    ClusterError,
    ElectHelpersError,
    InvalidArgument,
    NodeStartError,
    UnknownNode,
)
from elect_helpers.events import EventLog, merge_timeline, read_events
from elect_helpers.fencing import ResourceServer
from elect_helpers.hosts import HostAgents
from elect_helpers.hosts import check_statuses as hosts_check_statuses
from elect_helpers.netproxy import LinkProxy
from elect_helpers.node.options import NodeOptions
from elect_helpers.supervisor import ChildProcess, Supervisor


@dataclass(frozen=True)
class NodeStatus:
    """One node as the controller sees it.

    ``state``: running, paused, stopped (exit 0 after SIGTERM), killed (SIGKILL by the
    controller) or exited (died on its own, ``exit_code`` says how).  ``believes`` is what
    the node's own events say (leader, follower, starting, stopped) and ``token`` its
    fencing token while it believes it leads.  ``consul_leader`` and ``check`` are what
    Consul says: whether the leader key names this node, and its health check's status
    (None when not registered).  ``program`` is what runs the node (``python``, or a Go
    program of :mod:`elect_helpers.gonodes`); ``language`` says it for people.  In a
    cluster with hosts, ``host`` is the state of the node's host agent (up, frozen,
    crashed, left, exited) and ``serf_health`` its ``serfHealth`` check as the server sees
    it; both are None without hosts.  ``partitioned`` is True while :meth:`Cluster.partition`
    has cut the node off from its agent (its process keeps running).
    """

    name: str
    pid: int | None
    state: str
    exit_code: int | None
    believes: str
    token: int | None
    session: str | None
    consul_leader: bool
    check: str | None
    program: str = "python"
    host: str | None = None
    serf_health: str | None = None
    partitioned: bool = False

    @property
    def language(self) -> str:
        """``Python``, ``Go (article)`` or ``Go (api.Lock)``."""
        return gonodes.PROGRAMS.get(self.program, self.program)

    def __str__(self) -> str:
        belief = self.believes + (f" (token #{self.token})" if self.token is not None else "")
        consul_view = ("LEADER" if self.consul_leader else "-") + f", check {self.check or '-'}"
        if self.host is not None:
            consul_view += f", host {self.host}, serfHealth {self.serf_health or '-'}"
        return (
            f"{self.name:<8} pid {self.pid or '-':<7} "
            f"{self.state + (' cut off' if self.partitioned else ''):<8} "
            f"believes {belief:<22} consul: {consul_view}"
        )


@dataclass
class _Node:
    options: dict[str, Any]
    events_path: Path
    log: EventLog
    process: ChildProcess
    program: str = "python"

    @property
    def name(self) -> str:
        return self.process.name


class Cluster:
    """Start and control simulated node processes for one service.

    ``node_defaults`` are node options applied to every node (``ttl``, ``behavior``,
    ``lock_delay``, ``check_interval``, ``bind_check``, ``tuned``, ``key``,
    ``write_interval``); durations as Go strings or float seconds.  ``start(name, **opts)``
    can override them per node.  ``events_dir`` keeps the event files (one
    ``<name>.events.jsonl`` per node); by default a temporary directory, removed by
    :meth:`close` after the timeline has been read.  ``resource=True`` starts a
    :class:`ResourceServer` (``.resource``) and has every node write to both its stores.
    ``address`` is the agent (default: ``CONSUL_HTTP_ADDR`` or 127.0.0.1:8500).

    ``hosts=True`` gives every node its own host: a client agent joined to that agent (which
    must be the embedded dev agent; otherwise :class:`~elect_helpers.hosts.HostsUnavailable`
    says why), which the node talks to.  Then :meth:`crash_host`, :meth:`freeze_host` and
    :meth:`thaw_host` act on agent and node together, :meth:`cut_host` and :meth:`heal_host`
    on the host's network (see :mod:`elect_helpers.hosts`).
    """

    def __init__(
        self,
        service: str = "monitoring",
        events_dir: str | os.PathLike[str] | None = None,
        resource: bool = True,
        *,
        address: str | None = None,
        start_timeout: float = 20.0,
        hosts: bool = False,
        **node_defaults: Any,
    ) -> None:
        self._check_option_names(node_defaults)
        self.service = service
        self.key = node_defaults.get("key") or f"service/{service}/leader"
        self.node_defaults = node_defaults
        self.start_timeout = start_timeout
        self._env = dict(os.environ)
        if address:
            self._env["CONSUL_HTTP_ADDR"] = address
        self.client: consul.Consul = connection.consul_client(address)
        self._own_dir = events_dir is None
        self.events_dir = Path(events_dir or tempfile.mkdtemp(prefix="cluster-events-"))
        self.events_dir.mkdir(parents=True, exist_ok=True)
        self._nodes: dict[str, _Node] = {}
        self._lock = threading.RLock()
        self._closed = False
        self._final_timeline: list[dict[str, Any]] | None = None
        self._supervisor = Supervisor()
        self._links: dict[str, LinkProxy] = {}
        self.hosts: HostAgents | None = None
        if hosts:
            try:
                self.hosts = HostAgents(
                    self._supervisor,
                    connection.client_address(self.client).address,
                    self.events_dir,
                    self._log_host_signal,
                    start_timeout,
                )
            except BaseException:
                self._supervisor.close()
                if self._own_dir:
                    shutil.rmtree(self.events_dir, ignore_errors=True)
                raise
        self.resource: ResourceServer | None = ResourceServer() if resource else None
        atexit.register(self.close)

    # -- options --------------------------------------------------------------------------

    @staticmethod
    def _check_option_names(options: dict[str, Any]) -> None:
        allowed = NodeOptions.user_options()
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ClusterError(
                f"unknown node option(s) {', '.join(unknown)}; use {', '.join(allowed)}"
            )

    def _argv(
        self, name: str, options: dict[str, Any], ready_fd: int, program: str = "python"
    ) -> list[str]:
        """The node's command line; raises ClusterError for options the node would refuse
        (or a program that cannot run)."""
        urls = {}
        if self.resource is not None:
            urls = {
                "resource": self.resource.fenced_url,
                "unfenced_resource": self.resource.unfenced_url,
            }
        try:  # the node would refuse them too, but a Python error here is clearer
            node_options = NodeOptions.build(
                **{"service": self.service, **options},
                name=name,
                events=str(self.events_dir / f"{name}.events.jsonl"),
                ready_fd=ready_fd,
                **urls,
            )
        except InvalidArgument as exc:
            raise ClusterError(f"{name}: {exc}") from None
        return [*gonodes.command(program), *node_options.to_argv()]

    # -- lookup ---------------------------------------------------------------------------

    def _get(self, name: str) -> _Node:
        node = self._nodes.get(name)
        if node is None:
            known = ", ".join(self._nodes) or "none yet"
            raise UnknownNode(
                f"no node named {name!r} in this cluster (known: {known}); "
                "start it with cluster.start(name)"
            )
        node.process.refresh()
        return node

    def _auto_names(self, count: int) -> list[str]:
        names: list[str] = []
        n = 0
        while len(names) < count:
            n += 1
            if f"node{n:02d}" not in self._nodes:
                names.append(f"node{n:02d}")
        return names

    # -- starting -------------------------------------------------------------------------

    def start(
        self, name: str | None = None, *, program: str | None = None, **options: Any
    ) -> NodeStatus:
        """Start one node and wait until it is registered in Consul; return its status.

        ``program`` runs it as ``python`` (the default) or as one of the Go programs of
        :mod:`elect_helpers.gonodes` (``article``, ``golock``; built with
        ``gonodes.build()``); a node started again keeps its program unless told otherwise.
        Raises :class:`ClusterError` for a name already running, bad options or a program
        that is not built, and :class:`NodeStartError` (with the node's stderr) if it fails
        to start.
        """
        return self.start_many([name] if name else 1, program=program, **options)[0]

    def start_many(
        self, names: Iterable[str] | int, *, program: str | None = None, **options: Any
    ) -> list[NodeStatus]:
        """Start several nodes at once (names, or a count of auto-named nodes), all with
        ``program`` (see :meth:`start`).

        All processes are launched first and then awaited together, so this takes about
        as long as starting one.  If some fail, the others keep running and
        :class:`NodeStartError` names the failures.
        """
        self._check_open()
        self._check_option_names(options)
        with self._lock:
            wanted = self._auto_names(names) if isinstance(names, int) else list(names)
            if len(set(wanted)) != len(wanted):
                raise ClusterError(f"the same name appears twice in {wanted}")
            for name in wanted:  # refuse the whole request before launching anything
                self._check_startable(name)
                self._argv(
                    name, {**self.node_defaults, **options}, 3, self._program_of(name, program)
                )
            nodes = [self._prepare(name, options, program) for name in wanted]
            if self.hosts is not None:
                self.hosts.ensure_up(wanted)
            pending = {
                self._supervisor.launch(
                    node.process,
                    lambda fd, node=node: self._argv(node.name, node.options, fd, node.program),
                    self._node_env(node.name),
                ): node.process
                for node in nodes
            }
        failures = self._supervisor.await_ready(pending, self.start_timeout)
        if failures:
            message = "; ".join(failures)
            for link in self._links.values():  # a node names the link, not the agent
                message = message.replace(
                    link.address, f"{link.address} (this cluster's link to {link.target})"
                )
            raise NodeStartError(message)
        return [self.status(node.name) for node in nodes]

    def _node_env(self, name: str) -> dict[str, str]:
        """The node's environment: CONSUL_HTTP_ADDR is its link to its agent (its host's
        agent if it has one), so that :meth:`partition` can cut it."""
        host = self.hosts.get(name) if self.hosts is not None else None
        agent = connection.client_address(self.client)
        if host is not None and host.http_address is not None:
            agent = connection.parse_address(host.http_address)
        if agent.scheme != "http":  # TLS names the agent's host: no link, no partitions
            return {**self._env, "CONSUL_HTTP_ADDR": agent.url}
        link = self._links.get(name)
        if link is not None and link.target != agent.address:
            link.close()  # the node's host agent moved (restarted on another port)
            link = None
        if link is None:
            link = self._links[name] = LinkProxy(agent.address, name=name).start()
        return {**self._env, "CONSUL_HTTP_ADDR": link.address}

    def _check_startable(self, name: str) -> None:
        link = self._links.get(name)
        if link is not None and link.is_cut:
            raise ClusterError(
                f"{name} is cut off from its agent (cluster.partition), so it could not "
                f"register; heal the link first with cluster.heal({name!r})"
            )
        existing = self._nodes.get(name)
        if existing is None:
            return
        existing.process.refresh()
        if existing.process.alive:
            raise ClusterError(
                f"a node named {name!r} is already {existing.process.state} "
                f"(pid {existing.process.pid or '?'}); "
                f"pick another name, or use cluster.restart({name!r})"
            )

    def _program_of(self, name: str, program: str | None) -> str:
        if program is not None:
            return program
        existing = self._nodes.get(name)
        return existing.program if existing is not None else "python"

    def _prepare(self, name: str, options: dict[str, Any], program: str | None) -> _Node:
        node = self._nodes.get(name)
        if node is None:
            events_path = self.events_dir / f"{name}.events.jsonl"
            log = EventLog(events_path, name)
            node = _Node(
                options={},
                events_path=events_path,
                log=log,
                process=ChildProcess(
                    name,
                    self.events_dir / f"{name}.stderr",
                    on_signal=lambda detail, log=log: log.emit("signal", detail=detail),
                ),
            )
            self._nodes[name] = node
        node.options = {**self.node_defaults, **options}
        node.program = self._program_of(name, program)
        return node

    # -- failures -------------------------------------------------------------------------

    def stop(self, name: str, timeout: float = 10.0) -> NodeStatus:
        """Graceful step-down: SIGTERM, wait for exit (SIGKILL after ``timeout``)."""
        with self._lock:
            node = self._get(name)
            node.process.require_alive("stop")
            self._supervisor.terminate([node.process], timeout, "graceful step-down")
            return self.status(name)

    def kill(self, name: str) -> NodeStatus:
        """Crash the node: SIGKILL, no chance to clean up.  Raises if it is not alive."""
        with self._lock:
            self._supervisor.kill(self._get(name).process)
            return self.status(name)

    def pause(self, name: str) -> NodeStatus:
        """Freeze the node (SIGSTOP), as a long GC pause or a VM freeze would."""
        with self._lock:
            self._supervisor.pause(self._get(name).process)
            return self.status(name)

    def resume(self, name: str) -> NodeStatus:
        """Wake a paused node (SIGCONT); it may still believe it leads for a moment."""
        with self._lock:
            self._supervisor.resume(self._get(name).process)
            return self.status(name)

    def restart(self, name: str, **options: Any) -> NodeStatus:
        """Stop the node gracefully if alive, then start it again (same options + these)."""
        with self._lock:
            node = self._get(name)
            if node.process.alive:
                self.stop(name)
            return self.start(name, **{**node.options, **options})

    def partition(self, name: str) -> NodeStatus:
        """Cut the node off from its agent while its process keeps running (and writing).

        The link becomes a black hole (see :mod:`elect_helpers.netproxy`): the node's
        requests get no answer until their own timeouts, nothing is refused or reset.  Its
        renewer's renew then times out when its TTL is used up (the request timeout is the
        time left until last good renew + TTL), so a leader gives up and steps down one TTL
        after its last good renew, while Consul keeps the session (and the lock) at least
        that long and, in practice, up to 2 x TTL, plus lock-delay before anyone else may
        take it.  The agent can still reach the node (its health check keeps passing):
        only the node's own requests are cut.  Requests it gave up on may still arrive
        after :meth:`heal`, as they would after a real partition.
        """
        with self._lock:
            node = self._get(name)
            node.process.require_alive("partition")
            link = self._require_link(name, "partition")
            if link.is_cut:
                raise ClusterError(f"{name} is already cut off; heal it with heal({name!r})")
            node.log.emit("partition", detail=f"controller cut {name} off from its agent")
            link.cut()
            return self.status(name)

    def heal(self, name: str) -> NodeStatus:
        """Restore the node's link to its agent; what it sent meanwhile arrives now."""
        with self._lock:
            node = self._get(name)
            link = self._require_link(name, "heal")
            if not link.is_cut:
                raise ClusterError(f"{name} is not cut off; nothing to heal")
            link.heal()
            node.log.emit("heal", detail=f"controller restored {name}'s link to its agent")
            return self.status(name)

    def _is_cut(self, name: str) -> bool:
        link = self._links.get(name)
        return link is not None and link.is_cut

    def _require_link(self, name: str, action: str) -> LinkProxy:
        link = self._links.get(name)
        if link is None:
            raise ClusterError(
                f"cannot {action} {name}: it talks to its agent over TLS, which this "
                "cluster does not proxy; partitions need an http:// agent"
            )
        return link

    # -- what happens to a host (clusters with hosts=True) ----------------------------------

    def _require_hosts(self, action: str) -> HostAgents:
        if self.hosts is None:
            raise ClusterError(
                f"cannot {action}: this cluster's nodes share one agent and have no hosts; "
                "create the cluster with Cluster(..., hosts=True)"
            )
        return self.hosts

    def _log_host_signal(self, name: str, detail: str) -> None:
        node = self._nodes.get(name)
        if node is not None:
            node.log.emit("signal", detail=f"{detail} to the host agent")

    def crash_host(self, name: str) -> NodeStatus:
        """The host loses power: its node and its agent are SIGKILLed together."""
        with self._lock:
            hosts = self._require_hosts("crash the host")
            node = self._get(name)
            hosts.require(name, "crash the host", ("up", "frozen", "cut off"))
            if node.process.alive:
                self._supervisor.kill(node.process)
            hosts.crash(name)
            return self.status(name)

    def freeze_host(self, name: str) -> NodeStatus:
        """The host hangs (a frozen VM): its node and its agent are SIGSTOPped together."""
        with self._lock:
            hosts = self._require_hosts("freeze the host")
            node = self._get(name)
            hosts.require(name, "freeze the host", ("up",))
            hosts.freeze(name)
            if node.process.state == "running":
                self._supervisor.pause(node.process)
            return self.status(name)

    def cut_host(self, name: str) -> NodeStatus:
        """Cut the host off the network: the server can no longer probe its agent, nor
        can the agent reach the server; the node still talks to its own agent."""
        with self._lock:
            self._get(name)
            self._require_hosts("cut the host off").cut(name)
            return self.status(name)

    def heal_host(self, name: str) -> NodeStatus:
        """Reconnect a cut-off host: its agent answers probes again and rejoins."""
        with self._lock:
            self._get(name)
            self._require_hosts("heal the host").heal(name)
            return self.status(name)

    def thaw_host(self, name: str) -> NodeStatus:
        """A frozen host runs on (SIGCONT to agent and node): its agent rejoins, and its
        node may still believe it leads for a moment."""
        with self._lock:
            hosts = self._require_hosts("thaw the host")
            node = self._get(name)
            hosts.require(name, "thaw the host", ("frozen",))
            hosts.thaw(name)
            if node.process.state == "paused":
                self._supervisor.resume(node.process)
            return self.status(name)

    # -- what is going on -----------------------------------------------------------------

    def names(self) -> list[str]:
        """Names of all nodes this cluster has started, in start order."""
        return list(self._nodes)

    def leader(self) -> lock.LeaderInfo | None:
        """Who holds the leader key according to Consul (None if nobody)."""
        return consul_view.current_leader(self.client, self.key)

    def wait_for_leader(
        self, timeout: float = 30.0, other_than: str | None = None
    ) -> lock.LeaderInfo:
        """Block until Consul names a leader (other than ``other_than``); return it.

        Uses blocking queries on the leader key; raises :class:`~.errors.WaitTimeout` after
        ``timeout`` seconds.
        """
        return consul_view.wait_for_leader(self.client, self.key, timeout, other_than)

    def status(self, name: str) -> NodeStatus:
        """One node's :class:`NodeStatus`."""
        return self._statuses([self._get(name)])[0]

    def nodes(self) -> list[NodeStatus]:
        """Every node's :class:`NodeStatus`, in start order."""
        with self._lock:
            for node in self._nodes.values():
                node.process.refresh()
            return self._statuses(list(self._nodes.values()))

    def _statuses(self, nodes: list[_Node]) -> list[NodeStatus]:
        try:
            leader = self.leader()
            if self.hosts is None:
                checks = consul_view.check_statuses(self.client)
            else:
                checks = hosts_check_statuses(self.client, self.hosts.names())
        except (ElectHelpersError, consul.ConsulException, OSError):
            leader, checks = None, {}
        result = []
        for node in nodes:
            belief = timeline.belief(self._events_of(node))
            host = self.hosts.get(node.name) if self.hosts is not None else None
            result.append(
                NodeStatus(
                    name=node.name,
                    pid=node.process.pid,
                    state=node.process.state,
                    exit_code=node.process.exit_code,
                    believes=belief.role,
                    token=belief.token,
                    session=belief.session,
                    consul_leader=leader is not None and leader.node == node.name,
                    check=checks.get(f"service:{node.name}"),
                    program=node.program,
                    host=host.state if host is not None else None,
                    serf_health=checks.get(f"{node.name}/serfHealth") if host else None,
                    partitioned=self._links[node.name].is_cut
                    if node.name in self._links
                    else False,
                )
            )
        return result

    def wait_for_event(
        self,
        name: str,
        event: str,
        timeout: float = 10.0,
        *,
        after: float | None = None,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """Wait until node ``name`` has logged ``event`` (after time ``after``); return it.

        ``where`` narrows the match further.  Reads the node's event file every 50 ms (the
        nodes themselves never poll).  Raises :class:`~.errors.WaitTimeout` after ``timeout``.
        """
        node = self._get(name)
        return timeline.wait_for_event(
            lambda: self._events_of(node), name, event, timeout, after=after, where=where
        )

    def _events_of(self, node: _Node) -> list[dict[str, Any]]:
        if self._final_timeline is not None:  # closed: the files may be gone
            return [e for e in self._final_timeline if e.get("node") == node.name]
        return read_events(node.events_path)

    def timeline(self) -> list[dict[str, Any]]:
        """All nodes' events (and the controller's signals), ordered by time."""
        if self._final_timeline is not None:
            return list(self._final_timeline)
        return merge_timeline(node.events_path for node in self._nodes.values())

    # -- closing --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ClusterError("this cluster is closed; create a new Cluster")

    def close(self, timeout: float = 5.0) -> None:
        """Stop every node (SIGTERM, then SIGKILL after ``timeout``), reap them, remove what
        they left in Consul (services, sessions, an unheld leader key), stop the resource
        server.  Idempotent; also runs at interpreter exit."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for name, link in self._links.items():  # so that the nodes can clean up
                if link.is_cut:
                    link.heal()
                    self._nodes[name].log.emit("heal", detail="cluster closing")
            alive = []
            for node in self._nodes.values():
                node.process.refresh()
                if node.process.alive:
                    alive.append(node.process)
            self._supervisor.terminate(alive, timeout, "cluster closing")
            if self.hosts is not None:
                self.hosts.close(timeout)
            self._supervisor.close()
            for link in self._links.values():
                link.close()
            self._clean_consul()
            self._final_timeline = self.timeline()
            for node in self._nodes.values():
                node.log.close()
            if self.resource is not None:
                self.resource.stop()
            if self._own_dir:
                shutil.rmtree(self.events_dir, ignore_errors=True)
            atexit.unregister(self.close)

    def _clean_consul(self) -> None:
        """Deregister our nodes' services and destroy their sessions, if still there."""
        sessions = {
            event["session"]
            for node in self._nodes.values()
            for event in self._events_of(node)
            if event.get("session")
        }
        with contextlib.suppress(ElectHelpersError, consul.ConsulException, OSError):
            consul_view.remove_leftovers(
                self.client, self.service, self.key, list(self._nodes), sessions
            )

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        states = ", ".join(f"{n.name}:{n.process.state}" for n in self._nodes.values())
        return f"Cluster(service={self.service!r}, nodes=[{states}])"
