"""Which X-Consul-Index each read reports, and which writes move it.

Consul's state store keeps one index entry per table plus finer ones (``service.<name>``,
``node.<name>``, ``service_last_extinction``); every read reports the entries its state-store
function reads (agent/consul/state/catalog.go, catalog_ce.go; see FIDELITY.md "Raft indexes").
The fresh-agent tests check the start-up state HashiCorp's ``sdk/testutil`` waits for.
"""

from __future__ import annotations

from typing import Any

from .conftest import Registrations, Sessions
from .support import Api, index_of


def read(api: Api, path: str) -> tuple[int, Any]:
    response = api.get(path)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return index_of(response), response.json()


def catalog_service(api: Api, name: str) -> dict[str, Any]:
    (entry,) = read(api, "/v1/catalog/service/" + name)[1]
    return entry


# ----- a fresh agent ------------------------------------------------------------------------


def test_testutil_wait_for_leader_passes_on_a_fresh_agent(fresh_api: Api) -> None:
    """sdk/testutil/server.go :: WaitForLeader: /v1/catalog/nodes answers 200 with
    X-Consul-KnownLeader true and X-Consul-Index >= 2; WaitForSerfCheck then finds serfHealth
    on the first node; the node carries a ``lan`` tagged address (agent syncNodeInfo)."""
    response = fresh_api.get("/v1/catalog/nodes")
    assert response.status_code == 200
    assert response.headers["X-Consul-KnownLeader"] == "true"
    assert index_of(response) >= 2
    nodes = response.json()
    assert len(nodes) == 1
    assert "lan" in nodes[0]["TaggedAddresses"]
    checks = read(fresh_api, "/v1/health/node/" + nodes[0]["Node"])[1]
    assert [c["CheckID"] for c in checks] == ["serfHealth"]


def test_fresh_agent_indexes_follow_the_start_up_writes(fresh_api: Api) -> None:
    """leader.go :: handleAliveMember registers the node, the consul service and serfHealth in
    one raft entry; the agent's anti-entropy (syncNodeInfo) then writes the node's tagged
    addresses and meta.  The reads report: nodes -> the later of the node's and the service's
    ModifyIndex (catalogInsertService also moves ``nodes``); services and checks -> the
    registration's index; health/service/consul -> ``service.consul``, which the node write
    moved too (updateAllServiceIndexesOfNode).  KV and sessions were never written: 1."""
    nodes_index, (node,) = read(fresh_api, "/v1/catalog/nodes")
    consul = catalog_service(fresh_api, "consul")
    serf = read(fresh_api, "/v1/health/node/" + node["Node"])[1][0]
    assert consul["CreateIndex"] == consul["ModifyIndex"] == serf["CreateIndex"]
    assert serf["ModifyIndex"] == serf["CreateIndex"]
    assert node["CreateIndex"] <= consul["CreateIndex"]
    assert nodes_index == max(node["ModifyIndex"], consul["ModifyIndex"])
    assert read(fresh_api, "/v1/catalog/services")[0] == consul["ModifyIndex"]
    assert read(fresh_api, "/v1/health/state/any")[0] == serf["ModifyIndex"]
    assert read(fresh_api, "/v1/health/service/consul")[0] == nodes_index
    assert read(fresh_api, "/v1/catalog/service/consul")[0] == nodes_index
    missing = fresh_api.get("/v1/kv/missing")
    assert missing.status_code == 404 and index_of(missing) == 1
    assert read(fresh_api, "/v1/session/list")[0] == 1


# ----- what moves what ------------------------------------------------------------------


def catalog_indexes(api: Api, node: str) -> dict[str, int]:
    return {
        "nodes": read(api, "/v1/catalog/nodes")[0],
        "services": read(api, "/v1/catalog/services")[0],
        "node": read(api, "/v1/catalog/node/" + node)[0],
        "checks": read(api, "/v1/health/state/any")[0],
        "node checks": read(api, "/v1/health/node/" + node)[0],
        "consul health": read(api, "/v1/health/service/consul")[0],
    }


def test_kv_and_session_writes_move_no_catalog_index(
    api: Api, node: str, prefix: str, sessions: Sessions
) -> None:
    """A KV write moves only ``kvs``; a session only ``sessions`` (kvs.go :: kvsSetTxn,
    session.go :: sessionCreateTxn): no catalog or health read sees a new index."""
    before = catalog_indexes(api, node)
    api.kv_put(prefix + "a", "1")
    session = sessions.create({"Name": "index-test", "Checks": []})
    assert catalog_indexes(api, node) == before
    entry = api.kv_entry(prefix + "a")
    assert entry is not None and entry["ModifyIndex"] > before["nodes"]
    assert read(api, "/v1/session/info/" + session)[0] > entry["ModifyIndex"]


def test_a_service_registration_moves_services_nodes_and_its_own_entry(
    api: Api, node: str, uid: str, registrations: Registrations
) -> None:
    """catalog_ce.go :: catalogInsertService moves ``services``, ``service.<name>``, ``nodes``
    and ``node.<node>``; a service without checks moves no check read, and another service's
    health read keeps its index."""
    before = catalog_indexes(api, node)
    assert registrations.service({"Name": uid}).status_code == 200
    created = catalog_service(api, uid)["ModifyIndex"]
    after = catalog_indexes(api, node)
    assert after["services"] == after["nodes"] == after["node"] == created
    assert after["checks"] == before["checks"]
    assert after["node checks"] == before["node checks"]
    assert after["consul health"] == before["consul health"]
    assert read(api, "/v1/catalog/service/" + uid)[0] == created
    assert read(api, "/v1/health/service/" + uid)[0] == created


def test_a_service_check_moves_checks_and_its_service_only(
    api: Api, node: str, uid: str, registrations: Registrations
) -> None:
    """state/catalog.go :: ensureCheckTxn: a service check moves ``checks`` and its service's
    ``service.<name>`` entry, nothing of the catalog's nodes or services; a TTL update does
    the same."""
    assert registrations.service({"Name": uid}).status_code == 200
    assert (
        registrations.check({"Name": uid + "-ttl", "ServiceID": uid, "TTL": "30s"}).status_code
        == 200
    )
    before = catalog_indexes(api, node)
    assert api.put(f"/v1/agent/check/pass/{uid}-ttl").status_code == 200
    (check,) = read(api, "/v1/health/checks/" + uid)[1]
    after = catalog_indexes(api, node)
    assert check["ModifyIndex"] > before["checks"]
    assert after["checks"] == after["node checks"] == check["ModifyIndex"]
    assert after["nodes"] == before["nodes"]
    assert after["services"] == before["services"]
    assert after["node"] == before["node"]
    assert after["consul health"] == before["consul health"]
    assert read(api, "/v1/health/service/" + uid)[0] == check["ModifyIndex"]
    assert read(api, "/v1/health/checks/" + uid)[0] == check["ModifyIndex"]
    assert read(api, "/v1/catalog/service/" + uid)[0] == check["ModifyIndex"]


def test_a_node_check_moves_every_service_of_the_node(
    api: Api, node: str, uid: str, registrations: Registrations
) -> None:
    """ensureCheckTxn -> updateAllServiceIndexesOfNode: a check without a ServiceID changes
    the health of every service on the node, so each ``service.<name>`` entry moves (the
    ``consul`` service's too); ``nodes`` and ``services`` stay."""
    before = catalog_indexes(api, node)
    assert registrations.check({"Name": uid, "TTL": "30s"}).status_code == 200
    check = api.agent_check(uid)
    assert check is not None
    after = catalog_indexes(api, node)
    moved = after["checks"]
    assert moved > before["checks"]
    assert after["consul health"] == moved
    assert after["nodes"] == before["nodes"]
    assert after["services"] == before["services"]


def test_the_last_instance_leaves_the_extinction_index(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """deleteServiceTxn: removing the last instance of a name deletes ``service.<name>`` and
    moves ``service_last_extinction``, which is what reads of any absent service then report
    (maxIndexForService), so a blocking read of the name wakes and never goes backwards."""
    assert registrations.service({"Name": uid}).status_code == 200
    created = catalog_service(api, uid)["ModifyIndex"]
    assert api.put("/v1/agent/service/deregister/" + uid).status_code == 200
    gone_index, gone = read(api, "/v1/catalog/service/" + uid)
    assert gone == []
    assert gone_index > created
    assert read(api, "/v1/health/service/" + uid)[0] == gone_index
    assert read(api, "/v1/catalog/service/" + uid + "-never")[0] == gone_index
    assert read(api, "/v1/catalog/services")[0] == gone_index


def test_catalog_node_of_an_unknown_node_reports_the_node_extinction_index(api: Api) -> None:
    """state/catalog.go :: nodeServices: an unknown node answers null at the
    ``node_last_extinction`` index (never written on a dev agent -> 1); a one-letter name is
    not looked up by ID and reports 0 -> 1 as well."""
    response = api.get("/v1/catalog/node/no-such-node-anywhere")
    assert response.status_code == 200 and response.json() is None
    assert index_of(response) >= 1
    assert index_of(api.get("/v1/catalog/node/x")) == 1
