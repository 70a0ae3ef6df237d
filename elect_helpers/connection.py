"""Client configuration: which agent to talk to, and a client configured like the CLI.

:func:`consul_client` builds a python-consul2 client the way the ``consul`` CLI reads its
environment (``CONSUL_HTTP_ADDR`` with or without a scheme, ``CONSUL_HTTP_TOKEN``,
``CONSUL_HTTP_SSL``, ``CONSUL_HTTP_SSL_VERIFY``), always with a request timeout longer than
any blocking query these helpers send, so no call can hang forever.  :func:`consul_call`
turns a failed call into one readable helper error.

Finding or starting an agent is :mod:`elect_helpers.agent`; its :func:`ensure_agent` (and
:class:`AgentHandle`) can also be imported from here, as the notebooks do.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import consul
import requests

from .durations import SECOND, parse_duration
from .errors import AgentUnreachable, ConsulError, InvalidArgument

DEFAULT_ADDRESS = "127.0.0.1:8500"
# The longest ``wait`` any helper puts on a blocking query, in seconds.
MAX_BLOCKING_WAIT = 60.0
# Consul adds up to wait/16 of jitter to a blocking query; leave room for that and more.
REQUEST_TIMEOUT = MAX_BLOCKING_WAIT + MAX_BLOCKING_WAIT / 16 + 10.0
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


def __getattr__(name: str) -> Any:
    # The notebooks import ensure_agent from here; it lives in elect_helpers.agent, which
    # imports this module, so it is looked up only when asked for.
    if name in ("ensure_agent", "AgentHandle"):
        from . import agent

        return getattr(agent, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
