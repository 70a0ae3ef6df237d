"""service: the node's own /_health endpoint, and registering it with an HTTP check."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from elect_helpers.errors import ElectHelpersError, InvalidArgument, ServiceNotFound
from elect_helpers.service import (
    HealthEndpoint,
    check_status,
    deregister_node,
    register_node,
    wait_for_check,
)


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_health_endpoint_answers() -> None:
    with HealthEndpoint() as health:
        assert health.url == f"http://127.0.0.1:{health.port}/_health"
        assert status_of(health.url) == 200
        health.set_healthy(False)
        assert status_of(health.url) == 503
        assert status_of(health.url.replace("/_health", "/other")) == 404
        assert health.requests == 2


def test_health_endpoint_port_in_use() -> None:
    with HealthEndpoint() as health, pytest.raises(ElectHelpersError, match="cannot serve"):
        HealthEndpoint(port=health.port)


def test_register_check_follows_endpoint_and_deregister(client) -> None:
    with HealthEndpoint() as health:
        reg = register_node(
            client, "h1node", "h1svc", health_url=health.url, port=health.port, interval="1s"
        )
        assert (reg.service_id, reg.check_id) == ("h1node", "service:h1node")
        service = client.agent.services()["h1node"]
        assert (service["Service"], service["Port"]) == ("h1svc", health.port)
        wait_for_check(client, "h1svc", reg.check_id, "passing", timeout="10s")
        assert health.requests >= 1  # Consul really polled our endpoint
        health.set_healthy(False)
        wait_for_check(client, "h1svc", reg.check_id, "critical", timeout="10s")
        assert check_status(client, reg.check_id) == "critical"
    deregister_node(client, "h1node")
    assert check_status(client, reg.check_id) is None
    with pytest.raises(ServiceNotFound, match="no service with ID 'h1node'"):
        deregister_node(client, "h1node")


def test_wait_for_check_times_out_clearly(client) -> None:
    with pytest.raises(ElectHelpersError, match="did not become passing within 200ms"):
        wait_for_check(client, "nosvc", "service:nosvc", timeout=0.2)


def test_wait_for_check_rejects_bad_input(client) -> None:
    with pytest.raises(InvalidArgument, match="status must be one of passing"):
        wait_for_check(client, "nosvc", "service:nosvc", status="pass", timeout=5)
    with pytest.raises(InvalidArgument, match="timeout 'soon' is not a duration"):
        wait_for_check(client, "nosvc", "service:nosvc", timeout="soon")


def test_register_rejects_bad_input(client) -> None:
    with pytest.raises(InvalidArgument, match="health_url"):
        register_node(client, "n", "s", health_url="localhost/_health")
    with pytest.raises(InvalidArgument, match="node name"):
        register_node(client, "", "s", health_url="http://127.0.0.1:1/_health")
    with pytest.raises(InvalidArgument, match="interval 'x' is not a duration"):
        register_node(client, "n", "s", health_url="http://127.0.0.1:1/_health", interval="x")
