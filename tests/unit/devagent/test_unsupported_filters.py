"""Filters the embedded agent does not implement are refused, never silently ignored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from elect_helpers.devagent import DevAgent


@pytest.fixture(scope="module")
def agent() -> Iterator[DevAgent]:
    with DevAgent(port=0, node_name="devnode") as running:
        yield running


@pytest.mark.parametrize(
    "path",
    [
        "/v1/health/service/consul",
        "/v1/health/state/any",
        "/v1/catalog/services",
        "/v1/catalog/nodes",
        "/v1/agent/services",
        "/v1/agent/checks",
    ],
)
@pytest.mark.parametrize("query", ["filter=Service%20%3D%3D%20x", "node-meta=rack:1"])
def test_filters_are_refused_with_a_clear_message(agent: DevAgent, path: str, query: str) -> None:
    response = requests.get(f"{agent.url}{path}?{query}", timeout=10)
    assert response.status_code == 400
    assert "not supported by the embedded dev agent" in response.text
    assert response.text.startswith("?" + query.split("=")[0])


def test_near_and_kv_keep_working(agent: DevAgent) -> None:
    """?near is a no-op with one node; KV reads ignore ?filter in Consul too."""
    assert requests.get(f"{agent.url}/v1/catalog/nodes?near=_agent", timeout=10).ok
    requests.put(f"{agent.url}/v1/kv/f", data=b"v", timeout=10).raise_for_status()
    assert requests.get(f"{agent.url}/v1/kv/f?filter=x", timeout=10).ok
