"""``?filter`` and ``?node-meta`` on agent, health and catalog reads (Consul 1.20 / go-bexpr
v0.1.2) [agent/agent_endpoint.go, agent/health_endpoint.go, agent/catalog_endpoint.go,
agent/consul/{health,catalog}_endpoint.go (``bexpr.CreateFilter``), agent/rpcclient/health/
view.go (streamed health), go-bexpr grammar.peg / validate.go / evaluate.go].

Facts checked: which struct each read filters (selectors are Go field names), the operators'
semantics (``in``/``contains`` on slices, maps and strings; any-element matching through
slices; missing map keys), and the answer to a bad expression: 500 with go-bexpr's text,
wrapped by ``CreateFilter`` except on ``/v1/agent/checks`` (validated on the first check) and
the streamed health view.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Registrations
from .support import Api, index_of

WRAP = "Failed to create boolean expression evaluator: "


def q(expression: str) -> str:
    """``?filter=<expression>``, percent-encoded."""
    return "filter=" + urllib.parse.quote(expression, safe="")


@pytest.fixture
def web(uid: str, registrations: Registrations) -> str:
    """Two instances of one service: a (tags v1, primary; meta env=prod; port 8080; TTL check
    left critical) and b (tag v2; meta env=dev; port 9090; TTL check passing)."""
    name = f"web-{uid}"
    for suffix, tags, env, port in (
        ("a", ["v1", "primary"], "prod", 8080),
        ("b", ["v2"], "dev", 9090),
    ):
        response = registrations.service(
            {
                "ID": f"{name}-{suffix}",
                "Name": name,
                "Tags": tags,
                "Meta": {"env": env},
                "Port": port,
                "Check": {"TTL": "30s"},
            }
        )
        assert response.status_code == 200, response.text
    assert registrations.api.put(f"/v1/agent/check/pass/service:{name}-b").status_code == 200
    return name


def ids(entries: list[dict[str, Any]]) -> set[str]:
    return {e["Service"]["ID"] for e in entries}


def test_health_service_filters_check_service_nodes(api: Api, web: str, node: str) -> None:
    """``/v1/health/service`` filters ``structs.CheckServiceNode``: Node.*, Service.*, Checks.*;
    ``contains``/``in`` test slice membership, a comparison through ``Checks`` holds when any
    check matches, and ``not`` negates the whole comparison."""
    cases = {
        "Service.Tags contains v1": {"a"},
        "v2 in Service.Tags": {"b"},
        "primary not in Service.Tags": {"b"},
        "Service.Meta.env == prod": {"a"},
        'Service.Meta["env"] != prod': {"b"},
        "Service.Port == 9090": {"b"},
        'Service.Port == "0x1f90"': {"a"},  # base-0 integers, as strconv.ParseInt(s, 0, 0)
        "Checks.Status == critical": {"a"},
        "Checks.Status != critical": {"a", "b"},  # serfHealth passes on both
        "not Checks.Status == critical": {"b"},
        f"Node.Node == `{node}` and Service.Meta is not empty": {"a", "b"},
        "Service.Meta.missing != x and x not in Service.Meta.missing": {"a", "b"},
        "Service.Meta.missing == x or Service.Tags is empty": set(),
        '"prim" in Service.Tags': set(),  # slice membership is exact
        '"eb-" in Service.Service': {"a", "b"},  # on a string, `in` is a substring test
        "Service.ID matches `-a$`": {"a"},
        "Service.ID not matches `-a$`": {"b"},
        "(Service.Port == 8080 or Service.Port == 9090) and not Service.Tags contains v2": {"a"},
    }
    for expression, expected in cases.items():
        response = api.get(f"/v1/health/service/{web}?{q(expression)}")
        assert response.status_code == 200, (expression, response.text)
        assert ids(response.json()) == {f"{web}-{s}" for s in expected}, expression


def test_filter_combines_with_tag_and_passing(api: Api, web: str) -> None:
    """The filter narrows what ``?tag`` and ``?passing`` keep (all conditions must hold)."""
    both = api.get(f"/v1/health/service/{web}?tag=v1&{q('Service.Port == 8080')}").json()
    assert ids(both) == {f"{web}-a"}
    none = api.get(f"/v1/health/service/{web}?passing&{q('Service.Port == 8080')}").json()
    assert none == []


def test_catalog_reads_filter_their_structs(api: Api, web: str, node: str) -> None:
    """Catalog service filters ``structs.ServiceNode`` (Service* and Node* fields side by
    side); catalog services filters the same and answers only names with a kept instance;
    catalog node filters its ``NodeService`` map; catalog nodes filters ``structs.Node``."""
    instances = api.get(f"/v1/catalog/service/{web}?{q('ServiceMeta.env == dev')}").json()
    assert [i["ServiceID"] for i in instances] == [f"{web}-b"]
    tagged = api.get(
        f"/v1/catalog/service/{web}?{q(f'ServiceTags contains v1 and Node == `{node}`')}"
    )
    assert [i["ServiceID"] for i in tagged.json()] == [f"{web}-a"]

    services = api.get(
        f"/v1/catalog/services?{q(f'ServiceName == `{web}` and ServicePort == 9090')}"
    )
    assert services.status_code == 200
    assert services.json() == {web: ["v2"]}
    everything = api.get(f"/v1/catalog/services?{q(f'ServiceName == `{web}`')}").json()
    assert set(everything) == {web}
    assert sorted(everything[web]) == ["primary", "v1", "v2"]

    on_node = api.get(f"/v1/catalog/node/{node}?{q(f'Service == `{web}` and Port == 8080')}").json()
    assert set(on_node["Services"]) == {f"{web}-a"}
    assert on_node["Node"]["Node"] == node

    nodes = api.get(f"/v1/catalog/nodes?{q(f'Node == `{node}`')}").json()
    assert [n["Node"] for n in nodes] == [node]
    assert api.get(f"/v1/catalog/nodes?{q('Node == `no-such-node`')}").json() == []


def test_health_check_reads_filter_health_checks(api: Api, web: str, node: str) -> None:
    """``/v1/health/checks``, ``/node`` and ``/state`` filter ``structs.HealthCheck``."""
    checks = api.get(f"/v1/health/checks/{web}?{q('Status == passing')}").json()
    assert [c["CheckID"] for c in checks] == [f"service:{web}-b"]
    mine = api.get(f"/v1/health/node/{node}?{q(f'ServiceName == `{web}`')}").json()
    assert {c["CheckID"] for c in mine} == {f"service:{web}-a", f"service:{web}-b"}
    critical = api.get(f"/v1/health/state/critical?{q(f'ServiceName == `{web}`')}").json()
    assert [c["ServiceID"] for c in critical] == [f"{web}-a"]
    tagged = api.get(f"/v1/health/state/any?{q(f'v2 in ServiceTags and ServiceName == `{web}`')}")
    assert [c["ServiceID"] for c in tagged.json()] == [f"{web}-b"]


def test_agent_reads_filter_their_structs(api: Api, web: str, node: str) -> None:
    """``/v1/agent/services`` filters ``api.AgentService``, ``/checks`` ``structs.HealthCheck``,
    ``/members`` ``serf.Member``; the answers keep their shape (maps by ID, a list)."""
    services = api.get(f"/v1/agent/services?{q(f'Service == `{web}` and Meta.env == prod')}")
    assert set(services.json()) == {f"{web}-a"}
    checks = api.get(f"/v1/agent/checks?{q(f'ServiceName == `{web}` and Status == critical')}")
    assert set(checks.json()) == {f"service:{web}-a"}
    members = api.get(f"/v1/agent/members?{q(f'Name == `{node}` and Tags.role == consul')}")
    assert [m["Name"] for m in members.json()] == [node]
    assert api.get(f"/v1/agent/members?{q('Status == 4')}").json() == []


NO_MATCH = "no match found, expected: "
BAD_EXPRESSIONS = [
    ("/v1/catalog/nodes", "Node==host-name",
     '1:11 (10): ' + NO_MATCH + '".", "[", [ \\t\\r\\n], [a-zA-Z0-9_] or EOF'),
    ("/v1/catalog/nodes", "Meta.a == 1 and", "1:16 (15): " + NO_MATCH + "[ \\t\\r\\n]"),
    ("/v1/agent/checks", "Status ==",
     "1:10 (9): " + NO_MATCH + '"-", "0", "\\"", "`", [ \\t\\r\\n], [1-9] or [a-zA-Z]'),
    ("/v1/catalog/nodes", "(Node == a", '1:11 (10): rule "grouping": Unmatched parentheses'),
    ("/v1/catalog/nodes", 'Node == "x', '1:11 (10): rule "string": Unterminated string literal'),
    ("/v1/catalog/nodes", "Node == 1x", '1:10 (9): rule "number": Invalid number literal'),
    ("/v1/health/checks/x", "ExposedPort == 80a",
     '1:18 (17): rule "number": Invalid number literal'),
    ("/v1/catalog/nodes", "CreateIndex == 1", 'Selector "CreateIndex" is not valid'),
    ("/v1/catalog/nodes", "Meta == x", 'Invalid match operator "Equal" for selector "Meta"'),
    ("/v1/health/service/x", "Service.Meta.k is empty",
     'Invalid match operator "Is Empty" for selector "Service.Meta.k"'),
    ("/v1/health/state/any", "Nodes == x", 'Selector "Nodes" is not valid'),
    ("/v1/health/node/x", "ExposedPort == abc",
     'Failed to coerce value "abc" for selector "ExposedPort": '
     'strconv.ParseInt: parsing "abc": invalid syntax'),
    ("/v1/catalog/service/x", "ServiceTags == a",
     'Invalid match operator "Equal" for selector "ServiceTags"'),
    ("/v1/catalog/services", "Service == x", 'Selector "Service" is not valid'),
    ("/v1/catalog/node/x", "ServiceName == x", 'Selector "ServiceName" is not valid'),
    ("/v1/health/service/x", "Service.Weights.Passing == yes",
     'Failed to coerce value "yes" for selector "Service.Weights.Passing": '
     'strconv.ParseInt: parsing "yes": invalid syntax'),
    ("/v1/agent/services", "Datacenter == dc1", 'Selector "Datacenter" is not valid'),
    ("/v1/agent/members", "Addr == x", 'Invalid match operator "Equal" for selector "Addr"'),
]  # fmt: skip


@pytest.mark.parametrize(("path", "expression", "error"), BAD_EXPRESSIONS)
def test_bad_expressions_get_go_bexpr_errors(
    api: Api, path: str, expression: str, error: str
) -> None:
    """A bad expression is a 500 with go-bexpr's error, wrapped by ``CreateFilter``."""
    response = api.get(f"{path}?{q(expression)}")
    assert (response.status_code, response.text) == (500, WRAP + error)


def test_catalog_filter_errors_carry_empty_meta(api: Api) -> None:
    """Catalog and health handlers defer ``setMeta`` on the (empty) reply, so the 500 still
    carries ``X-Consul-Index: 1`` and ``X-Consul-KnownLeader: false``; ``/v1/health/service``
    sets meta only on success."""
    response = api.get(f"/v1/catalog/nodes?{q('Nope == 1')}")
    assert response.status_code == 500
    assert index_of(response) == 1
    assert response.headers["X-Consul-KnownLeader"] == "false"
    health = api.get(f"/v1/health/service/x?{q('Nope == 1')}")
    assert health.status_code == 500
    assert "X-Consul-Index" not in health.headers


def test_agent_checks_validate_selectors_on_the_first_check(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """``AgentChecks`` creates its filter without a data type: a bad selector is found only
    when a check is evaluated, and that error is not wrapped."""
    registrations.check({"Name": f"c-{uid}", "TTL": "30s"})
    response = api.get(f"/v1/agent/checks?{q('Nope == 1')}")
    assert (response.status_code, response.text) == (500, 'Selector "Nope" is not valid')


def test_streamed_health_service_errors_are_not_wrapped(api: Api, web: str) -> None:
    """A blocking (``?index``) health read uses the streaming view, which validates with
    ``CreateEvaluatorForType``: the same error without ``CreateFilter``'s prefix."""
    index = index_of(api.get(f"/v1/health/service/{web}"))
    response = api.get(f"/v1/health/service/{web}?index={index}&wait=1s&{q('Service.Nope == 1')}")
    assert (response.status_code, response.text) == (500, 'Selector "Service.Nope" is not valid')
    kept = api.get(f"/v1/health/service/{web}?index=1&{q('Service.Tags contains v2')}")
    assert ids(kept.json()) == {f"{web}-b"}


def test_empty_filter_is_no_filter_and_kv_ignores_filter(api: Api, web: str, prefix: str) -> None:
    """``?filter=`` is the nil filter; KV reads never look at ``?filter``."""
    assert len(api.get(f"/v1/health/service/{web}?filter=").json()) == 2
    api.kv_put(f"{prefix}/k", "v")
    assert api.get(f"/v1/kv/{prefix}/k?{q('nonsense ((')}").status_code == 200


def test_node_meta_matches_exactly(api: Api, web: str, node: str) -> None:
    """``?node-meta=key:value`` keeps entries whose node has exactly that meta pair
    (``SatisfiesMetaFilters``); a dev agent's node carries ``consul-network-segment: ""``."""
    segment = urllib.parse.quote("consul-network-segment:", safe="")
    assert [n["Node"] for n in api.get(f"/v1/catalog/nodes?node-meta={segment}").json()] == [node]
    assert api.get("/v1/catalog/nodes?node-meta=consul-network-segment:x").json() == []
    assert len(api.get(f"/v1/catalog/service/{web}?node-meta={segment}").json()) == 2
    assert api.get(f"/v1/catalog/service/{web}?node-meta=rack:r1").json() == []
    assert web in api.get(f"/v1/catalog/services?node-meta={segment}").json()
    assert api.get("/v1/catalog/services?node-meta=rack:r1").json() == {}
    assert len(api.get(f"/v1/health/service/{web}?node-meta={segment}").json()) == 2
    assert api.get(f"/v1/health/service/{web}?node-meta=rack:r1").json() == []
    assert api.get(f"/v1/health/checks/{web}?node-meta=rack:r1").json() == []
    assert len(api.get(f"/v1/health/checks/{web}?node-meta={segment}").json()) == 2
    assert api.get("/v1/health/state/any?node-meta=rack:r1").json() == []
    # Reads whose handlers never parse ?node-meta ignore it.
    assert api.get(f"/v1/health/node/{node}?node-meta=rack:r1").json() != []
    assert api.get(f"/v1/catalog/node/{node}?node-meta=rack:r1").json() is not None


def test_streamed_node_meta_is_a_substring_test(api: Api, web: str) -> None:
    """The streaming view turns ``?node-meta=k:v`` into ``"v" in Node.Meta.k``: an empty
    value matches any existing key, and a key that is not an identifier breaks the
    expression with go-bexpr's parse error."""
    entries = api.get(f"/v1/health/service/{web}?index=1&node-meta=consul-network-segment:")
    assert entries.status_code == 500
    assert entries.text == (
        '1:23 (22): no match found, expected: ".", "[", [ \\t\\r\\n], [a-zA-Z0-9_] or EOF'
    )
    kept = api.get(f"/v1/health/service/{web}?index=1&node-meta=rack:")
    assert (kept.status_code, kept.json()) == (200, [])


@pytest.fixture
def racks(api: Api, uid: str) -> Iterator[str]:
    """Three external nodes (registered through the catalog) running service ``db-<uid>``:
    ``<uid>-1`` with meta rack=r1, ``<uid>-2`` with rack=r12, ``<uid>-3`` with no meta."""
    service = f"db-{uid}"
    for number, meta in ((1, {"rack": "r1"}), (2, {"rack": "r12"}), (3, None)):
        body: dict[str, Any] = {
            "Node": f"{uid}-{number}",
            "Address": f"192.0.2.{number}",
            "Service": {"Service": service, "Tags": [f"t{number}"], "Port": 5432},
        }
        if meta is not None:
            body["NodeMeta"] = meta
        assert api.put("/v1/catalog/register", json_body=body).status_code == 200
    yield service
    for number in (1, 2, 3):
        api.put("/v1/catalog/deregister", json_body={"Node": f"{uid}-{number}"})


def test_node_meta_and_filters_on_registered_nodes(api: Api, uid: str, racks: str) -> None:
    """``?node-meta=rack:r1`` keeps only the node whose rack is exactly r1 (not r12, not the
    node without meta), on every read that takes it; ``?filter`` reaches the same meta as
    ``Meta.rack`` (nodes), ``NodeMeta.rack`` (service nodes) and ``Node.Meta.rack``."""
    one = f"{uid}-1"
    nodes = api.get("/v1/catalog/nodes?node-meta=rack:r1").json()
    assert [n["Node"] for n in nodes] == [one]
    assert [
        n["Node"] for n in api.get(f"/v1/catalog/service/{racks}?node-meta=rack:r1").json()
    ] == [one]
    assert api.get("/v1/catalog/services?node-meta=rack:r1").json() == {racks: ["t1"]}
    entries = api.get(f"/v1/health/service/{racks}?node-meta=rack:r1").json()
    assert [e["Node"]["Node"] for e in entries] == [one]
    both = api.get("/v1/catalog/nodes?node-meta=rack:r1&node-meta=rack:r12").json()
    assert [n["Node"] for n in both] == [f"{uid}-2"]  # the last value of a repeated key wins

    by_filter = api.get(f"/v1/catalog/nodes?{q(f'Meta.rack == r1 and Node matches `^{uid}`')}")
    assert [n["Node"] for n in by_filter.json()] == [one]
    prefixed = api.get(f"/v1/catalog/service/{racks}?{q('r1 in NodeMeta.rack')}").json()
    assert sorted(n["Node"] for n in prefixed) == [one, f"{uid}-2"]  # substring of the value
    keyed = api.get(f"/v1/catalog/service/{racks}?{q('rack in NodeMeta')}").json()
    assert sorted(n["Node"] for n in keyed) == [one, f"{uid}-2"]
    no_meta = api.get(f"/v1/catalog/service/{racks}?{q('NodeMeta is empty')}").json()
    assert [n["Node"] for n in no_meta] == [f"{uid}-3"]
    health = api.get(f"/v1/health/service/{racks}?{q('Node.Meta.rack != r1')}").json()
    assert sorted(e["Node"]["Node"] for e in health) == [f"{uid}-2", f"{uid}-3"]


def test_streamed_node_meta_matches_substrings(api: Api, uid: str, racks: str) -> None:
    """On the streaming backend ``?node-meta=rack:r1`` is ``"r1" in Node.Meta.rack``: it
    keeps rack r12 too (``newFilterEvaluator``), unlike the blocking-query backend."""
    entries = api.get(f"/v1/health/service/{racks}?index=1&node-meta=rack:r1").json()
    assert sorted(e["Node"]["Node"] for e in entries) == [f"{uid}-1", f"{uid}-2"]
