"""Behaviour shared by every endpoint: checkable facts 20, 58, 59, 80, 81 (section 1)."""

from __future__ import annotations

import pytest

from .support import Api

# (path, allowed methods in Consul's registration order) [agent/http_register.go :: init]
ENDPOINTS = [
    ("/v1/kv/conformance-methods", "GET,PUT,DELETE"),
    ("/v1/session/create", "PUT"),
    ("/v1/session/destroy/x", "PUT"),
    ("/v1/session/renew/x", "PUT"),
    ("/v1/session/info/x", "GET"),
    ("/v1/session/node/x", "GET"),
    ("/v1/session/list", "GET"),
    ("/v1/agent/self", "GET"),
    ("/v1/agent/services", "GET"),
    ("/v1/agent/checks", "GET"),
    ("/v1/agent/service/register", "PUT"),
    ("/v1/agent/service/deregister/x", "PUT"),
    ("/v1/agent/check/register", "PUT"),
    ("/v1/agent/check/deregister/x", "PUT"),
    ("/v1/agent/check/pass/x", "PUT"),
    ("/v1/agent/check/warn/x", "PUT"),
    ("/v1/agent/check/fail/x", "PUT"),
    ("/v1/agent/check/update/x", "PUT"),
    ("/v1/health/node/x", "GET"),
    ("/v1/health/checks/x", "GET"),
    ("/v1/health/service/x", "GET"),
    ("/v1/health/state/any", "GET"),
    ("/v1/catalog/services", "GET"),
    ("/v1/catalog/service/x", "GET"),
    ("/v1/catalog/nodes", "GET"),
    ("/v1/catalog/node/x", "GET"),
    ("/v1/status/leader", "GET"),
    ("/v1/status/peers", "GET"),
]


def test_fact20_post_on_kv_is_405(api: Api) -> None:
    """Fact 20 [agent/http.go :: wrap, MethodNotAllowedError; agent/http_register.go]:
    POST /v1/kv/a -> 405 'method POST not allowed', Allow: OPTIONS,GET,PUT,DELETE."""
    response = api.request("POST", "/v1/kv/conformance-methods", b"v")
    assert response.status_code == 405
    assert response.text.strip() == "method POST not allowed"
    assert response.headers["Allow"] == "OPTIONS,GET,PUT,DELETE"
    assert api.get("/v1/kv/conformance-methods").status_code == 404


@pytest.mark.parametrize(("path", "allowed"), ENDPOINTS)
def test_wrong_method_is_405_with_allow(api: Api, path: str, allowed: str) -> None:
    """Section 1.1 [agent/http.go :: wrap (isMethodNotAllowed, addAllowHeader)]: a method the
    endpoint does not allow -> 405 'method <M> not allowed', text/plain, with Allow listing
    OPTIONS then the allowed methods."""
    method = "PATCH" if "PUT" in allowed else "PUT"
    response = api.request(method, path)
    assert response.status_code == 405
    assert response.text.strip() == f"method {method} not allowed"
    assert response.headers["Allow"] == f"OPTIONS,{allowed}"
    assert response.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(("path", "allowed"), ENDPOINTS)
def test_options_lists_methods(api: Api, path: str, allowed: str) -> None:
    """Section 1.1 [agent/http.go :: wrap]: OPTIONS on a registered endpoint -> 200, empty
    body, Allow: OPTIONS,<methods>."""
    response = api.request("OPTIONS", path)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Allow"] == f"OPTIONS,{allowed}"


def test_fact81_unknown_path_is_404(api: Api) -> None:
    """Fact 81 [agent/http.go :: Index]: GET /v1/does-not-exist -> 404 'Invalid URL path:
    not a recognized HTTP API endpoint' plus a newline."""
    response = api.get("/v1/does-not-exist")
    assert response.status_code == 404
    assert response.text == "Invalid URL path: not a recognized HTTP API endpoint\n"


def test_unknown_path_with_other_methods_is_404(api: Api) -> None:
    """Section 1.1 [agent/http.go :: Index]: unknown paths are 404 whatever the method."""
    for method in ("PUT", "DELETE", "POST"):
        response = api.request(method, "/v1/session/nonsense")
        assert response.status_code == 404, method
        assert response.text == "Invalid URL path: not a recognized HTTP API endpoint\n"


def test_fact58_stale_and_consistent_conflict(api: Api) -> None:
    """Fact 58 [agent/http.go :: parseConsistency]: ?stale&consistent -> 400 'Cannot
    specify ?stale with ?consistent, conflicting semantics.'"""
    response = api.get("/v1/kv/conformance-a?stale&consistent")
    assert response.status_code == 400
    assert response.text.strip() == (
        "Cannot specify ?stale with ?consistent, conflicting semantics."
    )


def test_stale_and_consistent_alone_are_fine(api: Api) -> None:
    """Section 1.4 [parseConsistency]: ?stale or ?consistent alone is accepted (a missing
    key is still the usual 404)."""
    for query in ("?stale", "?consistent", "?stale=false"):
        assert api.get(f"/v1/kv/conformance-missing{query}").status_code == 404, query


def test_fact59_known_leader_and_last_contact(api: Api) -> None:
    """Fact 59 [agent/consul/rpc.go :: SetQueryMeta; agent/http.go :: setMeta]: a
    non-blocking KV GET has X-Consul-KnownLeader: true and X-Consul-LastContact: 0."""
    response = api.get("/v1/kv/conformance-missing")
    assert response.headers["X-Consul-KnownLeader"] == "true"
    assert response.headers["X-Consul-LastContact"] == "0"


def test_fact80_default_acl_policy_header(api: Api, node: str) -> None:
    """Fact 80 [agent/http.go :: setACLDefaultPolicy; agent/config/default.go]: wrapped
    responses carry X-Consul-Default-ACL-Policy: allow -- successes, writes and errors."""
    requests_to_try = [
        ("GET", "/v1/status/leader"),
        ("GET", "/v1/agent/self"),
        ("GET", "/v1/kv/conformance-missing"),
        ("PUT", "/v1/kv/"),
        ("GET", "/v1/session/list"),
        ("PUT", "/v1/session/destroy/11111111-1111-1111-1111-111111111111"),
        ("GET", f"/v1/health/node/{node}"),
        ("GET", "/v1/catalog/services"),
        ("PUT", "/v1/agent/check/pass/conformance-no-such-check"),
        ("POST", "/v1/status/leader"),
    ]
    for method, path in requests_to_try:
        response = api.request(method, path)
        assert response.headers.get("X-Consul-Default-ACL-Policy") == "allow", (method, path)


def test_error_responses_are_plain_text(api: Api) -> None:
    """Section 1.2 [agent/http.go :: wrap forces text/plain on errors]: 400, 404 and 500
    answers from handlers are text/plain."""
    for method, path in [
        ("PUT", "/v1/kv/"),
        ("PUT", "/v1/session/renew/11111111-1111-1111-1111-111111111111"),
        ("PUT", "/v1/kv/conformance-x?flags=abc"),
    ]:
        response = api.request(method, path)
        assert response.status_code >= 400, path
        assert response.headers["Content-Type"].startswith("text/plain"), path


def test_unknown_datacenter_is_500(api: Api) -> None:
    """Section 1.4 / 2.2 [agent/structs/errors.go errNoDCPath]: ?dc=<other> on a single-DC
    agent -> 500 'No path to datacenter'."""
    response = api.get("/v1/kv/conformance-a?dc=no-such-dc")
    assert response.status_code == 500
    assert response.text.strip() == "No path to datacenter"
    response = api.get("/v1/catalog/services?dc=no-such-dc")
    assert response.status_code == 500
    assert response.text.strip() == "No path to datacenter"


def test_own_datacenter_is_accepted(api: Api) -> None:
    """Section 1.4 [agent/http.go :: parseDC]: ?dc=dc1 names the agent's own datacenter."""
    assert api.get("/v1/catalog/services?dc=dc1").status_code == 200


def test_token_is_accepted_with_acls_off(api: Api) -> None:
    """Section 1.4 [agent/http.go :: parseTokenInternal; ACLs off in dev]: a token in the
    header or the query string changes nothing."""
    response = api.get("/v1/status/leader", headers={"X-Consul-Token": "anything"})
    assert response.status_code == 200
    assert api.get("/v1/status/leader?token=anything").status_code == 200


def test_pretty_output_is_the_same_json(api: Api) -> None:
    """Section 1.3 [agent/http.go :: marshalJSON]: ?pretty changes only whitespace."""
    plain = api.get("/v1/status/peers")
    pretty = api.get("/v1/status/peers?pretty")
    assert pretty.status_code == 200
    assert pretty.json() == plain.json()
