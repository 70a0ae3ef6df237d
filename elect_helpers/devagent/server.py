"""``DevAgent``: the embedded dev agent running in this process, on a background thread."""

from __future__ import annotations

import ipaddress
import logging
import threading
from types import TracebackType

from ..durations import SECOND, parse_duration
from .api_common import ApiContext
from .blocking import Parker
from .datacenter import Datacenter
from .gossip import DEV_GOSSIP, GossipConfig
from .httpcore import HTTPService, Router
from .httpserver import DevHTTPServer
from .routes import build_router
from .state import DevState

log = logging.getLogger("elect_helpers.devagent")

DEFAULT_PORT = 8500


def duration_ns(value: str | float | int) -> int:
    """A Go duration string (``"10s"``) or seconds (``0.1``) as integer nanoseconds."""
    if isinstance(value, str):
        return parse_duration(value)
    return round(float(value) * SECOND)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DevAgent:
    """An in-memory stand-in for ``consul agent -dev`` serving Consul's HTTP API.

    ``port=0`` picks a free port; :attr:`address` / :attr:`url` tell which.  Use it as a
    context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        host: str = "127.0.0.1",
        session_ttl_min: str | float = "10s",
        node_name: str | None = None,
        datacenter: str = "dc1",
        gossip: GossipConfig | None = None,
        enable_script_checks: bool = False,
        node_id: str | None = None,
    ) -> None:
        self.host = host
        self.enable_script_checks = enable_script_checks
        self.node_id = node_id
        self.gossip = gossip or DEV_GOSSIP
        self.datacenter_members: Datacenter | None = None
        self.requested_port = port
        self.session_ttl_min_ns = duration_ns(session_ttl_min)
        if self.session_ttl_min_ns <= 0:
            raise ValueError(f"session_ttl_min must be positive, got {session_ttl_min!r}")
        self._node_name = node_name
        self.datacenter = datacenter
        self.state: DevState | None = None
        self._server: DevHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port actually listened on."""
        if self._server is None:
            raise RuntimeError("the dev agent is not running; call start() first")
        return self._server.server_address[1]

    @property
    def address(self) -> str:
        """``host:port``, as ``CONSUL_HTTP_ADDR`` takes it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.address}"

    @property
    def node_name(self) -> str:
        """The agent's node name."""
        if self.state is None:
            raise RuntimeError("the dev agent is not running; call start() first")
        return self.state.node_name

    def start(self) -> DevAgent:
        """Create the state, bind the port and serve on a daemon thread; return ``self``."""
        if self._server is not None:
            return self
        state = DevState(
            node_name=self._node_name,
            datacenter=self.datacenter,
            session_ttl_min_ns=self.session_ttl_min_ns,
            gossip=self.gossip,
            enable_script_checks=self.enable_script_checks,
            node_id=self.node_id,
        )
        try:
            service = HTTPService(Router(), {"X-Consul-Default-ACL-Policy": "allow"})
            parker = Parker(state.store)
            server = DevHTTPServer((self.host, self.requested_port), service, parker)
        except OSError as error:
            state.close()
            parker.stop()
            raise OSError(
                error.errno,
                f"cannot listen on {self.host}:{self.requested_port}: {error.strerror}. "
                "Is another Consul agent already running there? Pick a free port with port=0 "
                "(-http-port 0 on the command line).",
            ) from None
        api = ApiContext(state)
        service.router = build_router(api, server.server_address[1], self.host)
        host = f"[{self.host}]" if ":" in self.host else self.host
        members = Datacenter(state, self.gossip, f"{host}:{server.server_address[1]}")
        members.add_routes(service.router)
        self.datacenter_members = members
        if not is_loopback(self.host):
            log.warning(
                "the embedded dev agent listens on %s, beyond loopback: anyone who can reach "
                "this address can read and change its state (there are no ACLs)",
                self.host,
            )
        state.start()
        self.state = state
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="devagent-http",
            daemon=True,
        )
        self._thread.start()
        log.info("embedded dev agent serving on %s (node %s)", self.url, state.node_name)
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections, release blocking queries, stop timers."""
        server, state = self._server, self.state
        if server is None or state is None:
            return
        server.shutdown()
        server.server_close()
        if self.datacenter_members is not None:
            self.datacenter_members.close()
        state.close()
        server.parker.stop()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> DevAgent:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
