"""A controller for a group of simulated node processes.

:class:`Cluster` starts ``python -m elect_helpers.node`` processes, sends them the signals
that stand for the failure modes (SIGTERM = graceful step-down, SIGKILL = crash,
SIGSTOP/SIGCONT = a frozen process), lists what each node believes next to what Consul
says, and merges their event logs into one timeline.  It can also run the fenced resource
(:class:`elect_helpers.fencing.ResourceServer`) its leaders write to.

No orphans: every child gets its own process group and ``PR_SET_PDEATHSIG = SIGKILL``, so
the kernel kills it when the controller dies, even by SIGKILL (a crashed notebook kernel).
The signal fires when the *thread* that forked the child ends, so all children are forked
from one long-lived helper thread.  :meth:`Cluster.close` (also run at exit) stops the nodes,
reaps them and removes what they left in Consul.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import consul

from elect_helpers import connection, lock
from elect_helpers.children import die_with_parent
from elect_helpers.durations import seconds_to_go, to_seconds
from elect_helpers.errors import ElectHelpersError, InvalidArgument
from elect_helpers.events import EventLog, merge_timeline, read_events
from elect_helpers.fencing import ResourceServer
from elect_helpers.node.options import NodeOptions
from elect_helpers.watch import next_index

_T = TypeVar("_T")
_STDERR_TAIL = 2000


class ClusterError(ElectHelpersError):
    """A controller request that cannot be done; the message says what to do instead."""


class UnknownNode(ClusterError, KeyError):
    """No node of that name was ever started by this cluster."""

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class NodeNotRunning(ClusterError):
    """The node exists but its process is no longer alive (or not in the needed state)."""


class NodeStartError(ClusterError):
    """A node process exited or hung while starting; the message includes its stderr."""


@dataclass(frozen=True)
class NodeStatus:
    """One node as the controller sees it.

    ``state``: running, paused, stopped (exit 0 after SIGTERM), killed (SIGKILL by the
    controller) or exited (died on its own, ``exit_code`` says how).  ``believes`` is what
    the node's own events say (leader, follower, starting, stopped) and ``token`` its
    fencing token while it believes it leads.  ``consul_leader`` and ``check`` are what
    Consul says: whether the leader key names this node, and its health check's status
    (None when not registered).
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

    def __str__(self) -> str:
        belief = self.believes + (f" (token {self.token})" if self.token is not None else "")
        consul_view = ("LEADER" if self.consul_leader else "-") + f", check {self.check or '-'}"
        return (
            f"{self.name:<8} pid {self.pid or '-':<7} {self.state:<8} "
            f"believes {belief:<22} consul: {consul_view}"
        )


@dataclass
class _Node:
    name: str
    options: dict[str, Any]
    events_path: Path
    stderr_path: Path
    log: EventLog
    proc: subprocess.Popen[bytes] | None = None
    state: str = "new"
    exit_code: int | None = None


class _Spawner:
    """One long-lived daemon thread that forks every child (see the module docstring)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None]
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="cluster-spawner", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            func, future = item
            try:
                future.set_result(func())
            except BaseException as exc:
                future.set_exception(exc)

    def call(self, func: Callable[[], _T]) -> _T:
        future: Future[_T] = Future()
        self._queue.put((func, future))
        return future.result()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()


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
    """

    def __init__(
        self,
        service: str = "monitoring",
        events_dir: str | os.PathLike[str] | None = None,
        resource: bool = True,
        *,
        address: str | None = None,
        start_timeout: float = 20.0,
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
        self._spawner = _Spawner()
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

    def _argv(self, name: str, options: dict[str, Any], ready_fd: int) -> list[str]:
        """The node's command line; raises ClusterError for options the node would refuse."""
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
        return [sys.executable, "-m", "elect_helpers.node", *node_options.to_argv()]

    # -- lookup ---------------------------------------------------------------------------

    def _get(self, name: str) -> _Node:
        node = self._nodes.get(name)
        if node is None:
            known = ", ".join(self._nodes) or "none yet"
            raise UnknownNode(
                f"no node named {name!r} in this cluster (known: {known}); "
                "start it with cluster.start(name)"
            )
        self._refresh(node)
        return node

    def _refresh(self, node: _Node) -> None:
        if node.proc is not None and node.state in ("running", "paused"):
            code = node.proc.poll()
            if code is not None:
                node.state, node.exit_code = "exited", code

    def _auto_names(self, count: int) -> list[str]:
        names: list[str] = []
        n = 0
        while len(names) < count:
            n += 1
            if f"node{n:02d}" not in self._nodes:
                names.append(f"node{n:02d}")
        return names

    def _require_alive(self, node: _Node, action: str) -> None:
        if node.state not in ("running", "paused"):
            how = f"{node.state}" + (
                f", exit status {node.exit_code}" if node.exit_code is not None else ""
            )
            raise NodeNotRunning(
                f"cannot {action} {node.name}: it is not running ({how}); "
                f"start it again with cluster.restart({node.name!r})"
            )

    # -- starting -------------------------------------------------------------------------

    def start(self, name: str | None = None, **options: Any) -> NodeStatus:
        """Start one node and wait until it is registered in Consul; return its status.

        Raises :class:`ClusterError` for a name already running or bad options, and
        :class:`NodeStartError` (with the node's stderr) if it fails to start.
        """
        return self.start_many([name] if name else 1, **options)[0]

    def start_many(self, names: Iterable[str] | int, **options: Any) -> list[NodeStatus]:
        """Start several nodes at once (names, or a count of auto-named nodes).

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
                self._argv(name, {**self.node_defaults, **options}, ready_fd=3)
            nodes = [self._prepare(name, options) for name in wanted]
            pending = {self._launch(node): node for node in nodes}
        failures = self._await_ready(pending)
        if failures:
            raise NodeStartError("; ".join(failures))
        return [self.status(node.name) for node in nodes]

    def _check_startable(self, name: str) -> None:
        existing = self._nodes.get(name)
        if existing is None:
            return
        self._refresh(existing)
        if existing.state in ("running", "paused"):
            raise ClusterError(
                f"a node named {name!r} is already {existing.state} "
                f"(pid {existing.proc.pid if existing.proc else '?'}); "
                f"pick another name, or use cluster.restart({name!r})"
            )

    def _prepare(self, name: str, options: dict[str, Any]) -> _Node:
        node = self._nodes.get(name)
        if node is None:
            events_path = self.events_dir / f"{name}.events.jsonl"
            node = _Node(
                name=name,
                options={},
                events_path=events_path,
                stderr_path=self.events_dir / f"{name}.stderr",
                log=EventLog(events_path, name),
            )
            self._nodes[name] = node
        node.options = {**self.node_defaults, **options}
        return node

    def _launch(self, node: _Node) -> int:
        read_fd, write_fd = os.pipe()
        try:
            argv = self._argv(node.name, node.options, write_fd)
            die_with_us = die_with_parent(signal.SIGKILL, own_process_group=True)
            with open(node.stderr_path, "wb") as stderr:
                node.proc = self._spawner.call(
                    lambda: subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=stderr,
                        env=self._env,
                        pass_fds=(write_fd,),
                        preexec_fn=die_with_us,
                    )
                )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        node.state, node.exit_code = "running", None
        return read_fd

    def _await_ready(self, pending: dict[int, _Node]) -> list[str]:
        deadline = time.monotonic() + self.start_timeout
        buffers = {fd: b"" for fd in pending}
        failures = []
        try:
            while pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    for node in pending.values():
                        self._kill_quietly(node)
                        failures.append(
                            f"{node.name} did not register within {self.start_timeout:g}s "
                            f"and was killed{self._stderr_note(node)}"
                        )
                    break
                readable, _, _ = select.select(list(pending), [], [], remaining)
                for fd in readable:
                    chunk = os.read(fd, 64)
                    buffers[fd] += chunk
                    if b"ready" in buffers[fd] or not chunk:
                        node = pending.pop(fd)
                        os.close(fd)
                        if not chunk and b"ready" not in buffers[fd]:
                            failures.append(self._start_failure(node))
        finally:
            for fd in pending:
                os.close(fd)
        return failures

    def _start_failure(self, node: _Node) -> str:
        assert node.proc is not None
        try:
            code = node.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._kill_quietly(node)
            code = node.proc.returncode
        node.state, node.exit_code = "exited", code
        return f"{node.name} failed to start (exit status {code}){self._stderr_note(node)}"

    def _stderr_note(self, node: _Node) -> str:
        try:
            text = node.stderr_path.read_text(errors="replace").strip()
        except OSError:
            return ""
        return f"; its stderr: {text[-_STDERR_TAIL:]}" if text else ""

    def _kill_quietly(self, node: _Node) -> None:
        if node.proc is not None and node.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.proc.pid, signal.SIGKILL)
            node.proc.wait()
            node.state, node.exit_code = "killed", node.proc.returncode

    # -- signals --------------------------------------------------------------------------

    def _signal(self, node: _Node, signum: signal.Signals, why: str) -> None:
        assert node.proc is not None
        node.log.emit("signal", detail=f"controller sent {signum.name} ({why})")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.proc.pid, signum)

    def stop(self, name: str, timeout: float = 10.0) -> NodeStatus:
        """Graceful step-down: SIGTERM, wait for exit (SIGKILL after ``timeout``)."""
        with self._lock:
            node = self._get(name)
            self._require_alive(node, "stop")
            self._signal(node, signal.SIGTERM, "graceful step-down")
            if node.state == "paused":
                self._signal(node, signal.SIGCONT, "wake up to handle SIGTERM")
            self._wait_stopped([node], timeout)
            return self.status(name)

    def _wait_stopped(self, nodes: list[_Node], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for node in nodes:
            assert node.proc is not None
            try:
                code = node.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal(node, signal.SIGKILL, f"did not exit within {timeout:g}s")
                node.proc.wait()
                node.state, node.exit_code = "killed", node.proc.returncode
                continue
            node.state = "stopped" if code == 0 else "exited"
            node.exit_code = code

    def kill(self, name: str) -> NodeStatus:
        """Crash the node: SIGKILL, no chance to clean up.  Raises if it is not alive."""
        with self._lock:
            node = self._get(name)
            self._require_alive(node, "kill")
            assert node.proc is not None
            self._signal(node, signal.SIGKILL, "crash")
            node.proc.wait()
            node.state, node.exit_code = "killed", node.proc.returncode
            return self.status(name)

    def pause(self, name: str) -> NodeStatus:
        """Freeze the node (SIGSTOP), as a long GC pause or a VM freeze would."""
        with self._lock:
            node = self._get(name)
            self._require_alive(node, "pause")
            if node.state == "paused":
                raise NodeNotRunning(f"{name} is already paused; resume it with resume()")
            self._signal(node, signal.SIGSTOP, "freeze")
            node.state = "paused"
            return self.status(name)

    def resume(self, name: str) -> NodeStatus:
        """Wake a paused node (SIGCONT); it may still believe it leads for a moment."""
        with self._lock:
            node = self._get(name)
            self._require_alive(node, "resume")
            if node.state != "paused":
                raise NodeNotRunning(f"{name} is not paused ({node.state}); nothing to resume")
            self._signal(node, signal.SIGCONT, "wake up")
            node.state = "running"
            return self.status(name)

    def restart(self, name: str, **options: Any) -> NodeStatus:
        """Stop the node gracefully if alive, then start it again (same options + these)."""
        with self._lock:
            node = self._get(name)
            if node.state in ("running", "paused"):
                self.stop(name)
            return self.start(name, **{**node.options, **options})

    # -- what is going on -----------------------------------------------------------------

    def names(self) -> list[str]:
        """Names of all nodes this cluster has started, in start order."""
        return list(self._nodes)

    def leader(self) -> lock.LeaderInfo | None:
        """Who holds the leader key according to Consul (None if nobody)."""
        info = lock.read_leader(self.client, self.key)
        return info if info is not None and info.session else None

    def wait_for_leader(
        self, timeout: float = 30.0, other_than: str | None = None
    ) -> lock.LeaderInfo:
        """Block until Consul names a leader (other than ``other_than``); return it.

        Uses blocking queries on the leader key; raises :class:`TimeoutError` after
        ``timeout`` seconds.
        """
        deadline = time.monotonic() + to_seconds(timeout)
        index = 0
        watcher = connection.clone_client(self.client)
        try:
            while True:
                info = self.leader()
                if info is not None and info.node != other_than:
                    return info
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    holder = f"{info.node} still leads" if info else "nobody leads"
                    raise TimeoutError(
                        f"no leader{f' other than {other_than}' if other_than else ''} for "
                        f"{self.key} within {to_seconds(timeout):g}s ({holder})"
                    )
                # Each query waits at most MAX_BLOCKING_WAIT, which the client's request
                # timeout covers; a longer ``timeout`` simply takes several queries.
                wait = min(max(remaining, 0.001), connection.MAX_BLOCKING_WAIT)
                with connection.consul_call(watcher, f"watching {self.key}"):
                    new_index, _ = watcher.kv.get(
                        self.key, index=index or None, wait=seconds_to_go(wait)
                    )
                index = next_index(index, int(new_index or 0))
        finally:
            watcher.http.session.close()

    def status(self, name: str) -> NodeStatus:
        """One node's :class:`NodeStatus`."""
        return self._statuses([self._get(name)])[0]

    def nodes(self) -> list[NodeStatus]:
        """Every node's :class:`NodeStatus`, in start order."""
        with self._lock:
            for node in self._nodes.values():
                self._refresh(node)
            return self._statuses(list(self._nodes.values()))

    def _statuses(self, nodes: list[_Node]) -> list[NodeStatus]:
        try:
            leader = self.leader()
            checks = self.client.agent.checks()
        except (ElectHelpersError, consul.ConsulException, OSError):
            leader, checks = None, {}
        result = []
        for node in nodes:
            believes, token, session = _belief(self._events_of(node))
            check = checks.get(f"service:{node.name}")
            result.append(
                NodeStatus(
                    name=node.name,
                    pid=node.proc.pid if node.proc else None,
                    state=node.state,
                    exit_code=node.exit_code,
                    believes=believes,
                    token=token,
                    session=session,
                    consul_leader=leader is not None and leader.node == node.name,
                    check=check["Status"] if check else None,
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
        nodes themselves never poll).  Raises :class:`TimeoutError` after ``timeout``.
        """
        node = self._get(name)
        deadline = time.monotonic() + timeout
        while True:
            for record in self._events_of(node):
                if (
                    record.get("event") == event
                    and (after is None or record["time"] > after)
                    and (where is None or where(record))
                ):
                    return record
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{name} logged no {event!r} event within {timeout:g}s")
            time.sleep(0.05)

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
            alive = []
            for node in self._nodes.values():
                self._refresh(node)
                if node.state in ("running", "paused"):
                    self._signal(node, signal.SIGTERM, "cluster closing")
                    if node.state == "paused":
                        self._signal(node, signal.SIGCONT, "wake up to handle SIGTERM")
                    alive.append(node)
            self._wait_stopped(alive, timeout)
            self._spawner.close()
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
            remove_leftovers(self.client, self.service, self.key, list(self._nodes), sessions)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        states = ", ".join(f"{n.name}:{n.state}" for n in self._nodes.values())
        return f"Cluster(service={self.service!r}, nodes=[{states}])"


def _belief(events: list[dict[str, Any]]) -> tuple[str, int | None, str | None]:
    """What a node believes according to its own events: (role, token, session)."""
    believes, token, session = "starting", None, None
    for event in events:
        kind = event.get("event")
        if event.get("node") is None:
            continue
        if kind == "campaigning":
            believes = "follower"
        elif kind == "elected":
            believes, token, session = "leader", event.get("token"), event.get("session")
        elif kind in ("lost", "resigned"):
            believes, token = "follower", None
        elif kind == "stopped":
            believes, token = "stopped", None
        elif kind == "started":
            believes, token, session = "starting", None, None
    return believes, token, session


def remove_leftovers(
    client: consul.Consul,
    service: str,
    key: str,
    names: Iterable[str],
    sessions: Iterable[str],
) -> None:
    """Remove what crashed nodes leave in Consul: their services (ID = node name, of this
    service), the given sessions if they still exist, and ``key`` if no session holds it."""
    services = client.agent.services()
    for name in names:
        if name in services and services[name].get("Service") == service:
            client.agent.service.deregister(name)
    live = {s["ID"] for s in client.session.list()[1]}
    for session_id in set(sessions) & live:
        client.session.destroy(session_id)
    _, entry = client.kv.get(key)
    if entry is not None and not entry.get("Session"):
        client.kv.delete(key)
