"""Maintenance mode: PUT /v1/agent/maintenance and /v1/agent/service/maintenance/<id>.

Sources: agent/agent_endpoint.go (AgentNodeMaintenance, AgentServiceMaintenance),
agent/agent.go (EnableNodeMaintenance, EnableServiceMaintenance, the default reasons),
agent/consul/state/catalog.go :: ensureCheckTxn (a critical check invalidates only the
sessions bound to it).  Node maintenance is switched off again by every test that turns it on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Registrations, Sessions
from .support import Api

NODE_CHECK = "_node_maintenance"
DEFAULT_NODE_REASON = (
    "Maintenance mode is enabled for this node, but no reason was provided. "
    "This is a default message."
)
DEFAULT_SERVICE_REASON = (
    "Maintenance mode is enabled for this service, but no reason was provided. "
    "This is a default message."
)


@pytest.fixture
def node_maintenance(api: Api) -> Iterator[None]:
    yield
    api.put("/v1/agent/maintenance?enable=false")


def health_check(api: Api, node: str, check_id: str) -> dict[str, Any] | None:
    checks = api.get("/v1/health/node/" + node).json()
    return next((c for c in checks if c["CheckID"] == check_id), None)


def test_node_maintenance_adds_a_critical_node_check(
    api: Api, node: str, node_maintenance: None
) -> None:
    """EnableNodeMaintenance: ``_node_maintenance``, "Node Maintenance Mode", critical, the
    reason as notes, no output and no service; the answer is an empty 200."""
    response = api.put("/v1/agent/maintenance?enable=true&reason=patching")
    assert (response.status_code, response.text) == (200, "")
    check = api.agent_check(NODE_CHECK)
    assert check is not None
    assert (check["Name"], check["Status"], check["Notes"]) == (
        "Node Maintenance Mode",
        "critical",
        "patching",
    )
    assert (check["Output"], check["ServiceID"], check["Node"]) == ("", "", node)
    assert health_check(api, node, NODE_CHECK) is not None
    assert api.put("/v1/agent/maintenance?enable=true&reason=other").status_code == 200
    assert api.agent_check(NODE_CHECK)["Notes"] == "patching"  # already on: kept
    assert api.put("/v1/agent/maintenance?enable=false").status_code == 200
    assert api.agent_check(NODE_CHECK) is None
    assert health_check(api, node, NODE_CHECK) is None
    assert api.put("/v1/agent/maintenance?enable=false").status_code == 200


def test_node_maintenance_default_reason(api: Api, node_maintenance: None) -> None:
    assert api.put("/v1/agent/maintenance?enable=1").status_code == 200
    assert api.agent_check(NODE_CHECK)["Notes"] == DEFAULT_NODE_REASON


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("", "Missing value for enable"),
        ("?reason=x", "Missing value for enable"),
        ("?enable=yes", 'Invalid value for enable: "yes"'),
        ("?enable=", 'Invalid value for enable: ""'),
    ],
)
def test_node_maintenance_needs_a_boolean_enable(api: Api, query: str, text: str) -> None:
    response = api.put("/v1/agent/maintenance" + query)
    assert (response.status_code, response.text) == (400, text)
    assert api.agent_check(NODE_CHECK) is None


def test_node_maintenance_keeps_serf_bound_sessions_and_fails_passing_reads(
    api: Api,
    node: str,
    uid: str,
    sessions: Sessions,
    registrations: Registrations,
    node_maintenance: None,
) -> None:
    """The maintenance check is critical, so ``?passing`` drops the node's instances, but a
    session bound to serfHealth (the default) lives on: ensureCheckTxn only destroys sessions
    bound to the check that went critical."""
    assert registrations.service({"Name": uid}).status_code == 200
    session = sessions.create({"Name": uid})
    assert api.get(f"/v1/health/service/{uid}?passing").json() != []
    assert api.put("/v1/agent/maintenance?enable=true").status_code == 200
    assert api.get(f"/v1/health/service/{uid}?passing").json() == []
    assert api.session_info(session) is not None
    created = api.put("/v1/session/create", json_body={"NodeChecks": [NODE_CHECK]})
    assert (created.status_code, created.text) == (
        500,
        f"apply failed: Check '{NODE_CHECK}' is in critical state",
    )


def test_service_maintenance_check(
    api: Api, node: str, uid: str, registrations: Registrations
) -> None:
    """EnableServiceMaintenance: ``_service_maintenance:<id>`` bound to the service (name and
    tags copied), default reason text; disabling removes it; deregistering the service takes
    it away too."""
    body = {"Name": uid, "ID": uid + "-1", "Tags": ["a"]}
    assert registrations.service(body).status_code == 200
    response = api.put(f"/v1/agent/service/maintenance/{uid}-1?enable=true")
    assert (response.status_code, response.text) == (200, "")
    check_id = f"_service_maintenance:{uid}-1"
    check = api.agent_check(check_id)
    assert check is not None
    assert (check["Name"], check["Status"], check["Notes"]) == (
        "Service Maintenance Mode",
        "critical",
        DEFAULT_SERVICE_REASON,
    )
    assert (check["ServiceID"], check["ServiceName"], check["ServiceTags"]) == (
        uid + "-1",
        uid,
        ["a"],
    )
    assert api.get(f"/v1/health/service/{uid}?passing").json() == []
    assert api.put(f"/v1/agent/service/maintenance/{uid}-1?enable=false").status_code == 200
    assert api.agent_check(check_id) is None
    assert api.put(f"/v1/agent/service/maintenance/{uid}-1?enable=true&reason=r").status_code == 200
    assert api.agent_check(check_id)["Notes"] == "r"
    assert api.put(f"/v1/agent/service/deregister/{uid}-1").status_code == 200
    assert api.agent_check(check_id) is None


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/v1/agent/service/maintenance/?enable=true", 400, "Missing service ID"),
        ("/v1/agent/service/maintenance/x", 400, "Missing value for enable"),
        ("/v1/agent/service/maintenance/x?enable=maybe", 400, 'Invalid value for enable: "maybe"'),
        (
            "/v1/agent/service/maintenance/no-such?enable=true",
            404,
            'Unknown service ID "no-such". Ensure that the service ID is passed, not the '
            "service name.",
        ),
        (
            "/v1/agent/service/maintenance/no-such?enable=false",
            404,
            'Unknown service ID "no-such". Ensure that the service ID is passed, not the '
            "service name.",
        ),
    ],
)
def test_service_maintenance_errors(api: Api, path: str, status: int, text: str) -> None:
    response = api.put(path)
    assert (response.status_code, response.text) == (status, text)
