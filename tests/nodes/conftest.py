"""Fixtures for the node/cluster tests, on the shared ``dev_agent`` (TTLs down to 100ms)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from elect_helpers.cluster import Cluster

_services = itertools.count(1)


@pytest.fixture
def make_cluster(dev_agent: object) -> Iterator:
    """Build clusters on the test agent, each with its own service; all closed afterwards."""
    clusters: list[Cluster] = []

    def make(**options: object) -> Cluster:
        service = f"svc{os.getpid()}-{next(_services)}"
        cluster = Cluster(service, address=dev_agent.address, **options)  # type: ignore[attr-defined]
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.close()
