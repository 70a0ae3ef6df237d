"""Fixtures for elections in which Go and Python candidates contend for one key.

``go_programs`` builds the Go node programs (``interop/go``, see :mod:`elect_helpers.gonodes`)
once per session (the test modules skip themselves, with one message, when Go is missing).
``mixed_cluster`` makes clusters on the shared test agent, each with its own service, all
closed afterwards.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from elect_helpers import gonodes
from elect_helpers.cluster import Cluster

_services = itertools.count(1)


@pytest.fixture(scope="session")
def go_programs() -> None:
    gonodes.build()  # Go is here, so a failing build is a failure, not a skip


@pytest.fixture
def mixed_cluster(dev_agent: object, go_programs: None) -> Iterator:
    clusters: list[Cluster] = []

    def make(**options: object) -> Cluster:
        service = f"mixed{os.getpid()}-{next(_services)}"
        cluster = Cluster(service, address=dev_agent.address, **options)  # type: ignore[attr-defined]
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.close()
