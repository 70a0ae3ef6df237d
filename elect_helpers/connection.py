"""Connecting to a Consul agent: a configured client, and making sure an agent is running.

:func:`consul_client` builds a python-consul2 client the way the ``consul`` CLI reads its
environment (``CONSUL_HTTP_ADDR`` with or without a scheme, ``CONSUL_HTTP_TOKEN``,
``CONSUL_HTTP_SSL``, ``CONSUL_HTTP_SSL_VERIFY``), always with a request timeout longer than
any blocking query these helpers send, so no call can hang forever.

:func:`ensure_agent` makes sure an agent answers and prints one line saying which one:
an agent already running at the configured address; else ``consul agent -dev`` from a
``consul`` binary on PATH; else the embedded dev agent.  A configured address that does
not answer is an error, never a reason to start something else.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import consul
import requests

from .children import die_with_parent
from .durations import SECOND, parse_duration, seconds_to_go, to_seconds
from .errors import AgentStartFailed, AgentUnreachable, ConsulError, InvalidArgument

DEFAULT_ADDRESS = "127.0.0.1:8500"
CONSUL_DEFAULT_HTTP_PORT = 8500
# The longest ``wait`` any helper puts on a blocking query, in seconds.
MAX_BLOCKING_WAIT = 60.0
# Consul adds up to wait/16 of jitter to a blocking query; leave room for that and more.
REQUEST_TIMEOUT = MAX_BLOCKING_WAIT + MAX_BLOCKING_WAIT / 16 + 10.0
PROBE_TIMEOUT = 2.0
START_TIMEOUT = 30.0
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # Go's strconv.ParseBool
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


@dataclass(frozen=True)
class AgentAddress:
    """Where an agent's HTTP API listens: ``scheme://host:port``."""

    scheme: str
    host: str
    port: int

    @property
    def address(self) -> str:
        """``host:port``, the form ``CONSUL_HTTP_ADDR`` takes."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_address(text: str, *, what: str = "address") -> AgentAddress:
    """Parse ``host:port`` or ``http(s)://host:port`` as the Consul CLI accepts them.

    Raises :class:`InvalidArgument` naming ``what`` for anything else (no port, a path,
    a scheme other than http/https).
    """
    rest = text.strip()
    scheme = "http"
    if "://" in rest:
        scheme, rest = rest.split("://", 1)
        if scheme not in ("http", "https"):
            raise InvalidArgument(
                f"{what} {text!r} has scheme {scheme!r}; use http://host:port or https://host:port"
            )
    host, sep, port_text = rest.rstrip("/").rpartition(":")
    if not sep or not host or "/" in rest.rstrip("/") or not port_text.isdigit():
        raise InvalidArgument(
            f"{what} {text!r} is not host:port; write it like 127.0.0.1:8500 "
            "or http://127.0.0.1:8500"
        )
    port = int(port_text)
    if not 0 < port < 65536:
        raise InvalidArgument(f"{what} {text!r} has port {port}; use a port from 1 to 65535")
    return AgentAddress(scheme, host, port)


def _env_bool(name: str) -> bool | None:
    value = os.environ.get(name, "")
    if not value:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidArgument(f"{name}={value!r} is not a boolean; set it to true or false")


def configured_address() -> tuple[AgentAddress, bool]:
    """The agent address from the environment, and whether the user configured it.

    ``CONSUL_HTTP_ADDR`` if set (``CONSUL_HTTP_SSL=true`` switches a scheme-less address to
    https), else ``127.0.0.1:8500``.
    """
    raw = os.environ.get("CONSUL_HTTP_ADDR", "")
    addr = parse_address(raw or DEFAULT_ADDRESS, what="CONSUL_HTTP_ADDR")
    if raw and "://" not in raw and _env_bool("CONSUL_HTTP_SSL"):
        addr = AgentAddress("https", addr.host, addr.port)
    return addr, bool(raw)


def _build_client(
    addr: AgentAddress,
    *,
    token: str | None,
    verify: bool,
    cert: object,
    timeout: float,
    dc: str | None = None,
    consistency: str = "default",
) -> consul.Consul:
    client = consul.Consul(
        host=addr.host, port=addr.port, scheme=addr.scheme, consistency=consistency, dc=dc
    )
    # python-consul2's constructor lets CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN override its own
    # arguments; put back the address, token and timeout decided here.
    client.http = client.http_connect(addr.host, addr.port, addr.scheme, verify, cert, timeout)
    client.scheme = addr.scheme
    client.token = token
    return client


def consul_client(
    address: str | None = None, token: str | None = None, *, timeout: float = REQUEST_TIMEOUT
) -> consul.Consul:
    """A python-consul2 client configured like the ``consul`` CLI.

    ``address`` (``host:port`` or ``scheme://host:port``) wins over ``CONSUL_HTTP_ADDR``;
    ``token`` wins over ``CONSUL_HTTP_TOKEN``.  ``CONSUL_HTTP_SSL_VERIFY=false`` turns off
    certificate checks.  Every request times out after ``timeout`` seconds, which by
    default is longer than any blocking query these helpers send.
    """
    if timeout <= 0:
        raise InvalidArgument(f"timeout must be positive seconds, got {timeout!r}")
    env_addr, _ = configured_address()  # also validates a malformed CONSUL_HTTP_ADDR
    addr = env_addr
    if address:
        addr = parse_address(address)
        if "://" not in address and _env_bool("CONSUL_HTTP_SSL"):
            addr = AgentAddress("https", addr.host, addr.port)
    verify = _env_bool("CONSUL_HTTP_SSL_VERIFY")
    return _build_client(
        addr,
        token=token or os.environ.get("CONSUL_HTTP_TOKEN") or None,
        verify=True if verify is None else verify,
        cert=None,
        timeout=timeout,
    )


def client_address(client: consul.Consul) -> AgentAddress:
    """The address a client talks to."""
    http = client.http
    return AgentAddress(http.scheme, http.host, int(http.port))


def clone_client(client: consul.Consul, *, timeout: float | None = None) -> consul.Consul:
    """A new client for the same agent, token and TLS settings, with its own connections.

    Threads that block (watches, renewals) use their own clone so that they never share a
    ``requests`` session with other threads.
    """
    http = client.http
    return _build_client(
        client_address(client),
        token=client.token,
        verify=http.verify,
        cert=http.cert,
        timeout=http.timeout if timeout is None else timeout,
        dc=client.dc,
        consistency=client.consistency,
    )


def _short_reason(exc: requests.RequestException, timeout: object) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout}s"
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    return text.splitlines()[0][:160] if text else type(exc).__name__


def _split_consul_exception(exc: consul.ConsulException) -> tuple[int | None, str]:
    text = str(exc)
    # These three carry only the body; the others start with the status code.
    for cls, status in ((consul.NotFound, 404), (consul.ACLPermissionDenied, 403)):
        if isinstance(exc, cls):
            return status, text
    if isinstance(exc, consul.ACLDisabled):
        return 401, text
    head, _, body = text.partition(" ")
    if head.isdigit():
        return int(head), body
    return None, text


@contextlib.contextmanager
def consul_call(client: consul.Consul, action: str) -> Iterator[None]:
    """Turn transport failures and Consul error answers into one-line helper errors.

    Connection refused / timeouts become :class:`AgentUnreachable`; an error status from
    Consul becomes :class:`ConsulError` with the status and body.  ``action`` starts the
    message (e.g. ``"creating a session"``).
    """
    try:
        yield
    except requests.RequestException as exc:
        addr = client_address(client)
        raise AgentUnreachable(
            f"{action}: no Consul agent answered at {addr.url} "
            f"({_short_reason(exc, client.http.timeout)}); start one with "
            "elect_helpers.connection.ensure_agent() or `consul agent -dev`, or set "
            "CONSUL_HTTP_ADDR to your agent's address",
            addr.address,
        ) from None
    except consul.ConsulException as exc:
        status, body = _split_consul_exception(exc)
        shown = f"{status} {body}".strip() if status else body
        raise ConsulError(f"{action}: Consul answered {shown}", status, body) from None


def agent_session_ttl_min(client: consul.Consul) -> float:
    """The agent's ``session_ttl_min`` in seconds, read from ``/v1/agent/self``.

    Consul reports it as ``DebugConfig.SessionTTLMin`` (a Go duration string).  Raises
    :class:`ConsulError` if the agent does not show it (e.g. an ACL token without
    ``agent:read``).
    """
    with consul_call(client, "reading the agent's configuration"):
        info = client.agent.self()
    raw = (info.get("DebugConfig") or {}).get("SessionTTLMin")
    if isinstance(raw, str):
        return parse_duration(raw) / SECOND
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return raw / SECOND
    raise ConsulError(
        "reading the agent's configuration: /v1/agent/self has no DebugConfig.SessionTTLMin "
        "(the token may lack agent:read); Consul's default minimum session TTL is 10s"
    )


# --------------------------------------------------------------------------- ensure_agent


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
        f"No Consul agent at {DEFAULT_ADDRESS} and no consul binary on PATH: started the "
        f"embedded dev agent at {addr.url} (pid {proc.pid}, {_ttl_text(actual_min)}); "
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
        addr, configured = configured_address()
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
