"""Finding or starting a Consul agent for the tutorial.

:func:`ensure_agent` makes sure an agent answers and prints one line saying which one:
an agent already running at the configured address; else ``consul agent -dev`` from a
``consul`` binary on PATH; else the embedded dev agent.  A configured address that does
not answer is an error, never a reason to start something else.  How to reach an agent
once it runs (addresses, environment, clients) is :mod:`elect_helpers.connection`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable

import consul
import requests

from . import connection
from .children import die_with_parent
from .connection import AgentAddress, agent_session_ttl_min, consul_client, parse_address
from .durations import seconds_to_go, to_seconds
from .errors import AgentStartFailed, AgentUnreachable, ConsulError, InvalidArgument

CONSUL_DEFAULT_HTTP_PORT = 8500
PROBE_TIMEOUT = 2.0
START_TIMEOUT = 30.0


class AgentHandle:
    """The agent :func:`ensure_agent` found or started.

    ``kind`` is ``"existing"``, ``"consul-binary"`` or ``"embedded"``; ``address`` is
    ``host:port`` and ``url`` ``http://host:port``; ``session_ttl_min`` is the agent's
    minimum session TTL in seconds (``None`` if the agent does not say).  ``stop()`` stops
    an agent this process started and does nothing for an existing one.
    """

    def __init__(
        self,
        kind: str,
        addr: AgentAddress,
        session_ttl_min: float | None,
        description: str,
        *,
        pid: int | None = None,
        stopper: Callable[[], None] | None = None,
        alive: Callable[[], bool] | None = None,
    ) -> None:
        self.kind = kind
        self.address = addr.address
        self.url = addr.url
        self.session_ttl_min = session_ttl_min
        self.pid = pid
        self._description = description
        self._stopper = stopper
        self._alive = alive
        self._lock = threading.Lock()

    def describe(self) -> str:
        """One line saying which agent this is and where."""
        return self._description

    def client(self, **kwargs: object) -> consul.Consul:
        """A :func:`consul_client` for this agent (keyword arguments are passed on)."""
        return consul_client(self.url, **kwargs)  # type: ignore[arg-type]

    def is_running(self) -> bool:
        """False once an agent this process started has stopped (always True otherwise)."""
        return self._alive() if self._alive else True

    def stop(self) -> None:
        """Stop the agent if this process started it; safe to call more than once."""
        with self._lock:
            stopper, self._stopper = self._stopper, None
        if stopper:
            stopper()

    def __enter__(self) -> AgentHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"AgentHandle(kind={self.kind!r}, url={self.url!r})"


_started: AgentHandle | None = None
_started_lock = threading.Lock()


def _probe(addr: AgentAddress) -> str:
    """``"consul"`` (answers with a leader), ``"starting"`` (no leader yet), ``"other"``
    (something else answers) or ``"none"`` (nothing listens)."""
    client = consul_client(addr.url, timeout=PROBE_TIMEOUT)
    try:
        leader = client.status.leader()
    except requests.RequestException:
        return "none"
    except (consul.ConsulException, ValueError):
        return "other"
    if not isinstance(leader, str):
        return "other"
    return "consul" if leader else "starting"


def _ready(addr: AgentAddress) -> bool:
    """True once the agent has a leader and has registered itself (sessions work then)."""
    if _probe(addr) != "consul":
        return False
    client = consul_client(addr.url, timeout=PROBE_TIMEOUT)
    try:
        _, nodes = client.catalog.service("consul")
    except (requests.RequestException, consul.ConsulException, ValueError):
        return False
    return bool(nodes)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _read_ttl_min(addr: AgentAddress) -> float | None:
    try:
        return agent_session_ttl_min(consul_client(addr.url, timeout=PROBE_TIMEOUT))
    except (ConsulError, AgentUnreachable):
        return None


def _ttl_text(seconds: float | None) -> str:
    return (
        "session_ttl_min unknown"
        if seconds is None
        else f"session_ttl_min {seconds_to_go(seconds)}"
    )


def _use_existing(addr: AgentAddress, wanted_ttl_min: float | None) -> AgentHandle:
    ttl_min = _read_ttl_min(addr)
    line = f"Using the Consul agent already running at {addr.url} ({_ttl_text(ttl_min)})."
    if wanted_ttl_min is not None and ttl_min is not None and ttl_min > wanted_ttl_min:
        wanted = seconds_to_go(wanted_ttl_min)
        line = (
            f"{line[:-1]}; it keeps its own minimum, not the {wanted} asked for "
            f"(restart it with -hcl 'session_ttl_min = \"{wanted}\"' to lower it)."
        )
    return AgentHandle("existing", addr, ttl_min, line)


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:]).strip()
    except OSError:
        return ""


def _terminate(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _start_consul_binary(binary: str, port: int, ttl_min: float | None) -> AgentHandle:
    args = [binary, "agent", "-dev"]
    if port != CONSUL_DEFAULT_HTTP_PORT:
        args += ["-http-port", str(port)]
    if ttl_min is not None:
        args += ["-hcl", f'session_ttl_min = "{seconds_to_go(ttl_min)}"']
    log = tempfile.NamedTemporaryFile(prefix="consul-dev-", suffix=".log", delete=False)  # noqa: SIM115
    command = " ".join(args[1:])
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for the notebook must not kill the agent
            preexec_fn=die_with_parent(signal.SIGTERM),  # nor may a crashed kernel orphan it
        )
    except OSError as exc:
        raise AgentStartFailed(f"could not run `{binary} {command}`: {exc}") from None
    finally:
        log.close()
    addr = AgentAddress("http", "127.0.0.1", port)
    deadline = time.monotonic() + START_TIMEOUT
    while not _ready(addr):
        if proc.poll() is not None:
            raise AgentStartFailed(
                f"`consul {command}` exited with code {proc.returncode} before answering at "
                f"{addr.url}; its output ends with:\n{_tail(log.name)}"
            )
        if time.monotonic() > deadline:
            _terminate(proc)
            raise AgentStartFailed(
                f"`consul {command}` did not answer at {addr.url} within {START_TIMEOUT:.0f}s; "
                f"its output ends with:\n{_tail(log.name)}"
            )
        time.sleep(0.1)
    actual_min = _read_ttl_min(addr)
    line = (
        f"Started `consul {command}` ({binary}) at {addr.url} (pid {proc.pid}, "
        f"{_ttl_text(actual_min)}, log {log.name}); it stops when Python exits."
    )
    return AgentHandle(
        "consul-binary",
        addr,
        actual_min,
        line,
        pid=proc.pid,
        stopper=lambda: _terminate(proc),
        alive=lambda: proc.poll() is None,
    )


def _start_embedded(port: int, ttl_min: float | None) -> AgentHandle:
    from .devagent import DevAgentProcess

    options = {} if ttl_min is None else {"session_ttl_min": seconds_to_go(ttl_min)}
    proc = DevAgentProcess(port=port, **options)
    try:
        proc.start()
    except Exception as exc:
        raise AgentStartFailed(f"could not start the embedded dev agent: {exc}") from None
    addr = parse_address(proc.url)
    actual_min = _read_ttl_min(addr)
    line = (
        f"No Consul agent at {connection.DEFAULT_ADDRESS} and no consul binary on PATH: "
        f"started the embedded dev agent at {addr.url} (pid {proc.pid}, {_ttl_text(actual_min)}); "
        "it stops when Python exits."
    )
    return AgentHandle(
        "embedded",
        addr,
        actual_min,
        line,
        pid=proc.pid,
        stopper=proc.stop,
        alive=lambda: _probe(addr) != "none",
    )


def ensure_agent(session_ttl_min: str | float | None = None) -> AgentHandle:
    """Make sure a Consul agent answers, print one line saying which, and return it.

    In order: the agent already answering at ``CONSUL_HTTP_ADDR`` (or 127.0.0.1:8500);
    else ``consul agent -dev`` from a ``consul`` binary on PATH; else the embedded dev agent
    (on 127.0.0.1:8500, or a free port if 8500 is taken).  An agent started here stops when
    Python exits.  ``session_ttl_min`` lowers the minimum session TTL of a started agent (an
    existing agent keeps its own; the line says so).  Calling it again returns the agent
    started before while it still runs.

    Raises :class:`AgentUnreachable` if ``CONSUL_HTTP_ADDR`` is set and nothing answers
    there, and :class:`AgentStartFailed` (with the agent's output) if starting one fails.
    """
    global _started
    ttl_min = None if session_ttl_min is None else to_seconds(session_ttl_min)
    if ttl_min is not None and ttl_min <= 0:
        raise InvalidArgument(f"session_ttl_min must be positive, got {session_ttl_min!r}")
    with _started_lock:
        if _started is not None and _started.is_running():
            print(f"Reusing the agent started before: {_started.describe()}")
            return _started
        addr, configured = connection.configured_address()
        state = _probe(addr)
        deadline = time.monotonic() + START_TIMEOUT
        while state == "starting" and time.monotonic() < deadline:
            time.sleep(0.2)
            state = _probe(addr)
        if state == "consul":
            handle = _use_existing(addr, ttl_min)
        elif configured:
            what = {
                "none": "nothing answers there",
                "starting": f"the agent there has no cluster leader after {START_TIMEOUT:.0f}s",
                "other": "something answers there, but it is not a Consul agent",
            }[state]
            raise AgentUnreachable(
                f"CONSUL_HTTP_ADDR is {os.environ['CONSUL_HTTP_ADDR']!r} but {what} "
                f"({addr.url}); start your Consul agent there, or unset CONSUL_HTTP_ADDR so "
                "ensure_agent() can start a dev agent",
                addr.address,
            )
        else:
            port = addr.port if _port_free(addr.host, addr.port) else 0
            binary = shutil.which("consul")
            if binary:
                handle = _start_consul_binary(binary, port or _free_port(addr.host), ttl_min)
            else:
                handle = _start_embedded(port, ttl_min)
            atexit.register(handle.stop)
            _started = handle
    print(handle.describe())
    return handle
