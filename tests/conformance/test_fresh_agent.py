"""Facts about a just-started agent: 17 (empty store), 53 (empty session list), 74, and the
empty agent-local state of section 6.2.

Each test gets its own freshly started embedded agent; against an external agent they run
only when CONSUL_CONFORMANCE_FRESH=1 says it holds nothing but this suite's (cleaned-up)
data.
"""

from __future__ import annotations

from .support import Api, index_of


def test_fact17_root_keys_on_empty_store(fresh_api: Api) -> None:
    """Fact 17 [agent/kvs_endpoint.go :: KVSGetKeys]: on an empty store GET /v1/kv/?keys ->
    200 [] (root prefix), while a non-empty prefix -> 404; ?recurse at the root -> 404."""
    response = fresh_api.get("/v1/kv/?keys")
    assert response.status_code == 200
    assert response.json() == []
    assert index_of(response) >= 1
    assert fresh_api.get("/v1/kv/nope/?keys").status_code == 404
    assert fresh_api.get("/v1/kv/nope/?recurse").status_code == 404
    assert fresh_api.get("/v1/kv/?recurse").status_code == 404


def test_fact53_session_list_is_empty(fresh_api: Api) -> None:
    """Fact 53 [agent/session_endpoint.go :: SessionList]: /v1/session/list on a fresh agent
    -> 200 [] with X-Consul-Index."""
    response = fresh_api.get("/v1/session/list")
    assert response.status_code == 200
    assert response.json() == []
    assert index_of(response) >= 1


def test_fresh_agent_local_state_is_empty(fresh_api: Api) -> None:
    """Section 6.2 [agent/local/state.go (IsConsulServiceID skip)]: /v1/agent/services and
    /v1/agent/checks are {} on a fresh dev agent (consul and serfHealth live only in the
    catalog)."""
    assert fresh_api.get("/v1/agent/services").json() == {}
    assert fresh_api.get("/v1/agent/checks").json() == {}


def test_fact74_fresh_catalog_has_only_consul(fresh_api: Api) -> None:
    """Fact 74 and section 8 [leader_registrator_v1.go :: HandleAliveMember]: a fresh dev
    agent's catalog has exactly the consul service, with no tags."""
    assert fresh_api.get("/v1/catalog/services").json() == {"consul": []}


def test_fresh_kv_index_is_at_least_one(fresh_api: Api) -> None:
    """Section 1.5 / 5.3 [agent/http.go :: setIndex; Server.SetQueryMeta]: even with no KV
    writes at all, a missing key reports X-Consul-Index >= 1, never 0."""
    response = fresh_api.get("/v1/kv/missing")
    assert response.status_code == 404
    assert index_of(response) >= 1
