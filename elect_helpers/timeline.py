"""The event timeline: what the nodes' own JSON-line event logs say they did and believe.

A node's belief (leader, follower...) is only what it last wrote down: a frozen or killed
node keeps "believing" whatever its last event said.  What Consul says is in
:mod:`elect_helpers.consul_view`.  The file format is :mod:`elect_helpers.events`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elect_helpers.errors import WaitTimeout

Event = dict[str, Any]
POLL_INTERVAL = 0.05  # seconds between reads of an event file while waiting for an event


@dataclass(frozen=True)
class Belief:
    """What a node believes according to its own events.

    ``role`` is ``starting``, ``follower``, ``leader`` or ``stopped``; ``token`` its fencing
    token while it believes it leads; ``session`` the session it last led with.
    """

    role: str = "starting"
    token: int | None = None
    session: str | None = None


def belief(events: list[Event]) -> Belief:
    """Fold a node's events (oldest first) into what it believes after the last one."""
    current = Belief()
    for event in events:
        kind = event.get("event")
        if event.get("node") is None:
            continue
        if kind == "campaigning":
            current = Belief("follower", None, current.session)
        elif kind == "elected":
            current = Belief("leader", event.get("token"), event.get("session"))
        elif kind in ("lost", "resigned"):
            current = Belief("follower", None, current.session)
        elif kind == "stopped":
            current = Belief("stopped", None, current.session)
        elif kind == "started":
            current = Belief()
    return current


def find_event(
    events: list[Event],
    event: str,
    *,
    after: float | None = None,
    where: Callable[[Event], bool] | None = None,
) -> Event | None:
    """The first ``event`` later than time ``after`` that ``where`` accepts, if any."""
    for record in events:
        if (
            record.get("event") == event
            and (after is None or record["time"] > after)
            and (where is None or where(record))
        ):
            return record
    return None


def wait_for_event(
    read: Callable[[], list[Event]],
    name: str,
    event: str,
    timeout: float,
    *,
    after: float | None = None,
    where: Callable[[Event], bool] | None = None,
) -> Event:
    """Re-read node ``name``'s events with ``read()`` until :func:`find_event` finds one.

    Reads every ``POLL_INTERVAL`` (the controller polls the file; the nodes themselves
    never poll).  Raises :class:`~.errors.WaitTimeout` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = find_event(read(), event, after=after, where=where)
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"{name} logged no {event!r} event within {timeout:g}s")
        time.sleep(POLL_INTERVAL)
