"""Fixtures for the multi-agent (datacenter) suite.

By default the suite builds its own dev datacenter: one embedded server in this process and
client agents as child processes, all with ``consul agent -dev``'s gossip timings (probe
interval 100 ms, suspicion_mult 3), so a silent client is declared failed within 0.5 s.  With
``CONSUL_DATACENTER_ADDRS=http://server:8500,http://client1:8500,http://client2:8500`` the
address-only tests run against that datacenter instead (a real Consul server and two joined
clients); the tests that signal processes need the embedded datacenter and say so.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from conformance.support import Api, normalise_address, wait_for

from elect_helpers.devagent import DevAgent
from elect_helpers.devagent.gossip import DEV_GOSSIP
from elect_helpers.devagent.hostprocess import ClientAgentProcess

ADDRESSES_VARIABLE = "CONSUL_DATACENTER_ADDRS"


@dataclass
class Agent:
    """One agent of the datacenter under test."""

    api: Api
    node: str
    process: ClientAgentProcess | None = None

    @property
    def address(self) -> str:
        return self.api.url.removeprefix("http://")


@dataclass
class Datacenter:
    """A server and its clients; ``embedded`` when this suite started them."""

    server: Agent
    clients: list[Agent]
    embedded: bool
    server_agent: DevAgent | None = None


def node_of(api: Api) -> str:
    return api.get("/v1/agent/self").json()["Config"]["NodeName"]


def start_client(join: str, name: str) -> Agent:
    """A client agent process joined through ``join``, once its node is in the catalog."""
    process = ClientAgentProcess(join=join, node_name=name, gossip=DEV_GOSSIP, log_level="warn")
    process.start()
    agent = Agent(Api(process.url or ""), name, process)
    wait_for(lambda: serf_status(agent.api, name) == "passing", timeout=10, interval=0.05,
             what=f"{name}'s serfHealth")  # fmt: skip
    return agent


def serf_status(api: Api, node: str) -> str | None:
    """The node's serfHealth status in the catalog (None when the node is not there)."""
    response = api.get("/v1/health/node/" + node)
    if response.status_code != 200:
        return None
    checks = [c for c in response.json() if c["CheckID"] == "serfHealth"]
    return checks[0]["Status"] if checks else None


@pytest.fixture(scope="package")
def datacenter() -> Iterator[Datacenter]:
    """A server with two clients: the embedded one, or the one named by the variable.

    Package-scoped, so its client agents are stopped before any later test counts the
    processes left behind (tests/reliability/test_resource_hygiene.py)."""
    addresses = os.environ.get(ADDRESSES_VARIABLE)
    if addresses:
        apis = [Api(normalise_address(a)) for a in addresses.split(",")]
        agents = [Agent(api, node_of(api)) for api in apis]
        yield Datacenter(agents[0], agents[1:], embedded=False)
        return
    with DevAgent(port=0, session_ttl_min="1s", gossip=DEV_GOSSIP) as server:
        suffix = uuid.uuid4().hex[:6]
        clients = [start_client(server.address, f"client{i}-{suffix}") for i in (1, 2)]
        try:
            yield Datacenter(Agent(Api(server.url), server.node_name), clients, True, server)
        finally:
            for client in clients:
                assert client.process is not None
                client.process.stop()


@pytest.fixture
def embedded(datacenter: Datacenter) -> Datacenter:
    """The datacenter, when this suite controls its processes (else the test is skipped)."""
    if not datacenter.embedded:
        pytest.skip(
            "signals agent processes: runs only on the embedded dev datacenter "
            f"(unset {ADDRESSES_VARIABLE})"
        )
    return datacenter


@pytest.fixture
def new_client(embedded: Datacenter) -> Iterator[Callable[..., Agent]]:
    """Start extra client agents (joined through the server unless told otherwise); each is
    stopped after the test (SIGCONT first if frozen, then SIGTERM)."""
    started: list[Agent] = []

    def start(name: str | None = None, join: str | None = None) -> Agent:
        agent = start_client(join or embedded.server.address,
                             name or f"host-{uuid.uuid4().hex[:8]}")  # fmt: skip
        started.append(agent)
        return agent

    yield start
    for agent in started:
        assert agent.process is not None
        agent.process.stop()


@pytest.fixture
def uid() -> str:
    return "t" + uuid.uuid4().hex[:10]
