"""Fixtures for elections in which Go and Python candidates contend for one key.

``go_programs`` builds the Go node programs (``interop/go``, see :mod:`elect_helpers.gonodes`)
once per session (the test modules skip themselves, with one message, when Go is missing).
``mixed_cluster`` is the shared ``make_cluster`` (clusters on the test agent, each with its own
service, all closed afterwards) with the Go programs built.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from elect_helpers import gonodes
from elect_helpers.cluster import Cluster


@pytest.fixture(scope="session")
def go_programs() -> None:
    gonodes.build()  # Go is here, so a failing build is a failure, not a skip


@pytest.fixture
def mixed_cluster(
    make_cluster: Callable[..., Cluster], go_programs: None
) -> Callable[..., Cluster]:
    """``make_cluster`` (tests/conftest.py), once the Go programs are built."""
    return make_cluster
