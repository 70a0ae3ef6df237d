"""Fixtures for the dev agent's state-machine tests: a DevState on a manual clock."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from elect_helpers.devagent.state import DevState
from elect_helpers.devagent.timers import ManualClock, TimerService

from .support import SECOND


@pytest.fixture
def timers() -> TimerService:
    """A timer service that only fires when the test advances its manual clock."""
    return TimerService(ManualClock(start_ns=1_000 * SECOND))


@pytest.fixture
def state(timers: TimerService) -> Iterator[DevState]:
    """A fresh single-node state (node ``devnode``, session_ttl_min 10s), no check threads."""
    dev = DevState(
        node_name="devnode",
        session_ttl_min_ns=10 * SECOND,
        timers=timers,
        rng=random.Random(7),
        start_check_runners=False,
    )
    yield dev
    dev.close()
