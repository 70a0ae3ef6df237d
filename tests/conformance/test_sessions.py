"""Sessions: checkable facts 35-50, 52-54 (consul-facts.md section 3).

Timer behaviour (fact 51, renew, lock-delay) is in test_timing.py.
"""

from __future__ import annotations

import re

from elect_helpers.durations import SECOND, format_duration, parse_duration

from .conftest import Registrations, Sessions
from .support import AgentUnderTest, Api, index_of

NO_SUCH_SESSION = "11111111-1111-1111-1111-111111111111"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SESSION_KEYS = {
    "ID",
    "Name",
    "Node",
    "LockDelay",
    "Behavior",
    "TTL",
    "NodeChecks",
    "ServiceChecks",
    "CreateIndex",
    "ModifyIndex",
}


def test_fact35_create_without_body(api: Api, sessions: Sessions) -> None:
    """Fact 35 [agent/session_endpoint.go :: SessionCreate]: PUT with no body -> 200
    {"ID": "<36-char lower-case uuid>"}."""
    response = api.put("/v1/session/create")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"ID"}
    sessions.track(body["ID"])
    assert UUID.match(body["ID"]), body["ID"]


def test_fact36_defaults(api: Api, sessions: Sessions, node: str) -> None:
    """Fact 36 [agent/session_endpoint.go :: SessionCreate, fixupEmptySessionChecks;
    api-docs/session.mdx]: defaults LockDelay 15s (ns), Behavior release, TTL "", NodeChecks
    [serfHealth], ServiceChecks null, Node NODE, no Checks key."""
    session_id = sessions.create()
    response = api.get(f"/v1/session/info/{session_id}")
    assert response.status_code == 200
    body = response.json()
    assert len(body) == 1
    info = body[0]
    assert set(info) == SESSION_KEYS
    assert info["ID"] == session_id
    assert info["Name"] == ""
    assert info["LockDelay"] == 15000000000
    assert info["Behavior"] == "release"
    assert info["TTL"] == ""
    assert info["NodeChecks"] == ["serfHealth"]
    assert info["ServiceChecks"] is None
    assert info["Node"] == node
    assert "Checks" not in info
    assert info["CreateIndex"] == info["ModifyIndex"] >= 1


def test_fact37_info_unknown_session_is_empty_list(api: Api) -> None:
    """Fact 37 [agent/session_endpoint.go :: SessionGet]: unknown id -> 200 [] with
    X-Consul-Index."""
    response = api.get(f"/v1/session/info/{NO_SUCH_SESSION}")
    assert response.status_code == 200
    assert response.json() == []
    assert index_of(response) >= 1


def test_fact38_renew_unknown_session_is_404(api: Api) -> None:
    """Fact 38 [agent/session_endpoint.go :: SessionRenew]: unknown id -> 404 "Session id
    '<id>' not found"."""
    response = api.put(f"/v1/session/renew/{NO_SUCH_SESSION}")
    assert response.status_code == 404
    assert response.text.strip() == f"Session id '{NO_SUCH_SESSION}' not found"


def test_fact39_destroy_unknown_session_is_true(api: Api) -> None:
    """Fact 39 [agent/consul/session_endpoint.go :: Session.Apply]: destroying an unknown id
    -> 200 true (idempotent)."""
    response = api.put(f"/v1/session/destroy/{NO_SUCH_SESSION}")
    assert response.status_code == 200
    assert response.json() is True


def test_destroy_known_session_removes_it(api: Api, sessions: Sessions) -> None:
    """Section 3.3 [SessionDestroy]: destroy -> 200 true; info is [] afterwards, and a
    second destroy is still true."""
    session_id = sessions.create()
    assert api.put(f"/v1/session/destroy/{session_id}").json() is True
    assert api.session_info(session_id) is None
    assert api.put(f"/v1/session/destroy/{session_id}").json() is True


def test_fact40_ttl_below_minimum_is_500(api: Api, agent: AgentUnderTest) -> None:
    """Fact 40 [agent/consul/session_endpoint.go :: Session.Apply]: a TTL below
    session_ttl_min -> 500 "Invalid Session TTL '<ns>', must be between [<min>=24h0m0s]".
    The fact's 5s/10s example is scaled to the agent's minimum."""
    minimum = round(agent.ttl_min * SECOND)
    too_short = minimum // 2
    response = api.put("/v1/session/create", json_body={"TTL": format_duration(too_short)})
    assert response.status_code == 500
    assert response.text.strip() == (
        f"Invalid Session TTL '{too_short}', must be between [{format_duration(minimum)}=24h0m0s]"
    )


def test_fact41_ttl_above_24h_is_500(api: Api, agent: AgentUnderTest) -> None:
    """Fact 41 [Session.Apply]: TTL 25h -> 500 "Invalid Session TTL '90000000000000', must
    be between [<min>=24h0m0s]"."""
    minimum = format_duration(round(agent.ttl_min * SECOND))
    response = api.put("/v1/session/create", json_body={"TTL": "25h"})
    assert response.status_code == 500
    assert response.text.strip() == (
        f"Invalid Session TTL '90000000000000', must be between [{minimum}=24h0m0s]"
    )


def test_ttl_at_bounds_is_accepted(api: Api, agent: AgentUnderTest, sessions: Sessions) -> None:
    """Section 3.2 [Session.Apply]: TTLs equal to the minimum and to 24h are accepted (the
    bounds are inclusive), and the TTL string is stored exactly as given."""
    sessions.create({"TTL": format_duration(round(agent.ttl_min * SECOND))})
    session_id = sessions.create({"TTL": "24h"})
    assert api.session_info(session_id)["TTL"] == "24h"


def test_zero_ttl_means_no_ttl(api: Api, sessions: Sessions) -> None:
    """Section 3.2 [Session.Apply]: TTL "0s" is accepted and stored as given."""
    session_id = sessions.create({"TTL": "0s"})
    assert api.session_info(session_id)["TTL"] == "0s"


def test_fact42_unparseable_ttl_is_500(api: Api) -> None:
    """Fact 42 [Session.Apply]: TTL "abc" -> 500, body starts "Session TTL 'abc' invalid:"."""
    response = api.put("/v1/session/create", json_body={"TTL": "abc"})
    assert response.status_code == 500
    assert response.text.startswith("Session TTL 'abc' invalid:")


def test_fact43_bad_behavior_is_500(api: Api) -> None:
    """Fact 43 [Session.Apply]: Behavior foo -> 500 "Invalid Behavior setting 'foo'"."""
    response = api.put("/v1/session/create", json_body={"Behavior": "foo"})
    assert response.status_code == 500
    assert response.text.strip() == "Invalid Behavior setting 'foo'"


def test_behavior_is_case_sensitive(api: Api) -> None:
    """Section 3.2 [Session.Apply]: Behavior values are case-sensitive: "Delete" -> 500."""
    response = api.put("/v1/session/create", json_body={"Behavior": "Delete"})
    assert response.status_code == 500
    assert response.text.strip() == "Invalid Behavior setting 'Delete'"


def test_fact44_invalid_json_is_400(api: Api) -> None:
    """Fact 44 [agent/session_endpoint.go :: SessionCreate]: body "not json" -> 400, body
    starts "Request decode failed:"."""
    response = api.put("/v1/session/create", "not json")
    assert response.status_code == 400
    assert response.text.startswith("Request decode failed:")


def test_unknown_session_fields_are_ignored(api: Api, sessions: Sessions) -> None:
    """Section 1.3 (code reading) [agent/structs/structs.go :: Session.UnmarshalJSON]: the
    session body is not strict: an unknown field is ignored."""
    session_id = sessions.create({"Name": "n", "Bogus": 1})
    assert api.session_info(session_id)["Name"] == "n"


def test_fact45_lock_delay_number_and_string(api: Api, sessions: Sessions) -> None:
    """Fact 45 [agent/structs/structs.go :: Session.UnmarshalJSON]: LockDelay 5 (a number
    below 1000 means seconds) -> 5000000000 ns; "1m" -> 60000000000."""
    five = sessions.create({"LockDelay": 5})
    minute = sessions.create({"LockDelay": "1m"})
    assert api.session_info(five)["LockDelay"] == 5000000000
    assert api.session_info(minute)["LockDelay"] == 60000000000


def test_lock_delay_is_not_capped_at_create(api: Api, sessions: Sessions) -> None:
    """Section 3.2 [Session.UnmarshalJSON; structs.MaxLockDelay applies only on
    invalidation]: LockDelay "2m" is stored as 120 s, not capped to 60 s."""
    session_id = sessions.create({"LockDelay": "2m"})
    assert api.session_info(session_id)["LockDelay"] == 120000000000


def test_lock_delay_without_unit_is_400(api: Api) -> None:
    """Section 3.2 (code reading) [Session.UnmarshalJSON]: LockDelay "15" -> 400 'Request
    decode failed: time: missing unit in duration "15"'."""
    response = api.put("/v1/session/create", json_body={"LockDelay": "15"})
    assert response.status_code == 400
    assert response.text.strip() == 'Request decode failed: time: missing unit in duration "15"'


def test_fact46_lower_case_keys(api: Api, sessions: Sessions, agent: AgentUnderTest) -> None:
    """Fact 46 [Go encoding/json case-insensitive fields; Session.UnmarshalJSON;
    py:consul/base.py :: Session.create]: lower-case keys bind to the fields.  The fact's
    ttl of 10s is raised to the agent's minimum if that is higher."""
    ttl = format_duration(max(10 * SECOND, round(agent.ttl_min * SECOND)))
    session_id = sessions.create(
        {"name": "n1", "behavior": "delete", "ttl": ttl, "lockdelay": "5s"}
    )
    info = api.session_info(session_id)
    assert info["Name"] == "n1"
    assert info["Behavior"] == "delete"
    assert info["TTL"] == ttl
    assert info["LockDelay"] == 5000000000


def test_fact47_unknown_node_is_500(api: Api, uid: str) -> None:
    """Fact 47 [agent/consul/state/session.go :: sessionCreateTxn; state_store.go
    ErrMissingNode; Session.Apply]: Node not registered -> 500 'apply failed: Missing node
    registration'."""
    response = api.put("/v1/session/create", json_body={"Node": f"no-such-node-{uid}"})
    assert response.status_code == 500
    assert response.text.strip() == "apply failed: Missing node registration"


def test_fact48_unknown_node_check_is_500(api: Api, uid: str) -> None:
    """Fact 48 [agent/consul/state/session_ce.go :: validateSessionChecksTxn]: NodeChecks
    with a missing check -> 500 "apply failed: Missing check '<id>' registration"."""
    check = f"nope-{uid}"
    response = api.put("/v1/session/create", json_body={"NodeChecks": [check]})
    assert response.status_code == 500
    assert response.text.strip() == f"apply failed: Missing check '{check}' registration"


def test_check_lists_fixups(api: Api, sessions: Sessions) -> None:
    """Section 3.2 [agent/session_endpoint.go :: fixupEmptySessionChecks]: Checks [] -> no
    checks at all; NodeChecks [] -> no checks; Checks [serfHealth] -> moved to NodeChecks."""
    no_checks = api.session_info(sessions.create({"Checks": []}))
    assert no_checks["NodeChecks"] == []
    assert "Checks" not in no_checks
    no_node_checks = api.session_info(sessions.create({"NodeChecks": []}))
    assert no_node_checks["NodeChecks"] == []
    assert "Checks" not in no_node_checks
    moved = api.session_info(sessions.create({"Checks": ["serfHealth"]}))
    assert moved["NodeChecks"] == ["serfHealth"]
    assert "Checks" not in moved


def test_fact49_critical_service_check_blocks_session(
    api: Api, uid: str, registrations: Registrations, sessions: Sessions
) -> None:
    """Fact 49 [validateSessionChecksTxn; agent/agent.go :: addServiceInternal (initial
    critical)]: binding a session to a new (critical) service check -> 500 "apply failed:
    Check 'service:<svc>' is in critical state"; after a pass the same create succeeds and
    ServiceChecks come back as given, alongside the default node check."""
    service = f"web-{uid}"
    check = f"service:{service}"
    assert registrations.service({"Name": service, "Check": {"TTL": "30s"}}).status_code == 200
    body = {"ServiceChecks": [{"ID": check}]}
    response = api.put("/v1/session/create", json_body=body)
    assert response.status_code == 500
    assert response.text.strip() == f"apply failed: Check '{check}' is in critical state"
    assert api.put(f"/v1/agent/check/pass/{check}").status_code == 200
    info = api.session_info(sessions.create(body))
    assert [c["ID"] for c in info["ServiceChecks"]] == [check]
    assert info["NodeChecks"] == ["serfHealth"]


def test_fact50_failing_bound_check_invalidates_session(
    api: Api, uid: str, prefix: str, registrations: Registrations, sessions: Sessions
) -> None:
    """Fact 50 [agent/agent_endpoint.go :: agentCheckUpdate (syncChanges);
    agent/consul/state/catalog.go :: ensureCheckTxn]: a session bound to a passing service
    check holds k; check/fail -> 200, and by the time it returns the session is gone and k
    has no Session."""
    service = f"web-{uid}"
    check = f"service:{service}"
    registrations.service({"Name": service, "Check": {"TTL": "30s", "Status": "passing"}})
    session_id = sessions.create({"ServiceChecks": [{"ID": check}], "LockDelay": "0s"})
    assert api.kv_put(f"{prefix}k", b"v", f"?acquire={session_id}") is True
    response = api.put(f"/v1/agent/check/fail/{check}")
    assert response.status_code == 200
    assert api.get(f"/v1/session/info/{session_id}").json() == []
    assert "Session" not in api.kv_entry(f"{prefix}k")


def test_warning_check_does_not_invalidate_session(
    api: Api, uid: str, registrations: Registrations, sessions: Sessions
) -> None:
    """Section 3.6 [ensureCheckTxn deletes sessions only for critical]: warn keeps the
    bound session."""
    service = f"web-{uid}"
    check = f"service:{service}"
    registrations.service({"Name": service, "Check": {"TTL": "30s", "Status": "passing"}})
    session_id = sessions.create({"ServiceChecks": [{"ID": check}]})
    assert api.put(f"/v1/agent/check/warn/{check}").status_code == 200
    assert api.session_info(session_id) is not None


def test_deregistering_bound_service_invalidates_session(
    api: Api, uid: str, prefix: str, registrations: Registrations, sessions: Sessions
) -> None:
    """Section 3.6 [agent/consul/state/catalog.go :: deleteCheckTxn]: deregistering the
    service removes its check, which invalidates the bound session (release behaviour)."""
    service = f"web-{uid}"
    registrations.service({"Name": service, "Check": {"TTL": "30s", "Status": "passing"}})
    session_id = sessions.create(
        {"ServiceChecks": [{"ID": f"service:{service}"}], "LockDelay": "0s"}
    )
    api.kv_put(f"{prefix}k", b"v", f"?acquire={session_id}")
    assert api.put(f"/v1/agent/service/deregister/{service}").status_code == 200
    assert api.session_info(session_id) is None
    assert "Session" not in api.kv_entry(f"{prefix}k")


def test_fact52_renew_returns_session_with_original_ttl(
    api: Api, sessions: Sessions, agent: AgentUnderTest
) -> None:
    """Fact 52 [agent/session_endpoint.go :: SessionRenew; py:tests/test_std.py ::
    test_session_delete_ttl_renew]: renew -> 200, array of one session with ID S and the TTL
    string unchanged ("20s", raised to the agent's minimum if that is higher)."""
    ttl = format_duration(max(20 * SECOND, round(agent.ttl_min * SECOND)))
    session_id = sessions.create({"TTL": ttl})
    response = api.put(f"/v1/session/renew/{session_id}")
    assert response.status_code == 200
    assert "X-Consul-Index" not in response.headers
    body = response.json()
    assert isinstance(body, list)
    assert len(body) == 1
    assert body[0]["ID"] == session_id
    assert body[0]["TTL"] == ttl


def test_renew_session_without_ttl(api: Api, sessions: Sessions) -> None:
    """Section 3.5 [SessionRenew]: a session without a TTL can be renewed (a no-op)."""
    session_id = sessions.create()
    response = api.put(f"/v1/session/renew/{session_id}")
    assert response.status_code == 200
    assert response.json()[0]["ID"] == session_id


def test_fact53_create_with_get_is_405(api: Api) -> None:
    """Fact 53 [agent/http_register.go]: GET /v1/session/create -> 405, Allow OPTIONS,PUT.
    (The empty-list half runs on a fresh agent in test_fresh_agent.py.)"""
    response = api.get("/v1/session/create")
    assert response.status_code == 405
    assert response.headers["Allow"] == "OPTIONS,PUT"
    assert response.text.strip() == "method GET not allowed"


def test_fact54_missing_ids(api: Api) -> None:
    """Fact 54 [agent/session_endpoint.go]: destroy/ and info/ -> 400 'Missing session';
    node/ -> 400 'Missing node name'; renew/ -> 400 'Missing session' (section 3.5)."""
    cases = [
        ("PUT", "/v1/session/destroy/", "Missing session"),
        ("GET", "/v1/session/info/", "Missing session"),
        ("GET", "/v1/session/node/", "Missing node name"),
        ("PUT", "/v1/session/renew/", "Missing session"),
    ]
    for method, path, text in cases:
        response = api.request(method, path)
        assert response.status_code == 400, path
        assert response.text.strip() == text, path


def test_list_and_node_include_new_session(api: Api, sessions: Sessions, node: str) -> None:
    """Section 3.4 [SessionList, SessionsForNode]: list and node/<NODE> contain a new
    session; both carry X-Consul-Index; node/<unknown> -> []."""
    session_id = sessions.create({"Name": "listed"})
    listed = api.get("/v1/session/list")
    assert listed.status_code == 200
    assert session_id in [s["ID"] for s in listed.json()]
    assert index_of(listed) >= 1
    by_node = api.get(f"/v1/session/node/{node}")
    assert session_id in [s["ID"] for s in by_node.json()]
    assert index_of(by_node) >= 1
    unknown = api.get("/v1/session/node/no-such-node-anywhere")
    assert unknown.status_code == 200
    assert unknown.json() == []


def test_sessions_index_moves_on_create_and_destroy(api: Api, sessions: Sessions) -> None:
    """Section 3.4 [X-Consul-Index = the sessions table index]: creating a session moves the
    index to the session's CreateIndex or beyond; destroying it moves the index again."""
    session_id = sessions.create()
    created = api.session_info(session_id)["CreateIndex"]
    assert index_of(api.get("/v1/session/list")) >= created
    api.put(f"/v1/session/destroy/{session_id}")
    assert index_of(api.get("/v1/session/list")) > created


def test_create_ttl_uses_go_duration_syntax(api: Api, sessions: Sessions) -> None:
    """Section 3.2 [Session.Apply parses TTL with time.ParseDuration]: a compound duration
    like "1m30s" is valid and stored verbatim."""
    session_id = sessions.create({"TTL": "1m30s"})
    info = api.session_info(session_id)
    assert info["TTL"] == "1m30s"
    assert parse_duration(info["TTL"]) == 90 * SECOND
