"""What Consul says about one service's election: who holds the key, the checks, leftovers.

These are Consul's truth at the moment of the read (what the nodes *believe* is in
:mod:`elect_helpers.timeline`).  :func:`remove_leftovers` cleans up what crashed nodes
leave behind: their services, their sessions, an unheld leader key.
"""

from __future__ import annotations

from collections.abc import Iterable

import consul

from elect_helpers import lock
from elect_helpers.durations import to_seconds
from elect_helpers.watch import BlockingReader, kv_fetch


def current_leader(client: consul.Consul, key: str) -> lock.LeaderInfo | None:
    """Who holds ``key`` according to Consul (None if nobody)."""
    info = lock.read_leader(client, key)
    return info if info is not None and info.session else None


def wait_for_leader(
    client: consul.Consul, key: str, timeout: float = 30.0, other_than: str | None = None
) -> lock.LeaderInfo:
    """Block until Consul names a holder of ``key`` (other than node ``other_than``).

    Blocking queries on the key (:meth:`~.watch.BlockingReader.wait_until`); raises
    :class:`~.errors.WaitTimeout` after ``timeout`` seconds.
    """
    seconds = to_seconds(timeout)

    def holder(entry: dict | None) -> lock.LeaderInfo | None:
        info = lock.leader_from_entry(key, entry)
        if info is None or not info.session or info.node == other_than:
            return None
        return info

    def why(entry: dict | None) -> str:
        info = lock.leader_from_entry(key, entry)
        still = f"{info.node} still leads" if info is not None and info.session else "nobody leads"
        return (
            f"no leader{f' other than {other_than}' if other_than else ''} for "
            f"{key} within {seconds:g}s ({still})"
        )

    with BlockingReader(client) as reader:
        return reader.wait_until(
            kv_fetch(key), holder, seconds, what=f"waiting for a leader of {key}", on_timeout=why
        )


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
