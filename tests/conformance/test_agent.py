"""Agent services and checks: checkable facts 60-71 (consul-facts.md section 6).

Service names carry the test's unique id, so "web" in a fact is ``web-<uid>`` here.
"""

from __future__ import annotations

import time

import pytest

from .conftest import HealthTarget, Registrations
from .support import AgentUnderTest, Api, Probe, wait_for


def test_fact60_register_service_and_list_it(
    api: Api, uid: str, registrations: Registrations, agent: AgentUnderTest
) -> None:
    """Fact 60 [agent/agent_endpoint.go :: AgentRegisterService, buildAgentService;
    agent/agent.go :: validateService]: register -> 200 with an empty body; /v1/agent/services
    shows ID, Service, Port, Tags [], Meta {}, default Weights and the Datacenter."""
    service = f"web-{uid}"
    response = registrations.service({"Name": service, "Port": 8080})
    assert response.status_code == 200
    assert response.content == b""
    services = api.get("/v1/agent/services").json()
    entry = services[service]
    assert entry["ID"] == service
    assert entry["Service"] == service
    assert entry["Port"] == 8080
    assert entry["Tags"] == []
    assert entry["Meta"] == {}
    assert entry["Weights"] == {"Passing": 1, "Warning": 1}
    assert entry["Datacenter"] == agent.datacenter == "dc1"
    assert entry["Address"] == ""


def test_register_with_id_tags_and_lower_case_keys(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """Section 6.1 [Go encoding/json case-insensitive; py:consul/base.py sends lower-case
    keys]: id/name/tags/meta/port in lower case bind; the map is keyed by the ID."""
    service_id = f"web-{uid}-1"
    response = registrations.service(
        {
            "id": service_id,
            "name": f"web-{uid}",
            "tags": ["a", "b"],
            "meta": {"k": "v"},
            "port": 81,
        }
    )
    assert response.status_code == 200, response.text
    entry = api.get("/v1/agent/services").json()[service_id]
    assert entry["Service"] == f"web-{uid}"
    assert entry["Tags"] == ["a", "b"]
    assert entry["Meta"] == {"k": "v"}
    assert entry["Port"] == 81


def test_fact61_register_errors(api: Api, uid: str, registrations: Registrations) -> None:
    """Fact 61 [AgentRegisterService; lib/json.go :: DecodeJSON]: missing Name -> 400
    'Missing service name'; unknown field -> 400 'Request decode failed: json: unknown field
    "Bogus"'; empty body -> 400 'Request decode failed: EOF'.  None registers anything."""
    response = api.put("/v1/agent/service/register", json_body={"Port": 1})
    assert response.status_code == 400
    assert response.text.strip() == "Missing service name"
    name = f"x-{uid}"
    response = registrations.service({"Name": name, "Bogus": 1})
    assert response.status_code == 400
    assert response.text.strip() == 'Request decode failed: json: unknown field "Bogus"'
    response = api.put("/v1/agent/service/register", b"")
    assert response.status_code == 400
    assert response.text.strip() == "Request decode failed: EOF"
    assert name not in api.get("/v1/agent/services").json()


def test_fact62_service_check_defaults(api: Api, uid: str, registrations: Registrations) -> None:
    """Fact 62 [agent/agent.go :: addServiceInternal; agent/structs/check_type.go :: Type]:
    one TTL check -> ID service:<svc>, critical, Name "Service '<svc>' check", ServiceID,
    Type ttl."""
    service = f"web-{uid}"
    registrations.service({"Name": service, "Check": {"TTL": "10s"}})
    check = api.agent_check(f"service:{service}")
    assert check is not None
    assert check["CheckID"] == f"service:{service}"
    assert check["Status"] == "critical"
    assert check["Name"] == f"Service '{service}' check"
    assert check["ServiceID"] == service
    assert check["ServiceName"] == service
    assert check["Type"] == "ttl"


def test_fact63_several_checks_are_numbered(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """Fact 63 [addServiceInternal]: two checks -> IDs service:<svc>:1 and service:<svc>:2."""
    service = f"w2-{uid}"
    registrations.service({"Name": service, "Checks": [{"TTL": "10s"}, {"TTL": "20s"}]})
    checks = api.get("/v1/agent/checks").json()
    mine = sorted(k for k, v in checks.items() if v["ServiceID"] == service)
    assert mine == [f"service:{service}:1", f"service:{service}:2"]


def test_fact64_pass_with_note_sets_output(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """Fact 64 [agent/agent_endpoint.go :: AgentCheckPass; agent/checks/check.go ::
    CheckTTL.SetStatus]: pass?note=ok -> 200 empty body; status passing, Output "ok"."""
    service = f"web-{uid}"
    registrations.service({"Name": service, "Check": {"TTL": "10s"}})
    response = api.put(f"/v1/agent/check/pass/service:{service}?note=ok")
    assert response.status_code == 200
    assert response.content == b""
    check = api.agent_check(f"service:{service}")
    assert check["Status"] == "passing"
    assert check["Output"] == "ok"


def test_warn_fail_and_update_set_status(api: Api, uid: str, registrations: Registrations) -> None:
    """Section 6.3 [AgentCheckWarn/Fail/Update]: warn -> warning, fail -> critical, update
    with Status/Output sets both (note goes to Output)."""
    check_id = f"c-{uid}"
    registrations.check({"Name": check_id, "TTL": "10s"})
    api.put(f"/v1/agent/check/warn/{check_id}?note=hmm")
    assert api.agent_check(check_id)["Status"] == "warning"
    assert api.agent_check(check_id)["Output"] == "hmm"
    api.put(f"/v1/agent/check/fail/{check_id}")
    assert api.agent_check(check_id)["Status"] == "critical"
    response = api.put(
        f"/v1/agent/check/update/{check_id}", json_body={"Status": "passing", "Output": "fine"}
    )
    assert response.status_code == 200
    assert response.content == b""
    check = api.agent_check(check_id)
    assert check["Status"] == "passing"
    assert check["Output"] == "fine"


def test_fact65_pass_unknown_check_is_404(api: Api, uid: str) -> None:
    """Fact 65 [agent/acl.go :: vetCheckUpdateWithAuthorizer]: pass on an unknown check ->
    404 'Unknown check ID "<id>". Ensure that the check ID is passed, not the check name.'"""
    check_id = f"nope-{uid}"
    response = api.put(f"/v1/agent/check/pass/{check_id}")
    assert response.status_code == 404
    assert response.text.strip() == (
        f'Unknown check ID "{check_id}". Ensure that the check ID is passed, not the check name.'
    )


def test_deregister_unknown_check_is_404(api: Api, uid: str) -> None:
    """Section 6.3 [vetCheckUpdateWithAuthorizer]: check/deregister of an unknown id -> 404
    with the same 'Unknown check ID' text."""
    check_id = f"nope-{uid}"
    response = api.put(f"/v1/agent/check/deregister/{check_id}")
    assert response.status_code == 404
    assert response.text.strip() == (
        f'Unknown check ID "{check_id}". Ensure that the check ID is passed, not the check name.'
    )


def test_fact66_update_with_bogus_status_is_400(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """Fact 66 [agent/agent_endpoint.go :: AgentCheckUpdate]: Status bogus -> 400 "Invalid
    check status: 'bogus'"; an empty body -> 400 'Request decode failed: ...'."""
    service = f"web-{uid}"
    registrations.service({"Name": service, "Check": {"TTL": "10s"}})
    response = api.put(f"/v1/agent/check/update/service:{service}", json_body={"Status": "bogus"})
    assert response.status_code == 400
    assert response.text.strip() == "Invalid check status: 'bogus'"
    response = api.put(f"/v1/agent/check/update/service:{service}", b"")
    assert response.status_code == 400
    assert response.text.startswith("Request decode failed:")
    assert api.agent_check(f"service:{service}")["Status"] == "critical"


def test_fact67_deregister_unknown_service_is_404(api: Api, uid: str) -> None:
    """Fact 67 [agent/acl.go :: vetServiceUpdateWithAuthorizer]: unknown service -> 404
    'Unknown service ID "<id>". Ensure that the service ID is passed, not the service name.'"""
    service_id = f"nope-{uid}"
    response = api.put(f"/v1/agent/service/deregister/{service_id}")
    assert response.status_code == 404
    assert response.text.strip() == (
        f'Unknown service ID "{service_id}". '
        "Ensure that the service ID is passed, not the service name."
    )


def test_deregister_service_removes_its_checks(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """Section 6.2 [agent/agent.go :: removeServiceLocked]: deregister -> 200 empty body; the
    service and its checks are gone from the agent and the catalog."""
    service = f"web-{uid}"
    registrations.service({"Name": service, "Check": {"TTL": "10s"}})
    response = api.put(f"/v1/agent/service/deregister/{service}")
    assert response.status_code == 200
    assert response.content == b""
    assert service not in api.get("/v1/agent/services").json()
    assert api.agent_check(f"service:{service}") is None
    assert api.get(f"/v1/catalog/service/{service}").json() == []


def test_fact68_check_register_errors(api: Api, uid: str, registrations: Registrations) -> None:
    """Fact 68 [AgentRegisterCheck; agent/structs/check_type.go :: Validate]: no type -> 400
    'Invalid check: TTL must be > 0 for TTL checks'; unknown ServiceID -> 404 'ServiceID
    "<id>" does not exist'."""
    response = registrations.check({"Name": f"c1-{uid}"})
    assert response.status_code == 400
    assert response.text.strip() == "Invalid check: TTL must be > 0 for TTL checks"
    missing = f"nope-{uid}"
    response = registrations.check({"Name": f"c2-{uid}", "TTL": "10s", "ServiceID": missing})
    assert response.status_code == 404
    assert response.text.strip() == f'ServiceID "{missing}" does not exist'
    checks = api.get("/v1/agent/checks").json()
    assert f"c1-{uid}" not in checks
    assert f"c2-{uid}" not in checks


def test_check_register_missing_name_is_400(api: Api) -> None:
    """Section 6.3 [AgentRegisterCheck]: no Name -> 400 'Missing check name'."""
    response = api.put("/v1/agent/check/register", json_body={"TTL": "10s"})
    assert response.status_code == 400
    assert response.text.strip() == "Missing check name"


def test_fact69_check_id_defaults_to_name(api: Api, uid: str, registrations: Registrations) -> None:
    """Fact 69 [agent/structs/check_definition.go :: HealthCheck]: {Name c3, TTL 10s} ->
    check c3 (ID from Name), critical, Type ttl, not tied to a service."""
    name = f"c3-{uid}"
    response = registrations.check({"Name": name, "TTL": "10s"})
    assert response.status_code == 200
    assert response.content == b""
    check = api.agent_check(name)
    assert check["CheckID"] == name
    assert check["Name"] == name
    assert check["Status"] == "critical"
    assert check["ServiceID"] == ""
    assert check["Type"] == "ttl"


def test_check_register_with_status_and_service(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """Section 6.3 [AgentRegisterCheck]: a given Status is the initial status; ServiceID ties
    the check to an existing service."""
    service = f"web-{uid}"
    registrations.service({"Name": service})
    check_id = f"extra-{uid}"
    response = registrations.check(
        {"ID": check_id, "Name": "extra", "TTL": "10s", "Status": "passing", "ServiceID": service}
    )
    assert response.status_code == 200, response.text
    check = api.agent_check(check_id)
    assert check["Status"] == "passing"
    assert check["ServiceID"] == service
    assert check["Name"] == "extra"


def test_check_pass_on_non_ttl_check_is_500(
    api: Api, uid: str, registrations: Registrations, health_target: HealthTarget
) -> None:
    """Section 6.3 [agent/agent.go :: updateTTLCheck]: pass on an HTTP check -> 500
    'CheckID "<id>" does not have associated TTL'."""
    check_id = f"http-{uid}"
    registrations.check({"Name": check_id, "HTTP": health_target.url("/ok"), "Interval": "10s"})
    response = api.put(f"/v1/agent/check/pass/{check_id}")
    assert response.status_code == 500
    assert response.text.strip() == f'CheckID "{check_id}" does not have associated TTL'


@pytest.mark.slow
def test_fact70_ttl_check_expires(api: Api, uid: str, registrations: Registrations) -> None:
    """Fact 70 [agent/checks/check.go :: CheckTTL.run/getExpiredOutput]: a TTL "1s" check
    that is not updated stays passing for most of a second after the last pass, then turns
    critical (within about 2s) with Output "TTL expired (last output before timeout
    follows): <note>"."""
    check_id = f"ttl-{uid}"
    registrations.check({"Name": check_id, "TTL": "1s"})
    started = time.monotonic()
    assert api.put(f"/v1/agent/check/pass/{check_id}?note=alive").status_code == 200
    passed = time.monotonic()
    probe = Probe(lambda: api.agent_check(check_id)["Status"] == "passing")
    probe.until_false(deadline=passed + 5)
    still_passing = probe.last_start_with(True)
    now_critical = probe.first_end_with(False)
    assert still_passing is not None
    assert still_passing - passed >= 0.8, "expired well before its TTL"
    assert now_critical is not None, "never expired"
    assert now_critical - started <= 2.5
    check = api.agent_check(check_id)
    assert check["Status"] == "critical"
    assert check["Output"] == "TTL expired (last output before timeout follows): alive"


@pytest.mark.slow
def test_fact70_ttl_check_expiry_output_without_note(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """Fact 70 [CheckTTL.getExpiredOutput]: with no output before the timeout the expired
    check's Output starts with "TTL expired"."""
    check_id = f"ttl-{uid}"
    registrations.check({"Name": check_id, "TTL": "1s", "Status": "passing"})
    check = wait_for(
        lambda: (c := api.agent_check(check_id))["Status"] == "critical" and c,
        timeout=5,
        what="the TTL check to expire",
    )
    assert check["Output"].startswith("TTL expired")


@pytest.mark.slow
def test_fact71_http_check_statuses(
    api: Api, uid: str, registrations: Registrations, health_target: HealthTarget
) -> None:
    """Fact 71 [agent/checks/check.go :: CheckHTTP.check]: HTTP checks start critical, then a
    200 target -> passing with Output "HTTP GET <url>: 200 OK Output: <body>", 429 ->
    warning, 500 -> critical; requests carry 'User-Agent: Consul Health Check'."""
    expected = {"/ok": "passing", "/busy": "warning", "/fail": "critical"}
    ids = {path: f"http{path.replace('/', '-')}-{uid}" for path in expected}
    for path, check_id in ids.items():
        response = registrations.check(
            {"Name": check_id, "HTTP": health_target.url(path), "Interval": "1s"}
        )
        assert response.status_code == 200, response.text
        check = api.agent_check(check_id)
        assert check["Type"] == "http"
        if check["Output"] == "":  # not run yet: the initial status applies
            assert check["Status"] == "critical"

    def all_ran() -> bool:
        checks = api.get("/v1/agent/checks").json()
        return all(checks[i]["Output"].startswith("HTTP GET") for i in ids.values())

    wait_for(all_ran, timeout=6, what="every HTTP check to run")
    checks = api.get("/v1/agent/checks").json()
    for path, check_id in ids.items():
        assert checks[check_id]["Status"] == expected[path], path
    ok_output = f"HTTP GET {health_target.url('/ok')}: 200 OK Output: all good"
    assert checks[ids["/ok"]]["Output"] == ok_output
    assert checks[ids["/busy"]]["Output"].startswith(
        f"HTTP GET {health_target.url('/busy')}: 429 Too Many Requests Output:"
    )
    assert checks[ids["/fail"]]["Output"].startswith(
        f"HTTP GET {health_target.url('/fail')}: 500 Internal Server Error Output: broken"
    )
    assert "Consul Health Check" in health_target.user_agents


def test_tcp_check_connects(
    api: Api, uid: str, registrations: Registrations, health_target: HealthTarget
) -> None:
    """Section 6.3 [agent/checks/check.go :: CheckTCP.check]: a TCP check to a listening
    port becomes passing with Output 'TCP connect <addr>: Success'."""
    address = health_target.url("").removeprefix("http://")
    check_id = f"tcp-{uid}"
    registrations.check({"Name": check_id, "TCP": address, "Interval": "1s"})
    check = wait_for(
        lambda: (c := api.agent_check(check_id))["Status"] == "passing" and c,
        timeout=6,
        what="the TCP check to pass",
    )
    assert check["Output"] == f"TCP connect {address}: Success"
    assert check["Type"] == "tcp"


def test_reregistering_service_keeps_check_status(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """Section 6.1 [addServiceInternal restores the previous Status and Output of a check
    with the same ID]: re-registering a service keeps its passing check passing."""
    service = f"web-{uid}"
    registrations.service({"Name": service, "Check": {"TTL": "10s"}})
    api.put(f"/v1/agent/check/pass/service:{service}?note=up")
    registrations.service({"Name": service, "Port": 9, "Check": {"TTL": "10s"}})
    check = api.agent_check(f"service:{service}")
    assert check["Status"] == "passing"
    assert check["Output"] == "up"
    assert api.get("/v1/agent/services").json()[service]["Port"] == 9


@pytest.mark.parametrize(
    ("check", "reason"),
    [
        ({"TTL": "10s", "Interval": "10s"}, "Interval and TTL cannot both be specified"),
        (
            {"HTTP": "http://127.0.0.1:1/"},
            "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks",
        ),
        ({"Name": "only-a-name"}, "TTL must be > 0 for TTL checks"),
    ],
)
def test_invalid_service_check_is_400(
    api: Api, uid: str, registrations: Registrations, check: dict, reason: str
) -> None:
    """Section 6.1 [agent/structs/check_type.go :: Validate]: an invalid service check ->
    400 'Invalid check: <reason>' and the service is not registered."""
    service = f"bad-{uid}"
    response = registrations.service({"Name": service, "Check": check})
    assert response.status_code == 400
    assert response.text.strip() == f"Invalid check: {reason}"
    assert service not in api.get("/v1/agent/services").json()


def test_bad_check_duration_is_decode_error(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """Section 6.1 [CheckType.UnmarshalJSON parses durations while decoding]: TTL "abc" in a
    service check -> 400 'Request decode failed: ...'."""
    response = registrations.service({"Name": f"bad-{uid}", "Check": {"TTL": "abc"}})
    assert response.status_code == 400
    assert response.text.startswith("Request decode failed:")


def test_script_check_is_refused(api: Api, uid: str, registrations: Registrations) -> None:
    """Section 6.1 [agent/agent.go :: addCheck]: a script check without enable_script_checks
    -> 500 'Scripts are disabled on this agent from remote calls; ...'."""
    response = registrations.check({"Name": f"s-{uid}", "Args": ["true"], "Interval": "10s"})
    assert response.status_code == 500
    assert response.text.strip() == (
        "Scripts are disabled on this agent from remote calls; "
        "to enable, configure 'enable_script_checks' to true"
    )


def test_register_syncs_to_catalog_before_returning(
    api: Api, uid: str, registrations: Registrations, node: str
) -> None:
    """Section 6.1 [AgentRegisterService -> syncChanges]: right after register returns, the
    service is in /v1/catalog/service/<name> on NODE with ServicePort and ServiceTags []."""
    service = f"web-{uid}"
    registrations.service({"Name": service, "Port": 8080})
    entries = api.get(f"/v1/catalog/service/{service}").json()
    assert len(entries) == 1
    assert entries[0]["Node"] == node
    assert entries[0]["ServiceID"] == service
    assert entries[0]["ServiceName"] == service
    assert entries[0]["ServicePort"] == 8080
    assert entries[0]["ServiceTags"] == []
