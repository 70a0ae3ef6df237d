"""Fixtures for the conformance suite.

By default one embedded dev agent (``DevAgent(port=0, session_ttl_min="100ms")``) is started
in-process for the whole session.  With ``CONSUL_CONFORMANCE_ADDR=http://127.0.0.1:8500`` the
suite runs against that agent instead (for example ``consul agent -dev -hcl
'session_ttl_min="1s"'``); every test then isolates itself with unique key prefixes, service
names and sessions, and removes what it created, so a shared agent is fine.

``CONSUL_CONFORMANCE_FRESH=1`` additionally declares that the given agent holds nothing but
what this suite creates, which enables the few "fresh agent" facts (empty KV store, empty
session list) against it.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import consul
import pytest

from .support import AgentUnderTest, Api, Timing, normalise_address, ttl_min_seconds, wait_for

ADDRESS_VARIABLE = "CONSUL_CONFORMANCE_ADDR"
FRESH_VARIABLE = "CONSUL_CONFORMANCE_FRESH"


def describe_agent(url: str, embedded: bool) -> AgentUnderTest:
    """Wait until the agent at ``url`` has a leader and its node is registered, then read
    its node name, datacenter and minimum session TTL from ``/v1/agent/self``."""
    api = Api(url)

    def has_leader() -> bool:
        try:
            response = api.get("/v1/status/leader", timeout=2)
        except OSError:
            return False
        return response.status_code == 200 and response.json() not in ("", None)

    wait_for(has_leader, timeout=20, interval=0.1, what=f"a leader at {url}")
    self_info = api.get("/v1/agent/self").json()
    node = self_info["Config"]["NodeName"]

    def node_registered() -> bool:
        checks = api.get("/v1/health/node/" + node).json()
        return any(c["CheckID"] == "serfHealth" for c in checks)

    wait_for(node_registered, timeout=20, interval=0.1, what="the serfHealth check")
    return AgentUnderTest(
        url=url,
        node=node,
        datacenter=self_info["Config"]["Datacenter"],
        ttl_min=ttl_min_seconds(self_info["DebugConfig"]["SessionTTLMin"]),
        embedded=embedded,
    )


@pytest.fixture(scope="session")
def agent() -> Iterator[AgentUnderTest]:
    """The agent under test: the one named by CONSUL_CONFORMANCE_ADDR, or a fresh embedded
    dev agent with ``session_ttl_min="100ms"``."""
    address = os.environ.get(ADDRESS_VARIABLE)
    if address:
        yield describe_agent(normalise_address(address), embedded=False)
        return
    from elect_helpers.devagent import DevAgent

    with DevAgent(port=0, session_ttl_min="100ms") as dev:
        yield describe_agent(dev.url, embedded=True)


@pytest.fixture(scope="session")
def api(agent: AgentUnderTest) -> Api:
    return Api(agent.url)


@pytest.fixture(scope="session")
def node(agent: AgentUnderTest) -> str:
    """The agent's node name (``Config.NodeName``), NODE in the facts file."""
    return agent.node


@pytest.fixture(scope="session")
def timing(agent: AgentUnderTest) -> Timing:
    return Timing.for_agent(agent.ttl_min)


@pytest.fixture
def fresh_api(agent: AgentUnderTest) -> Iterator[Api]:
    """An agent in its just-started state: a new embedded agent per test, or the external
    agent when CONSUL_CONFORMANCE_FRESH=1 vouches that it holds nothing else."""
    if not agent.embedded:
        if os.environ.get(FRESH_VARIABLE) != "1":
            pytest.skip(
                "needs a freshly started agent: set CONSUL_CONFORMANCE_FRESH=1 if the agent "
                "at CONSUL_CONFORMANCE_ADDR holds no keys, sessions or services of its own"
            )
        yield Api(agent.url)
        return
    from elect_helpers.devagent import DevAgent

    with DevAgent(port=0, session_ttl_min="100ms") as dev:
        describe_agent(dev.url, embedded=True)
        yield Api(dev.url)


@pytest.fixture
def uid() -> str:
    """A short unique token for key prefixes, service names and session names."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def prefix(api: Api, uid: str) -> Iterator[str]:
    """A unique KV prefix ending in ``/``; the whole tree is deleted afterwards."""
    value = f"conformance/{uid}/"
    yield value
    api.delete("/v1/kv/" + value + "?recurse")


class Sessions:
    """Creates sessions over HTTP and destroys every one of them at teardown."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.ids: list[str] = []

    def create(self, body: Any = None) -> str:
        """Create a session (``body`` is JSON-encoded unless it is a str); assert a 200."""
        if body is None or isinstance(body, str):
            response = self.api.put("/v1/session/create", body)
        else:
            response = self.api.put("/v1/session/create", json_body=body)
        assert response.status_code == 200, (response.status_code, response.text)
        session_id = response.json()["ID"]
        self.ids.append(session_id)
        return session_id

    def track(self, session_id: str) -> str:
        self.ids.append(session_id)
        return session_id

    def destroy_all(self) -> None:
        for session_id in self.ids:
            self.api.put("/v1/session/destroy/" + session_id)


@pytest.fixture
def sessions(api: Api) -> Iterator[Sessions]:
    tracker = Sessions(api)
    yield tracker
    tracker.destroy_all()


def _field(body: dict[str, Any], name: str) -> Any:
    """A request field looked up as Consul does: case-insensitively."""
    return next((v for k, v in body.items() if k.lower() == name.lower()), None)


class Registrations:
    """Registers agent services and checks; deregisters them all at teardown."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.service_ids: list[str] = []
        self.check_ids: list[str] = []

    def service(self, body: dict[str, Any], query: str = "") -> Any:
        """PUT /v1/agent/service/register; tracks the service id for cleanup."""
        self.service_ids.append(_field(body, "ID") or _field(body, "Name") or "")
        return self.api.put("/v1/agent/service/register" + query, json_body=body)

    def check(self, body: dict[str, Any]) -> Any:
        """PUT /v1/agent/check/register; tracks the check id for cleanup."""
        self.check_ids.append(_field(body, "ID") or _field(body, "Name") or "")
        return self.api.put("/v1/agent/check/register", json_body=body)

    def track_service(self, service_id: str) -> None:
        self.service_ids.append(service_id)

    def track_check(self, check_id: str) -> None:
        self.check_ids.append(check_id)

    def remove_all(self) -> None:
        for check_id in filter(None, self.check_ids):
            self.api.put("/v1/agent/check/deregister/" + check_id)
        for service_id in filter(None, self.service_ids):
            self.api.put("/v1/agent/service/deregister/" + service_id)


@pytest.fixture
def registrations(api: Api) -> Iterator[Registrations]:
    tracker = Registrations(api)
    yield tracker
    tracker.remove_all()


@pytest.fixture
def make_client(
    agent: AgentUnderTest, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], consul.Consul]:
    """A factory of python-consul2 clients for the agent under test.  CONSUL_HTTP_* variables
    are cleared first: python-consul2 would let them override the address given."""
    for variable in ("CONSUL_HTTP_ADDR", "CONSUL_HTTP_SSL", "CONSUL_HTTP_SSL_VERIFY"):
        monkeypatch.delenv(variable, raising=False)

    def make() -> consul.Consul:
        return consul.Consul(host=agent.host, port=agent.port, scheme=agent.scheme)

    return make


@pytest.fixture
def client(make_client: Callable[[], consul.Consul]) -> consul.Consul:
    """A python-consul2 client for the agent under test."""
    return make_client()


class HealthTarget:
    """A tiny local HTTP server for HTTP checks: ``/ok`` answers 200, ``/busy`` 429 and
    ``/fail`` 500; it records the User-Agent of every request."""

    RESPONSES: ClassVar[dict[str, tuple[int, bytes]]] = {
        "/ok": (200, b"all good"),
        "/busy": (429, b"slow down"),
        "/fail": (500, b"broken"),
    }

    def __init__(self) -> None:
        target = self
        self.user_agents: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target.user_agents.append(self.headers.get("User-Agent", ""))
                status, body = target.RESPONSES.get(self.path, (404, b"no such path"))
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def health_target() -> Iterator[HealthTarget]:
    target = HealthTarget()
    yield target
    target.close()
