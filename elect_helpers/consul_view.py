"""What Consul says about one service's election: who holds the key, the checks, leftovers.

These are Consul's truth at the moment of the read (what the nodes *believe* is in
:mod:`elect_helpers.timeline`).  :func:`remove_leftovers` cleans up what crashed nodes
leave behind: their services, their sessions, an unheld leader key.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import consul

from elect_helpers import connection, lock
from elect_helpers.durations import seconds_to_go, to_seconds
from elect_helpers.errors import WaitTimeout
from elect_helpers.watch import next_index


def current_leader(client: consul.Consul, key: str) -> lock.LeaderInfo | None:
    """Who holds ``key`` according to Consul (None if nobody)."""
    info = lock.read_leader(client, key)
    return info if info is not None and info.session else None


def wait_for_leader(
    client: consul.Consul, key: str, timeout: float = 30.0, other_than: str | None = None
) -> lock.LeaderInfo:
    """Block until Consul names a holder of ``key`` (other than node ``other_than``).

    Uses blocking queries on the key; raises :class:`~.errors.WaitTimeout` after ``timeout``.
    """
    deadline = time.monotonic() + to_seconds(timeout)
    index = 0
    watcher = connection.clone_client(client)
    try:
        while True:
            info = current_leader(client, key)
            if info is not None and info.node != other_than:
                return info
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                holder = f"{info.node} still leads" if info else "nobody leads"
                raise WaitTimeout(
                    f"no leader{f' other than {other_than}' if other_than else ''} for "
                    f"{key} within {to_seconds(timeout):g}s ({holder})"
                )
            # Each query waits at most MAX_BLOCKING_WAIT, which the client's request
            # timeout covers; a longer ``timeout`` simply takes several queries.
            wait = min(max(remaining, 0.001), connection.MAX_BLOCKING_WAIT)
            with connection.consul_call(watcher, f"watching {key}"):
                new_index, _ = watcher.kv.get(key, index=index or None, wait=seconds_to_go(wait))
            index = next_index(index, int(new_index or 0))
    finally:
        watcher.http.session.close()


def check_statuses(client: consul.Consul) -> dict[str, str]:
    """Every check on the client's agent: check ID -> ``passing``/``warning``/``critical``."""
    return {check_id: check["Status"] for check_id, check in client.agent.checks().items()}


def remove_leftovers(
    client: consul.Consul,
    service: str,
    key: str,
    names: Iterable[str],
    sessions: Iterable[str],
) -> None:
    """Remove what crashed nodes leave in Consul: their services (ID = node name, of this
    service), the given sessions if they still exist, and ``key`` if no session holds it."""
    services = client.agent.services()
    for name in names:
        if name in services and services[name].get("Service") == service:
            client.agent.service.deregister(name)
    live = {s["ID"] for s in client.session.list()[1]}
    for session_id in set(sessions) & live:
        client.session.destroy(session_id)
    _, entry = client.kv.get(key)
    if entry is not None and not entry.get("Session"):
        client.kv.delete(key)
