"""Wait for a service check to pass, with blocking queries (no polling loop).

Consul refuses to bind a session to a critical check, and a freshly registered check is
critical until its first run, so a node whose session is bound to its check waits here.
"""

from __future__ import annotations

import threading

import consul

from elect_helpers.durations import seconds_to_go


def wait_for_check_passing(
    client: consul.Consul,
    service_name: str,
    check_id: str,
    stop: threading.Event,
    wait: float = 30.0,
) -> bool:
    """Block until ``check_id`` of ``service_name`` is passing; False if ``stop`` is set first.

    Each round is one blocking ``/v1/health/checks/<service>`` query of at most ``wait``
    seconds that returns as soon as any check of the service changes.
    """
    index = None
    while not stop.is_set():
        new_index, checks = client.health.checks(
            service_name, index=index, wait=seconds_to_go(wait)
        )
        if any(c["CheckID"] == check_id and c["Status"] == "passing" for c in checks):
            return True
        new_index = int(new_index or 0)
        index = None if index is not None and new_index < int(index) else max(new_index, 1)
    return False
