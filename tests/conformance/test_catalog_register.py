"""PUT /v1/catalog/register and /deregister, GET /v1/catalog/datacenters.

Sources: agent/catalog_endpoint.go (CatalogRegister, CatalogDeregister, CatalogDatacenters),
agent/consul/catalog_endpoint.go (Register, nodePreApply, servicePreApply,
vetRegisterWithACL, Deregister), agent/consul/state/catalog.go (ensureRegistrationTxn,
ensureNodeTxn, ensureNoNodeWithSimilarNameTxn).  Every test registers external nodes with
unique names and removes them, so it runs against a shared real agent too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .support import Api, index_of


class ExternalNodes:
    """Registers nodes through the catalog and deregisters them at teardown."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.names: set[str] = set()

    def register(self, body: dict[str, Any]) -> Any:
        if isinstance(body.get("Node"), str):
            self.names.add(body["Node"])
        return self.api.put("/v1/catalog/register", json_body=body)

    def remove_all(self) -> None:
        for name in self.names:
            self.api.put("/v1/catalog/deregister", json_body={"Node": name})


@pytest.fixture
def nodes(api: Api) -> Iterator[ExternalNodes]:
    tracker = ExternalNodes(api)
    yield tracker
    tracker.remove_all()


def node_json(api: Api, name: str) -> dict[str, Any]:
    (found,) = [n for n in api.get("/v1/catalog/nodes").json() if n["Node"] == name]
    return found


def test_register_a_node_with_service_and_check(api: Api, nodes: ExternalNodes, uid: str) -> None:
    """A register answers 200 ``true`` without X-Consul-Index; the check takes its name as
    ID, the request's node, its service's name and tags, and ``critical`` by default."""
    response = nodes.register(
        {
            "Node": uid,
            "Address": "192.0.2.10",
            "TaggedAddresses": {"wan": "198.51.100.10"},
            "NodeMeta": {"rack": "r1"},
            "Service": {"Service": uid + "-db", "Tags": ["primary"], "Port": 5432},
            "Check": {"Name": uid + "-alive", "ServiceID": uid + "-db"},
        }
    )
    assert response.status_code == 200 and response.json() is True
    assert "X-Consul-Index" not in response.headers
    node = node_json(api, uid)
    assert node["Address"] == "192.0.2.10"
    assert node["TaggedAddresses"] == {"wan": "198.51.100.10"}
    assert node["Meta"] == {"rack": "r1"}
    (entry,) = api.get(f"/v1/health/service/{uid}-db").json()
    assert entry["Service"]["ID"] == uid + "-db"  # ID defaults to the name
    assert entry["Service"]["Weights"] == {"Passing": 1, "Warning": 1}
    (check,) = entry["Checks"]
    assert check["CheckID"] == check["Name"] == uid + "-alive"
    assert check["Node"] == uid
    assert check["Status"] == "critical"
    assert (check["ServiceName"], check["ServiceTags"]) == (uid + "-db", ["primary"])


def test_a_node_without_tagged_addresses_or_meta_has_null_maps(
    api: Api, nodes: ExternalNodes, uid: str
) -> None:
    """structs.Node encodes nil maps as null: a node registered without TaggedAddresses or
    NodeMeta shows ``null`` for both."""
    assert nodes.register({"Node": uid, "Address": "192.0.2.11"}).status_code == 200
    node = node_json(api, uid)
    assert node["TaggedAddresses"] is None and node["Meta"] is None


def test_skip_node_update_keeps_the_node(api: Api, nodes: ExternalNodes, uid: str) -> None:
    """RegisterRequest.ChangesNode: with SkipNodeUpdate an existing node is not rewritten
    (no address needed, its ModifyIndex stays); without it the node is replaced."""
    assert nodes.register({"Node": uid, "Address": "192.0.2.12"}).status_code == 200
    before = node_json(api, uid)
    body = {"Node": uid, "SkipNodeUpdate": True, "Service": {"Service": uid}}
    assert nodes.register(body).status_code == 200
    after = node_json(api, uid)
    assert after["Address"] == "192.0.2.12"
    assert after["ModifyIndex"] == before["ModifyIndex"]
    assert nodes.register({"Node": uid, "Address": "192.0.2.13"}).status_code == 200
    moved = node_json(api, uid)
    assert moved["Address"] == "192.0.2.13" and moved["ModifyIndex"] > before["ModifyIndex"]


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"Address": "192.0.2.1"}, "Must provide node"),
        ({"Node": "{uid}", "ID": "abc"}, "Bad node ID: uuid string is wrong length"),
        (
            {"Node": "{uid}", "ID": "00000000-0000-0000-0000-00000000000g"},
            "Bad node ID: encoding/hex: invalid byte: U+0067 'g'",
        ),
        ({"Node": "{uid}"}, "Must provide address if SkipNodeUpdate is not set"),
        (
            {"Node": "{uid}", "Address": "192.0.2.1", "Service": {"ID": "x"}},
            "Must provide service name (Service.Service) when service ID is provided",
        ),
        (
            {"Node": "{uid}", "Address": "192.0.2.1", "Service": {"Service": "s", "Address": "::"}},
            "Invalid service address",
        ),
        (
            {"Node": "{uid}", "Address": "192.0.2.1", "Check": {"Name": "c", "Node": "other"}},
            "Node 'other' for check 'c' doesn't match register request node '{uid}'",
        ),
        (
            {"Node": "{uid}", "Address": "192.0.2.1", "Check": {"Name": "c", "ServiceID": "nope"}},
            "Unknown service ID 'nope' for check ID 'c'",
        ),
        (
            {"Node": "{uid}", "Address": "192.0.2.1", "PeerName": "p"},
            "cannot register requests with PeerName in them",
        ),
    ],
)
def test_register_refusals_are_500s_with_consuls_text(
    api: Api, nodes: ExternalNodes, uid: str, body: dict[str, Any], text: str
) -> None:
    body = {k: (v.format(uid=uid) if isinstance(v, str) else v) for k, v in body.items()}
    response = nodes.register(body)
    assert (response.status_code, response.text) == (500, text.format(uid=uid))
    assert all(n["Node"] != uid for n in api.get("/v1/catalog/nodes").json())


def test_register_decode_errors_are_400s(api: Api) -> None:
    """CatalogRegister: ``Request decode failed: <err>``, unknown fields refused."""
    response = api.put("/v1/catalog/register", json_body={"Nodes": "x"})
    assert (response.status_code, response.text) == (
        400,
        'Request decode failed: json: unknown field "Nodes"',
    )
    response = api.put("/v1/catalog/register", "")
    assert (response.status_code, response.text) == (400, "Request decode failed: EOF")


def test_the_agents_own_node_name_is_reserved_for_its_id(api: Api, node: str) -> None:
    """ensureNoNodeWithSimilarNameTxn: another ID cannot take the name of a node whose
    serfHealth is not critical."""
    own = node_json(api, node)
    other_id = "11111111-2222-3333-4444-555555555555"
    response = api.put(
        "/v1/catalog/register", json_body={"Node": node, "ID": other_id, "Address": "192.0.2.9"}
    )
    assert response.status_code == 500
    assert response.text == (
        f'failed inserting node: Error while renaming Node ID: "{other_id}": Node name {node} '
        f"is reserved by node {own['ID']} with name {node} ({own['Address']})"
    )


def test_deregister_service_check_and_node(api: Api, nodes: ExternalNodes, uid: str) -> None:
    """applyDeregister: ServiceID removes the service and its checks, else CheckID removes a
    check, else the whole node goes; unknown ones still answer ``true``; a deleted node
    moves ``node_last_extinction``, which a read of an unknown node reports."""
    body = {
        "Node": uid,
        "Address": "192.0.2.20",
        "Service": {"Service": uid},
        "Checks": [{"Name": uid + "-svc", "ServiceID": uid}, {"Name": uid + "-node"}],
    }
    assert nodes.register(body).status_code == 200

    def deregister(extra: dict[str, Any]) -> None:
        response = api.put("/v1/catalog/deregister", json_body={"Node": uid, **extra})
        assert (response.status_code, response.json()) == (200, True)

    deregister({"ServiceID": uid})
    checks = api.get("/v1/health/node/" + uid).json()
    assert [c["CheckID"] for c in checks] == [uid + "-node"]
    deregister({"CheckID": uid + "-node"})
    assert api.get("/v1/health/node/" + uid).json() == []
    deregister({"ServiceID": "never-there"})
    deregister({})
    gone = api.get("/v1/catalog/node/" + uid)
    assert gone.json() is None
    assert index_of(api.get("/v1/catalog/node/" + uid + "-never")) == index_of(gone)
    assert index_of(gone) == index_of(api.get("/v1/catalog/nodes"))


def test_deregister_needs_a_node(api: Api) -> None:
    response = api.put("/v1/catalog/deregister", json_body={"ServiceID": "x"})
    assert (response.status_code, response.text) == (500, "Must provide node")


def test_datacenters_lists_the_agents_own(api: Api, agent: Any) -> None:
    """Catalog.ListDatacenters without WAN federation: just the local datacenter, no index."""
    response = api.get("/v1/catalog/datacenters")
    assert response.status_code == 200
    assert response.json() == [agent.datacenter]
    assert "X-Consul-Index" not in response.headers
