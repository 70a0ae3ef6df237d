"""Health, catalog, status and agent/self: checkable facts 72-79 and 84 (sections 7, 8)."""

from __future__ import annotations

from .conftest import Registrations
from .support import AgentUnderTest, Api, index_of


def test_fact72_passing_filter(api: Api, uid: str, registrations: Registrations, node: str) -> None:
    """Fact 72 [agent/health_endpoint.go :: healthServiceNodes; agent/structs/structs.go ::
    HealthFilterType.ExcludeBasedOnStatus; py:tests/test_std.py :: test_health_service]:
    with a critical TTL check ?passing -> []; after pass -> one entry whose Checks hold
    serfHealth and service:<svc>."""
    service = f"web-{uid}"
    registrations.service({"Name": service, "Port": 8080, "Check": {"TTL": "30s"}})
    assert api.get(f"/v1/health/service/{service}?passing").json() == []
    unfiltered = api.get(f"/v1/health/service/{service}").json()
    assert len(unfiltered) == 1
    api.put(f"/v1/agent/check/pass/service:{service}")
    entries = api.get(f"/v1/health/service/{service}?passing").json()
    assert len(entries) == 1
    entry = entries[0]
    assert set(entry) >= {"Node", "Service", "Checks"}
    assert {c["CheckID"] for c in entry["Checks"]} == {"serfHealth", f"service:{service}"}
    assert all(c["Status"] == "passing" for c in entry["Checks"])
    assert entry["Node"]["Node"] == node
    assert entry["Service"]["ID"] == service
    assert entry["Service"]["Service"] == service
    assert entry["Service"]["Port"] == 8080
    assert entry["Service"]["Tags"] == []


def test_passing_filter_values(api: Api, uid: str, registrations: Registrations) -> None:
    """Section 7 [healthServiceNodes]: ?passing=1 and ?passing=true filter, ?passing=false
    does not; a warning check is excluded by the filter as well."""
    service = f"web-{uid}"
    registrations.service({"Name": service, "Check": {"TTL": "30s"}})
    api.put(f"/v1/agent/check/warn/service:{service}")
    for query, expected in (("?passing=1", 0), ("?passing=true", 0), ("?passing=false", 1)):
        response = api.get(f"/v1/health/service/{service}{query}")
        assert response.status_code == 200, query
        assert len(response.json()) == expected, query


def test_port_zero_is_omitted_from_health_service(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """Section 7 [agent/structs/structs.go :: NodeService `Port` omitempty]: a service with
    no port has no Port key in /v1/health/service."""
    service = f"web-{uid}"
    registrations.service({"Name": service})
    entries = api.get(f"/v1/health/service/{service}").json()
    assert len(entries) == 1
    assert "Port" not in entries[0]["Service"]
    assert entries[0]["Checks"][0]["CheckID"] == "serfHealth"


def test_fact73_unknown_service_and_bad_passing(api: Api, uid: str) -> None:
    """Fact 73 [agent/health_endpoint.go]: unknown service -> 200 [] with X-Consul-Index;
    ?passing=xyz -> 400 'Invalid value for ?passing'."""
    response = api.get(f"/v1/health/service/unknown-{uid}")
    assert response.status_code == 200
    assert response.json() == []
    assert index_of(response) >= 1
    response = api.get(f"/v1/health/service/web-{uid}?passing=xyz")
    assert response.status_code == 400
    assert response.text.strip() == "Invalid value for ?passing"


def test_health_missing_names_are_400(api: Api) -> None:
    """Section 7 [agent/health_endpoint.go]: empty service / node / state -> 400 with
    'Missing service name', 'Missing node name', 'Missing check state'."""
    cases = {
        "/v1/health/service/": "Missing service name",
        "/v1/health/checks/": "Missing service name",
        "/v1/health/node/": "Missing node name",
        "/v1/health/state/": "Missing check state",
        "/v1/catalog/service/": "Missing service name",
    }
    for path, text in cases.items():
        response = api.get(path)
        assert response.status_code == 400, path
        assert response.text.strip() == text, path


def test_health_checks_and_state(api: Api, uid: str, registrations: Registrations) -> None:
    """Section 7 [HealthServiceChecks, HealthChecksInState]: /v1/health/checks/<svc> lists
    only the service's checks; /v1/health/state/critical includes a critical check and
    /v1/health/state/passing does not."""
    service = f"web-{uid}"
    registrations.service({"Name": service, "Check": {"TTL": "30s"}})
    checks = api.get(f"/v1/health/checks/{service}")
    assert checks.status_code == 200
    assert [c["CheckID"] for c in checks.json()] == [f"service:{service}"]
    assert index_of(checks) >= 1
    assert api.get(f"/v1/health/checks/unknown-{uid}").json() == []
    critical = {c["CheckID"] for c in api.get("/v1/health/state/critical").json()}
    passing = {c["CheckID"] for c in api.get("/v1/health/state/passing").json()}
    assert f"service:{service}" in critical
    assert f"service:{service}" not in passing
    assert "serfHealth" in passing


def test_fact74_catalog_services_has_consul(api: Api) -> None:
    """Fact 74 [agent/consul/leader_registrator_v1.go :: HandleAliveMember;
    agent/consul/catalog_endpoint.go :: servicesTagsByName]: /v1/catalog/services is an
    object containing "consul": [], with X-Consul-Index."""
    response = api.get("/v1/catalog/services")
    assert response.status_code == 200
    services = response.json()
    assert isinstance(services, dict)
    assert services["consul"] == []
    assert index_of(response) >= 1


def test_catalog_services_lists_tags(api: Api, uid: str, registrations: Registrations) -> None:
    """Section 7 [servicesTagsByName]: a registered service appears with its tags
    de-duplicated (order not guaranteed)."""
    service = f"web-{uid}"
    registrations.service({"Name": service, "Tags": ["b", "a", "b"]})
    services = api.get("/v1/catalog/services").json()
    assert sorted(services[service]) == ["a", "b"]


def test_fact75_catalog_service_consul(api: Api, node: str) -> None:
    """Fact 75 [HandleAliveMember; agent/catalog_endpoint.go :: catalogServiceNodes]:
    /v1/catalog/service/consul -> one entry, ServiceID consul, ServicePort 8300, Node NODE,
    ServiceTags []."""
    response = api.get("/v1/catalog/service/consul")
    assert response.status_code == 200
    entries = response.json()
    assert len(entries) == 1
    entry = entries[0]
    assert entry["ServiceID"] == "consul"
    assert entry["ServiceName"] == "consul"
    assert entry["ServicePort"] == 8300
    assert entry["Node"] == node
    assert entry["ServiceTags"] == []
    assert index_of(response) >= 1


def test_catalog_service_unknown_is_empty(api: Api, uid: str) -> None:
    """Section 7 [catalogServiceNodes]: an unknown service -> 200 []."""
    response = api.get(f"/v1/catalog/service/unknown-{uid}")
    assert response.status_code == 200
    assert response.json() == []


def test_catalog_nodes_and_node(api: Api, node: str) -> None:
    """Section 7/8 [CatalogNodes, CatalogNodeServices]: /v1/catalog/nodes lists NODE with
    Address 127.0.0.1; /v1/catalog/node/NODE shows the consul service."""
    response = api.get("/v1/catalog/nodes")
    assert response.status_code == 200
    nodes = {n["Node"]: n for n in response.json()}
    assert nodes[node]["Address"] == "127.0.0.1"
    assert index_of(response) >= 1
    detail = api.get(f"/v1/catalog/node/{node}").json()
    assert detail["Node"]["Node"] == node
    assert "consul" in detail["Services"]


def test_fact76_serf_health_check(api: Api, node: str) -> None:
    """Fact 76 [agent/structs/catalog.go consts; HandleAliveMember]: /v1/health/node/NODE has
    serfHealth, 'Serf Health Status', passing, 'Agent alive and reachable'."""
    response = api.get(f"/v1/health/node/{node}")
    assert response.status_code == 200
    checks = {c["CheckID"]: c for c in response.json()}
    serf = checks["serfHealth"]
    assert serf["Name"] == "Serf Health Status"
    assert serf["Status"] == "passing"
    assert serf["Output"] == "Agent alive and reachable"
    assert serf["ServiceID"] == ""
    assert serf["Node"] == node
    assert index_of(response) >= 1


def test_health_node_unknown_is_empty(api: Api, uid: str) -> None:
    """Section 7 [HealthNodeChecks]: an unknown node -> 200 []."""
    response = api.get(f"/v1/health/node/unknown-{uid}")
    assert response.status_code == 200
    assert response.json() == []


def test_fact77_status_leader(api: Api) -> None:
    """Fact 77 [agent/consul/status_endpoint.go :: Status.Leader; agent/consul/server.go ::
    Stats; py:tests/test_std.py :: test_status_leader]: the leader is the JSON string
    "127.0.0.1:8300", equal to agent/self Stats.consul.leader_addr; no X-Consul-Index."""
    response = api.get("/v1/status/leader")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == "127.0.0.1:8300"
    assert "X-Consul-Index" not in response.headers
    stats = api.get("/v1/agent/self").json()["Stats"]
    assert stats["consul"]["leader_addr"] == response.json()


def test_fact78_status_peers(api: Api) -> None:
    """Fact 78 [agent/consul/status_endpoint.go :: Status.Peers; py:tests/test_std.py ::
    test_status_peers]: peers is a JSON array containing "127.0.0.1:8300"."""
    response = api.get("/v1/status/peers")
    assert response.status_code == 200
    peers = response.json()
    assert isinstance(peers, list)
    assert "127.0.0.1:8300" in peers


def test_fact79_agent_self(api: Api, agent: AgentUnderTest) -> None:
    """Fact 79 [agent/agent_endpoint.go :: AgentSelf; api/agent.go :: Agent.Self/NodeName]:
    Config.Datacenter dc1, Config.Server true, Config.NodeName a non-empty string; every
    top-level value is a JSON object; DebugConfig.SessionTTLMin is a Go duration string."""
    response = api.get("/v1/agent/self")
    assert response.status_code == 200
    body = response.json()
    assert body["Config"]["Datacenter"] == "dc1"
    assert body["Config"]["Server"] is True
    assert isinstance(body["Config"]["NodeName"], str)
    assert body["Config"]["NodeName"] == agent.node != ""
    assert {"Config", "DebugConfig", "Member", "Stats"} <= set(body)
    for key, value in body.items():
        assert isinstance(value, dict), f"{key} is {type(value).__name__}"
    assert isinstance(body["DebugConfig"]["SessionTTLMin"], str)
    stats = body["Stats"]["consul"]
    assert stats["server"] == "true"
    assert stats["leader"] == "true"
    for group in body["Stats"].values():
        assert all(isinstance(v, str) for v in group.values())


def test_agent_self_has_no_index(api: Api) -> None:
    """Section 1.5 / 5.3 [agent endpoints do not call setMeta]: /v1/agent/self,
    /v1/agent/services and /v1/agent/checks carry no X-Consul-Index."""
    for path in ("/v1/agent/self", "/v1/agent/services", "/v1/agent/checks"):
        response = api.get(path)
        assert response.status_code == 200, path
        assert "X-Consul-Index" not in response.headers, path


def test_fact84_query_backend_headers(api: Api, uid: str, registrations: Registrations) -> None:
    """Fact 84 [agent/rpcclient/health/health.go :: ServiceNodes; agent/health_endpoint_test.go]:
    a blocking /v1/health/service (index > 0) answers X-Consul-Query-Backend: streaming; a
    non-blocking one answers blocking-query.  index=1 is below any real index, so the
    blocking call returns at once."""
    service = f"web-{uid}"
    registrations.service({"Name": service, "Check": {"TTL": "30s", "Status": "passing"}})
    plain = api.get(f"/v1/health/service/{service}")
    assert plain.headers["X-Consul-Query-Backend"] == "blocking-query"
    assert plain.headers["X-Consul-KnownLeader"] == "true"
    blocking = api.get(f"/v1/health/service/{service}?index=1&wait=5s")
    assert blocking.status_code == 200
    assert blocking.headers["X-Consul-Query-Backend"] == "streaming"
    assert index_of(blocking) > 1

    def summary(entries: list[dict]) -> list[tuple]:
        return [
            (e["Service"]["ID"], sorted((c["CheckID"], c["Status"]) for c in e["Checks"]))
            for e in entries
        ]

    assert summary(blocking.json()) == summary(plain.json())


def test_rpc_reads_say_blocking_query_backend(api: Api, node: str) -> None:
    """Section 1.5 [agent/http.go :: setQueryBackend]: RPC-backed reads (KV, session,
    catalog, health node) carry X-Consul-Query-Backend: blocking-query."""
    for path in (
        "/v1/kv/conformance-missing-key",
        "/v1/session/list",
        "/v1/catalog/services",
        f"/v1/health/node/{node}",
    ):
        response = api.get(path)
        assert response.headers.get("X-Consul-Query-Backend") == "blocking-query", path


def test_effective_consistency_only_on_catalog_and_health(api: Api, node: str) -> None:
    """Section 1.5 (code reading) [catalog/health handlers set ConsistencyLevel; KV and
    session do not]: X-Consul-Effective-Consistency is 'leader' on catalog and health reads
    and absent on KV and session reads."""
    for path in ("/v1/catalog/services", f"/v1/health/node/{node}"):
        assert api.get(path).headers.get("X-Consul-Effective-Consistency") == "leader", path
    for path in ("/v1/kv/conformance-missing-key", "/v1/session/list"):
        assert "X-Consul-Effective-Consistency" not in api.get(path).headers, path
