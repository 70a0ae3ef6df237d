"""Shared fixtures: one embedded dev agent per test session, and clients for it.

- ``dev_agent``: ``DevAgent(port=0, session_ttl_min="100ms")``, started once per session,
  so tests may use session TTLs down to 100 ms.
- ``client``: a :func:`elect_helpers.connection.consul_client` for that agent.  After the
  test it destroys the sessions, deregisters the services and deletes the keys under
  ``key_prefix`` that appeared during the test, so tests do not leak into each other.
- ``key_prefix``: a KV prefix unique to the test (``test/<name>-<n>/``).
- ``make_cluster``: builds :class:`elect_helpers.cluster.Cluster` objects on that agent, each
  with its own service; all are closed after the test.

Sub-suites (e.g. tests/conformance) may define their own fixtures with other names.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import consul
import pytest

from elect_helpers.connection import consul_client

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def dev_agent() -> Iterator[object]:
    """The embedded dev agent shared by the session (``.address``, ``.url``)."""
    from elect_helpers.devagent import DevAgent

    with DevAgent(port=0, session_ttl_min="100ms") as agent:
        yield agent


@pytest.fixture
def key_prefix(request: pytest.FixtureRequest) -> str:
    """A KV prefix no other test uses, ending in ``/``."""
    return f"test/{request.node.name[:40]}-{next(_counter)}/"


@pytest.fixture
def client(dev_agent: object, key_prefix: str) -> Iterator[consul.Consul]:
    """A client for ``dev_agent``; removes the test's sessions, services and keys after."""
    c = consul_client(dev_agent.address)  # type: ignore[attr-defined]
    _, before = c.session.list()
    sessions_before = {s["ID"] for s in before}
    services_before = set(c.agent.services())
    yield c
    for service_id in set(c.agent.services()) - services_before:
        c.agent.service.deregister(service_id)
    _, after = c.session.list()
    for session in after:
        if session["ID"] not in sessions_before:
            c.session.destroy(session["ID"])
    c.kv.delete(key_prefix, recurse=True)


@pytest.fixture
def wait_until():
    """``wait_until(condition, timeout=5.0, what="...")``: poll ``condition()`` every 10 ms
    until it is truthy (returns its value) or fail the test after ``timeout`` seconds."""
    import time

    def wait(condition, timeout: float = 5.0, what: str = "the condition"):
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.01)

    return wait


@pytest.fixture
def make_cluster(dev_agent: object) -> Iterator[Callable[..., object]]:
    """Build clusters on the test agent, each with its own service; all closed afterwards."""
    from elect_helpers.cluster import Cluster

    clusters: list[Cluster] = []

    def make(**options: object) -> Cluster:
        service = f"svc{os.getpid()}-{next(_counter)}"
        cluster = Cluster(service, address=dev_agent.address, **options)  # type: ignore[attr-defined]
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.close()
