"""Membership under random faults, checked against a reference model.

Client agents are killed, frozen, thawed, made to leave and restarted in a seeded random
order (``MEMBERSHIP_SEED=N`` repeats a run; the seed is printed).  After each step the test
waits for the failure detector's window and compares the catalog, the members list and every
session's fate with what the model says Consul would show:

* a live client: node in the catalog, ``serfHealth`` passing, member status 1;
* a killed or frozen client: ``serfHealth`` critical, member status 4; its session bound to
  ``serfHealth`` is gone, its session bound to no check lives;
* a client that left: node gone, member status 3, all its sessions gone;
* a thawed client: alive again, but a session that died stays dead;
* a restarted client (same name, after it failed or left): a new agent with new sessions.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from conformance.support import Api, wait_for

from datacenter.conftest import Agent, Datacenter, serf_status, start_client
from elect_helpers.devagent.gossip import DEV_GOSSIP

STEPS = 10
CLIENTS = 3
SETTLE_MARGIN_S = 1.0


@dataclass
class Host:
    """The model of one client agent and the sessions created through it."""

    name: str
    agent: Agent
    state: str = "alive"  # alive | frozen | dead | left
    sessions: dict[str, bool] = field(default_factory=dict)  # id -> bound to serfHealth
    died: bool = False  # serfHealth went critical at least once since these sessions

    def expected_sessions(self) -> dict[str, bool]:
        """Which of its sessions must still exist."""
        return {
            sid: self.state != "left" and not (bound and self.died)
            for sid, bound in self.sessions.items()
        }


def open_sessions(host: Host) -> None:
    for body, bound in (({}, True), ({"NodeChecks": []}, False)):
        response = host.agent.api.put("/v1/session/create", json_body=body)
        assert response.status_code == 200, response.text
        host.sessions[response.json()["ID"]] = bound


@pytest.fixture
def hosts(embedded: Datacenter) -> Iterator[list[Host]]:
    suffix = uuid.uuid4().hex[:6]
    made = [Host(f"m{i}-{suffix}", start_client(embedded.server.address, f"m{i}-{suffix}"))
            for i in range(CLIENTS)]  # fmt: skip
    for host in made:
        open_sessions(host)
    yield made
    for host in made:
        if host.agent.process is not None:
            host.agent.process.stop()


def step(rng: random.Random, hosts: list[Host], server: Api, join: str) -> str:
    host = rng.choice(hosts)
    process = host.agent.process
    assert process is not None
    if host.state == "alive":
        action = rng.choice(["kill", "freeze", "leave"])
    elif host.state == "frozen":
        action = rng.choice(["thaw", "kill"])
    else:
        action = "restart"
    if action == "kill":
        process.kill()
        host.state, host.died = "dead", True
    elif action == "freeze":
        process.freeze()
        host.state, host.died = "frozen", True
    elif action == "thaw":
        process.thaw()
        host.state = "alive"
    elif action == "leave":
        process.stop()
        host.state = "left"
    else:
        if host.state == "dead":
            wait_for(lambda: serf_status(server, host.name) == "critical", timeout=5,
                     what="the dead host failed")  # fmt: skip
        process.stop()
        host.agent = start_client(join, host.name)
        host.state, host.died, host.sessions = "alive", False, {}
        open_sessions(host)
    return f"{action} {host.name}"


def observed(server: Api, hosts: list[Host]) -> dict[str, object]:
    members = {m["Name"]: m["Status"] for m in server.get("/v1/agent/members").json()}
    nodes = {n["Node"] for n in server.get("/v1/catalog/nodes").json()}
    sessions = {s["ID"] for s in server.get("/v1/session/list").json()}
    out: dict[str, object] = {}
    for host in hosts:
        out[host.name] = (
            members.get(host.name),
            host.name in nodes,
            serf_status(server, host.name),
            {sid: sid in sessions for sid in host.sessions},
        )
    return out


def expected(hosts: list[Host]) -> dict[str, object]:
    out: dict[str, object] = {}
    for host in hosts:
        member, in_catalog, serf = {
            "alive": (1, True, "passing"),
            "frozen": (4, True, "critical"),
            "dead": (4, True, "critical"),
            "left": (3, False, None),
        }[host.state]
        out[host.name] = (member, in_catalog, serf, host.expected_sessions())
    return out


def test_random_kill_freeze_thaw_leave_restart_matches_the_model(
    embedded: Datacenter, hosts: list[Host]
) -> None:
    seed = int(os.environ.get("MEMBERSHIP_SEED", random.randrange(1 << 30)))
    print(f"MEMBERSHIP_SEED={seed}")
    rng = random.Random(seed)
    server = embedded.server.api
    members = len(server.get("/v1/agent/members").json())
    settle = DEV_GOSSIP.detection_bounds_ns(members)[1] / 1e9 + SETTLE_MARGIN_S
    history: list[str] = []
    for _ in range(STEPS):
        history.append(step(rng, hosts, server, embedded.server.address))
        deadline = time.monotonic() + settle
        while observed(server, hosts) != expected(hosts) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert observed(server, hosts) == expected(hosts), (
            f"seed {seed}, after {history}: observed {observed(server, hosts)}"
        )
