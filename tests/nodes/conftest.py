"""Fixtures for the node/cluster tests: one embedded agent with short TTLs allowed."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from elect_helpers.cluster import Cluster
from elect_helpers.devagent import DevAgent

_services = itertools.count(1)


@pytest.fixture(scope="session")
def node_agent() -> Iterator[DevAgent]:
    """An in-process embedded dev agent accepting session TTLs down to 100ms."""
    with DevAgent(port=0, session_ttl_min="100ms") as agent:
        yield agent


@pytest.fixture
def make_cluster(node_agent: DevAgent) -> Iterator:
    """Build clusters on the test agent, each with its own service; all closed afterwards."""
    clusters: list[Cluster] = []

    def make(**options: object) -> Cluster:
        service = f"svc{os.getpid()}-{next(_services)}"
        cluster = Cluster(service, address=node_agent.address, **options)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.close()
