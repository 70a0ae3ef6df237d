"""Membership under faults: what the server does when a client agent dies, hangs, wakes up,
leaves, or is refused - against the embedded dev datacenter, whose processes we signal.

Timings are checked against the failure detector's documented window
(``GossipConfig.detection_bounds_ns``) plus a margin for a loaded 2-core machine.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator

import pytest
from conformance.support import Api, wait_for

from datacenter.conftest import Agent, Datacenter, serf_status
from elect_helpers.devagent.client import ClientAgent
from elect_helpers.devagent.gossip import DEV_GOSSIP
from elect_helpers.devagent.hostprocess import ServerAgentProcess

LOAD_MARGIN_S = 1.5


def window_s(members: int) -> float:
    """The latest time from silence to 'failed', plus the load margin."""
    return DEV_GOSSIP.detection_bounds_ns(members)[1] / 1e9 + LOAD_MARGIN_S


def member_status(api: Api, node: str) -> int | None:
    for member in api.get("/v1/agent/members").json():
        if member["Name"] == node:
            return int(member["Status"])
    return None


def session_on(agent: Agent, **body: object) -> str:
    response = agent.api.put("/v1/session/create", json_body=body)
    assert response.status_code == 200, response.text
    return str(response.json()["ID"])


def members_count(datacenter: Datacenter) -> int:
    return len(datacenter.server.api.get("/v1/agent/members").json())


def test_a_killed_client_is_failed_within_the_window_and_its_sessions_die(
    embedded: Datacenter, new_client: Callable[..., Agent], uid: str
) -> None:
    host = new_client()
    server = embedded.server.api
    session = session_on(host, TTL="60s", LockDelay="1s")
    key = f"faults/{uid}/leader"
    assert server.kv_put(key, "me", f"?acquire={session}") is True
    window = window_s(members_count(embedded))
    assert host.process is not None
    killed = time.monotonic()
    host.process.kill()
    wait_for(lambda: server.session_info(session) is None, timeout=window, interval=0.02,
             what="the session of the killed host invalidated")  # fmt: skip
    detected = time.monotonic() - killed
    low = DEV_GOSSIP.detection_bounds_ns(members_count(embedded))[0] / 1e9
    assert detected >= low * 0.9, f"failed after {detected:.3f}s, before the detector can"
    checks = {c["CheckID"]: c for c in server.get(f"/v1/health/node/{host.node}").json()}
    serf = checks["serfHealth"]
    assert (serf["Status"], serf["Output"]) == ("critical", "Agent not live or unreachable")
    assert member_status(server, host.node) == 4
    entry = server.kv_entry(key)
    assert entry is not None and "Session" not in entry
    other = session_on(embedded.clients[0])
    try:
        assert server.kv_put(key, "next", f"?acquire={other}") is False  # lock-delay
        wait_for(lambda: server.kv_put(key, "next", f"?acquire={other}") is True, timeout=5,
                 interval=0.05, what="the lock after its 1 s lock-delay")  # fmt: skip
    finally:
        server.put(f"/v1/session/destroy/{other}")
        server.delete(f"/v1/kv/faults/{uid}/?recurse")


NODE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, urllib.request
    agent, ttl = sys.argv[1], float(sys.argv[2])
    def put(path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(agent + path, data=data, method="PUT")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    session = put("/v1/session/create", {"TTL": f"{ttl}s"})["ID"]
    print(session, flush=True)
    while True:
        time.sleep(ttl / 2)
        put("/v1/session/renew/" + session)
    """
)


@pytest.fixture
def node_process() -> Iterator[Callable[[Agent, float], tuple[subprocess.Popen[str], str]]]:
    """A node process that creates a TTL session through an agent and renews it."""
    started: list[subprocess.Popen[str]] = []

    def start(agent: Agent, ttl: float) -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", NODE_SCRIPT, agent.api.url, str(ttl)],
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None
        return proc, proc.stdout.readline().strip()

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def test_killing_only_the_node_process_leaves_its_session_until_the_ttl(
    embedded: Datacenter,
    new_client: Callable[..., Agent],
    node_process: Callable[[Agent, float], tuple[subprocess.Popen[str], str]],
) -> None:
    host = new_client()
    ttl = 2.0
    proc, session = node_process(host, ttl)
    server = embedded.server.api
    time.sleep(ttl / 2 + 0.2)  # at least one renewal went through the client agent
    proc.kill()
    killed = time.monotonic()
    proc.wait()
    time.sleep(window_s(members_count(embedded)))  # what the serfHealth path would take
    assert server.session_info(session) is not None, "the session died with the process"
    assert serf_status(server, host.node) == "passing"
    wait_for(lambda: server.session_info(session) is None, timeout=2 * ttl + 2, interval=0.05,
             what="the TTL (x2) ending the session")  # fmt: skip
    assert time.monotonic() - killed >= ttl


def test_a_frozen_client_fails_and_comes_back_when_it_wakes(
    embedded: Datacenter, new_client: Callable[..., Agent], uid: str
) -> None:
    host = new_client()
    server = embedded.server.api
    host.api.put("/v1/agent/service/register", json_body={"Name": uid})
    bound = session_on(host)
    checkless = session_on(host, NodeChecks=[])
    assert host.process is not None
    host.process.freeze()
    window = window_s(members_count(embedded))
    wait_for(lambda: serf_status(server, host.node) == "critical", timeout=window,
             interval=0.02, what="serfHealth critical")  # fmt: skip
    assert member_status(server, host.node) == 4
    assert server.session_info(bound) is None
    assert server.session_info(checkless) is not None, "only serfHealth-bound sessions die"
    host.process.thaw()
    wait_for(lambda: serf_status(server, host.node) == "passing", timeout=window,
             interval=0.02, what="serfHealth passing again")  # fmt: skip
    assert member_status(server, host.node) == 1
    assert [i["Node"] for i in server.get(f"/v1/catalog/service/{uid}").json()] == [host.node]
    assert host.api.get("/v1/agent/services").json()[uid]["Service"] == uid
    server.put(f"/v1/session/destroy/{checkless}")


@pytest.mark.parametrize("how", ["http", "sigterm", "sigint"])
def test_a_client_that_leaves_is_deregistered_at_once_with_every_session(
    embedded: Datacenter, new_client: Callable[..., Agent], how: str, uid: str
) -> None:
    host = new_client()
    server = embedded.server.api
    host.api.put("/v1/agent/service/register", json_body={"Name": uid})
    sessions = [session_on(host), session_on(host, NodeChecks=[])]
    assert host.process is not None and host.process._proc is not None
    proc = host.process._proc
    if how == "http":
        assert host.api.put("/v1/agent/leave").status_code == 200
        nodes = {n["Node"] for n in server.get("/v1/catalog/nodes").json()}
        assert host.node not in nodes, "the node must be gone when leave answers"
    else:
        proc.send_signal(15 if how == "sigterm" else 2)
    assert proc.wait(10) == 0
    nodes = {n["Node"] for n in server.get("/v1/catalog/nodes").json()}
    assert host.node not in nodes
    assert all(server.session_info(s) is None for s in sessions)
    assert server.get(f"/v1/catalog/service/{uid}").json() == []
    assert member_status(server, host.node) == 3


def test_no_anti_entropy_sync_reaches_the_server_after_a_leave(
    embedded: Datacenter, uid: str
) -> None:
    """The window, by construction: a sync that ran after the leave (a check result or a
    write through the client's API just before it shut down) used to register the node
    again, and the server then declared it failed (serfHealth critical) instead of left."""
    client = ClientAgent(join=embedded.server.address, node_name=f"late-{uid}", gossip=DEV_GOSSIP)
    client.start()
    try:
        client.leave()
        assert client.sync_now() is False
    finally:
        client.stop()
    server = embedded.server.api
    deadline = time.monotonic() + window_s(members_count(embedded))
    while time.monotonic() < deadline:  # long enough to be declared failed, had it come back
        assert member_status(server, client.node_name) == 3
        assert client.node_name not in {n["Node"] for n in server.get("/v1/catalog/nodes").json()}
        time.sleep(0.05)


def test_joining_through_a_client_works(
    embedded: Datacenter, new_client: Callable[..., Agent]
) -> None:
    first = new_client()
    second = new_client(join=first.address)
    assert serf_status(embedded.server.api, second.node) == "passing"
    session = session_on(second)
    info = embedded.server.api.session_info(session)
    assert info is not None and info["Node"] == second.node
    embedded.server.api.put(f"/v1/session/destroy/{session}")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elect_helpers.devagent", *args],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_a_second_agent_with_a_live_nodes_name_is_refused_and_may_take_a_failed_one(
    embedded: Datacenter, new_client: Callable[..., Agent]
) -> None:
    host = new_client()
    refused = run_cli("-join", embedded.server.address, "-node", host.node, "-http-port", "0")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert f"Node name {host.node} is reserved by node " in refused.stderr
    assert "Error while renaming Node ID" in refused.stderr
    assert host.process is not None
    host.process.kill()
    wait_for(lambda: serf_status(embedded.server.api, host.node) == "critical",
             timeout=window_s(members_count(embedded)), what="the holder failed")  # fmt: skip
    again = new_client(name=host.node)
    assert serf_status(embedded.server.api, again.node) == "passing"


def test_join_where_nothing_answers_is_one_clear_error() -> None:
    result = run_cli("-join", "127.0.0.1:1", "-node", "x", "-http-port", "0")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "nothing answers at 127.0.0.1:1" in result.stderr


def test_join_where_no_dev_agent_answers_is_one_clear_error() -> None:
    web = subprocess.Popen(
        [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert web.stdout is not None
        port = web.stdout.readline().split("port ")[1].split(" ")[0]
        result = run_cli("-join", f"127.0.0.1:{port}", "-node", "x", "-http-port", "0")
    finally:
        web.kill()
        web.wait()
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"no dev agent answers at 127.0.0.1:{port}" in result.stderr


def test_join_with_a_bad_address_says_what_to_give() -> None:
    result = run_cli("-join", "nowhere", "-node", "x", "-http-port", "0")
    assert result.returncode == 1
    assert "is not an address" in result.stderr


def test_force_leave_deregisters_a_failed_client(
    embedded: Datacenter, new_client: Callable[..., Agent]
) -> None:
    host = new_client()
    server = embedded.server.api
    assert host.process is not None
    host.process.kill()
    wait_for(lambda: serf_status(server, host.node) == "critical",
             timeout=window_s(members_count(embedded)), what="failed")  # fmt: skip
    assert embedded.clients[0].api.put(f"/v1/agent/force-leave/{host.node}").status_code == 200
    nodes = {n["Node"] for n in server.get("/v1/catalog/nodes").json()}
    assert host.node not in nodes
    assert member_status(server, host.node) == 3


def test_force_leave_of_a_live_client_changes_nothing(
    embedded: Datacenter, new_client: Callable[..., Agent]
) -> None:
    host = new_client()
    assert embedded.server.api.put(f"/v1/agent/force-leave/{host.node}").status_code == 200
    assert serf_status(embedded.server.api, host.node) == "passing"


def test_a_client_whose_server_is_gone_serves_its_local_state_only(uid: str) -> None:
    from datacenter.conftest import start_client

    with ServerAgentProcess(gossip=DEV_GOSSIP, session_ttl_min="1s", log_level="warn") as server:
        host = start_client(server.address, f"orphan-{uid}")
        try:
            host.api.put("/v1/agent/service/register", json_body={"Name": uid})
            server.kill()
            first = host.api.get("/v1/kv/x")
            assert first.status_code == 500
            assert first.text.startswith("rpc error making call: ") or (
                first.text == "No known Consul servers"
            )
            wait_for(
                lambda: host.api.get("/v1/kv/x").text == "No known Consul servers",
                timeout=window_s(2),
                what="the client declaring its server failed",
            )
            for path in ("/v1/session/list", "/v1/catalog/nodes", "/v1/status/leader"):
                response = host.api.get(path)
                assert (response.status_code, response.text) == (500, "No known Consul servers")
            assert uid in host.api.get("/v1/agent/services").json()
            assert f"service:{uid}" not in host.api.get("/v1/agent/checks").json()
            assert host.api.get("/v1/agent/self").json()["Config"]["NodeName"] == host.node
            server_member = [
                m for m in host.api.get("/v1/agent/members").json() if m["Tags"]["role"] == "consul"
            ]
            assert [m["Status"] for m in server_member] == [4]
        finally:
            assert host.process is not None
            host.process.stop()


def test_a_host_restarted_with_its_node_id_is_the_same_node_at_once(
    embedded: Datacenter, new_client: Callable[..., Agent], uid: str
) -> None:
    import uuid

    from elect_helpers.devagent.hostprocess import ClientAgentProcess

    node_id = str(uuid.uuid4())
    name = f"same-{uid}"
    first = ClientAgentProcess(join=embedded.server.address, node_name=name, node_id=node_id,
                               gossip=DEV_GOSSIP, log_level="warn")  # fmt: skip
    first.start()
    try:
        assert Api(first.url or "").get("/v1/agent/self").json()["Config"]["NodeID"] == node_id
        first.kill()
        again = ClientAgentProcess(join=embedded.server.address, node_name=name, node_id=node_id,
                                   gossip=DEV_GOSSIP, log_level="warn")  # fmt: skip
        again.start()  # accepted before the killed agent is detected: same ID, same node
        try:
            assert serf_status(embedded.server.api, name) == "passing"
            nodes = {
                n["Node"]: n["ID"] for n in embedded.server.api.get("/v1/catalog/nodes").json()
            }
            assert nodes[name] == node_id
        finally:
            again.stop()
    finally:
        first.stop()


def test_a_client_shows_its_session_ttl_min(embedded: Datacenter) -> None:
    from elect_helpers.devagent.hostprocess import ClientAgentProcess

    host = ClientAgentProcess(
        join=embedded.server.address,
        node_name=f"ttl-{time.time_ns()}",
        session_ttl_min="1s",
        gossip=DEV_GOSSIP,
        log_level="warn",
    )
    with host:
        config = Api(host.url or "").get("/v1/agent/self").json()["DebugConfig"]
        assert config["SessionTTLMin"] == "1s"


def test_a_bad_node_id_is_one_clear_error(embedded: Datacenter) -> None:
    result = run_cli("-join", embedded.server.address, "-node", "x", "-node-id", "nope",
                     "-http-port", "0")  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "is not a UUID" in result.stderr
