"""Conformance: what a Consul datacenter of one server and joined clients answers.

Only agent addresses are used, so these run against a real datacenter too
(``CONSUL_DATACENTER_ADDRS``).  Each client agent owns its services and checks; KV, sessions
and the catalog are the datacenter's, whichever agent answers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conformance.support import Api, wait_for

from datacenter.conftest import Agent, Datacenter, serf_status


@pytest.fixture
def one(datacenter: Datacenter) -> Agent:
    return datacenter.clients[0]


@pytest.fixture
def two(datacenter: Datacenter) -> Agent:
    return datacenter.clients[1]


@pytest.fixture
def service(one: Agent, uid: str) -> Iterator[str]:
    """A service with a TTL check registered through the first client."""
    body = {"Name": uid, "Check": {"TTL": "30s", "CheckID": f"service:{uid}"}}
    response = one.api.put("/v1/agent/service/register", json_body=body)
    assert response.status_code == 200, response.text
    yield uid
    one.api.put(f"/v1/agent/service/deregister/{uid}")


def every(datacenter: Datacenter) -> list[Agent]:
    return [datacenter.server, *datacenter.clients]


def test_members_lists_the_server_and_every_client_alive(datacenter: Datacenter) -> None:
    names = {a.node for a in every(datacenter)}
    for agent in every(datacenter):

        def alive(agent: Agent = agent) -> dict[str, dict]:
            members = {m["Name"]: m for m in agent.api.get("/v1/agent/members").json()}
            return members if all(members.get(n, {}).get("Status") == 1 for n in names) else {}

        wait_for(alive, timeout=5, interval=0.05, what=f"every member alive in {agent.node}'s view")
        members = alive()
        assert members[datacenter.server.node]["Tags"]["role"] == "consul"
        for client in datacenter.clients:
            assert members[client.node]["Tags"]["role"] == "node"


def test_every_member_is_a_catalog_node_with_a_passing_serf_check(
    datacenter: Datacenter,
) -> None:
    for agent in every(datacenter):
        nodes = {n["Node"] for n in agent.api.get("/v1/catalog/nodes").json()}
        assert {a.node for a in every(datacenter)} <= nodes
    for member in every(datacenter):
        check = next(
            c
            for c in datacenter.server.api.get(f"/v1/health/node/{member.node}").json()
            if c["CheckID"] == "serfHealth"
        )
        assert (check["Status"], check["Output"]) == ("passing", "Agent alive and reachable")


def test_a_session_created_through_a_client_defaults_to_its_node(
    datacenter: Datacenter, one: Agent
) -> None:
    session = one.api.put("/v1/session/create", json_body={"Name": "x"}).json()["ID"]
    try:
        for agent in every(datacenter):
            info = agent.api.session_info(session)
            assert info is not None
            assert info["Node"] == one.node
            assert info["NodeChecks"] == ["serfHealth"]
        mine = datacenter.server.api.get(f"/v1/session/node/{one.node}").json()
        assert session in [s["ID"] for s in mine]
    finally:
        one.api.put(f"/v1/session/destroy/{session}")


def test_an_empty_create_body_through_a_client_also_gets_its_node(one: Agent) -> None:
    session = one.api.put("/v1/session/create").json()["ID"]
    try:
        info = one.api.session_info(session)
        assert info is not None and info["Node"] == one.node
    finally:
        one.api.put(f"/v1/session/destroy/{session}")


def test_a_session_can_name_another_node_explicitly(
    datacenter: Datacenter, one: Agent, two: Agent
) -> None:
    session = one.api.put("/v1/session/create", json_body={"Node": two.node}).json()["ID"]
    try:
        info = datacenter.server.api.session_info(session)
        assert info is not None and info["Node"] == two.node
    finally:
        one.api.put(f"/v1/session/destroy/{session}")


def test_kv_is_the_datacenters_whichever_agent_answers(
    datacenter: Datacenter, one: Agent, two: Agent, uid: str
) -> None:
    key = f"conformance/{uid}/k"
    try:
        assert one.api.kv_put(key, "from one") is True
        for agent in every(datacenter):
            entry = agent.api.kv_entry(key)
            assert entry is not None and entry["Key"] == key
        session = two.api.put("/v1/session/create").json()["ID"]
        assert two.api.kv_put(key, "two", f"?acquire={session}") is True
        other = one.api.put("/v1/session/create").json()["ID"]
        assert one.api.kv_put(key, "one", f"?acquire={other}") is False
        one.api.put(f"/v1/session/destroy/{other}")
        entry = datacenter.server.api.kv_entry(key)
        assert entry is not None and entry["Session"] == session
        two.api.put(f"/v1/session/destroy/{session}")
    finally:
        datacenter.server.api.delete(f"/v1/kv/conformance/{uid}/?recurse")


def test_a_blocking_query_through_a_client_wakes_on_a_write_through_another(
    one: Agent, two: Agent, uid: str
) -> None:
    import threading

    key = f"conformance/{uid}/watched"
    one.api.kv_put(key, "v1")
    index = int(one.api.get("/v1/kv/" + key).headers["X-Consul-Index"])
    answers: list[int] = []

    def watch() -> None:
        response = one.api.get(f"/v1/kv/{key}?index={index}&wait=10s", timeout=30)
        answers.append(int(response.headers["X-Consul-Index"]))

    thread = threading.Thread(target=watch)
    thread.start()
    two.api.kv_put(key, "v2")
    thread.join(20)
    assert answers and answers[0] > index
    one.api.delete(f"/v1/kv/conformance/{uid}/?recurse")


def test_services_and_checks_are_the_local_state_of_the_agent_they_were_registered_on(
    datacenter: Datacenter, one: Agent, two: Agent, service: str
) -> None:
    assert service in one.api.get("/v1/agent/services").json()
    assert service not in two.api.get("/v1/agent/services").json()
    assert service not in datacenter.server.api.get("/v1/agent/services").json()
    assert f"service:{service}" in one.api.get("/v1/agent/checks").json()
    assert f"service:{service}" not in two.api.get("/v1/agent/checks").json()
    for agent in every(datacenter):
        instances = agent.api.get(f"/v1/catalog/service/{service}").json()
        assert [i["Node"] for i in instances] == [one.node]
        health = agent.api.get(f"/v1/health/service/{service}").json()
        assert [h["Node"]["Node"] for h in health] == [one.node]
        assert {c["Node"] for c in health[0]["Checks"]} == {one.node}


def test_only_the_owning_agent_updates_a_ttl_check(
    datacenter: Datacenter, one: Agent, two: Agent, service: str
) -> None:
    check = f"service:{service}"
    missing = two.api.put(f"/v1/agent/check/pass/{check}")
    assert missing.status_code == 404
    assert f'Unknown check ID "{check}"' in missing.text
    assert one.api.put(f"/v1/agent/check/pass/{check}?note=ok").status_code == 200
    wait_for(
        lambda: [
            c["Status"]
            for c in datacenter.server.api.get(f"/v1/health/checks/{service}").json()
        ]
        == ["passing"],
        timeout=5, interval=0.05, what="the check passing in the catalog",
    )  # fmt: skip


def test_a_session_bound_to_a_clients_service_check_dies_when_that_agent_fails_it(
    datacenter: Datacenter, one: Agent, two: Agent, service: str
) -> None:
    check = f"service:{service}"
    one.api.put(f"/v1/agent/check/pass/{check}")
    body = {"ServiceChecks": [{"ID": check}], "TTL": "60s"}
    created = one.api.put("/v1/session/create", json_body=body)
    assert created.status_code == 200, created.text
    session = created.json()["ID"]
    one.api.put(f"/v1/agent/check/fail/{check}")
    wait_for(lambda: two.api.session_info(session) is None, timeout=5, interval=0.05,
             what="the session invalidated")  # fmt: skip


def test_deregistering_through_the_owner_removes_it_from_the_catalog(
    datacenter: Datacenter, one: Agent, uid: str
) -> None:
    one.api.put("/v1/agent/service/register", json_body={"Name": uid})
    assert datacenter.server.api.get(f"/v1/catalog/service/{uid}").json() != []
    one.api.put(f"/v1/agent/service/deregister/{uid}")
    wait_for(lambda: datacenter.server.api.get(f"/v1/catalog/service/{uid}").json() == [],
             timeout=5, interval=0.05, what="the service gone")  # fmt: skip


def test_status_leader_is_the_same_through_every_agent(datacenter: Datacenter) -> None:
    leaders = {agent.api.get("/v1/status/leader").json() for agent in every(datacenter)}
    assert len(leaders) == 1 and leaders != {""}


def test_serf_health_is_per_node(datacenter: Datacenter) -> None:
    for client in datacenter.clients:
        assert serf_status(datacenter.server.api, client.node) == "passing"


def test_agent_self_says_which_agent_answers(datacenter: Datacenter) -> None:
    for agent in every(datacenter):
        config = agent.api.get("/v1/agent/self").json()["Config"]
        assert config["NodeName"] == agent.node
    assert Api(datacenter.server.api.url).get("/v1/agent/self").json()["Config"]["Server"]
