"""The four ways a datacenter notices that its leader died, on a cluster of hosts.

Each node runs on its own host (a client agent of the embedded agent, see
:mod:`elect_helpers.hosts`), as in a real deployment.  The bounds asserted are Consul's:

(a) the leader process crashes, its agent lives, its session is bound only to serfHealth:
    the TTL decides - the session outlives ``TTL`` after its last renew (Consul's timer is
    ``2 x TTL``, never less than ``TTL``), and serfHealth stays passing;
(b) the leader process hangs, its session is bound to its service check: the check's
    failure invalidates the session, long before the TTL could;
(c) the host dies (agent and node SIGKILLed): the server declares the member failed
    within the gossip detection window and serfHealth goes critical, which invalidates
    the session;
(d) the host freezes (SIGSTOP) and wakes: as (c), and once thawed the agent rejoins while
    the old leader's first stale write is refused by the fenced store.

Wherever a session is invalidated (b, c, d), nobody gets the lock before its lock-delay.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from elect_helpers.cluster import Cluster
from elect_helpers.devagent import DevAgent

TTL = 1.0  # the nodes' TTL on the TTL path (the agent's minimum is below it)
LONG_TTL = 10.0  # where a check decides, a TTL that cannot be what ended the session
LOCK_DELAY = 1.0
SLACK = 1.5  # seconds of scheduling noise allowed on upper bounds (2 cores, shared)
POLL = 0.01
# How much later than Consul's write our poll may see an invalidation under load: the
# new holder comes at least LOCK_DELAY after the write, so at least this much less after
# our sighting (without a lock-delay it would come within a few milliseconds).
SIGHTING_LAG = 0.25


@pytest.fixture(scope="module")
def server() -> Iterator[DevAgent]:
    """The datacenter's server: the embedded agent with consul agent -dev's gossip."""
    with DevAgent(port=0, session_ttl_min="500ms") as agent:
        yield agent


@pytest.fixture
def cluster_of_hosts(server: DevAgent, request: pytest.FixtureRequest) -> Iterator[Callable]:
    made: list[Cluster] = []

    def make(**node_defaults) -> Cluster:
        cluster = Cluster(
            f"scenario-{request.node.name[:30]}",
            address=server.address,
            hosts=True,
            resource=node_defaults.pop("resource", False),
            lock_delay=LOCK_DELAY,
            **node_defaults,
        )
        made.append(cluster)
        cluster.start_many(["node01", "node02", "node03"])
        return cluster

    yield make
    for cluster in made:
        cluster.close()


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> float:
    """Poll ``condition`` until truthy; return the monotonic time it first was."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(POLL)
    return time.monotonic()


def leader_with_session(cluster: Cluster) -> tuple[str, str]:
    """The node Consul names and that believes it leads, and its session."""
    name = cluster.wait_for_leader(timeout=30).node

    def believes() -> bool:
        return cluster.status(name).believes == "leader"

    wait_for(believes, 10, f"{name} to believe it leads")
    info = cluster.leader()
    assert info is not None and info.node == name
    return name, info.session


def session_exists(cluster: Cluster, session: str) -> bool:
    return cluster.client.session.info(session)[1] is not None


def new_leader_at(cluster: Cluster, old: str, timeout: float) -> float:
    """Monotonic time at which Consul names a leader other than ``old``."""
    cluster.wait_for_leader(timeout=timeout, other_than=old)
    return time.monotonic()


def detection_window(server: DevAgent, members: int) -> float:
    """The latest time, in seconds, from a member going silent to being declared failed."""
    _, latest_ns = server.gossip.detection_bounds_ns(members)
    return latest_ns / 1e9


def test_a_process_crash_on_a_live_host_waits_for_the_ttl(cluster_of_hosts) -> None:
    cluster = cluster_of_hosts(ttl=TTL)
    leader, session = leader_with_session(cluster)
    cluster.client.session.renew(session)  # the last renew is now, or later (by the node itself)
    renewed = time.monotonic()
    cluster.kill(leader)
    gone = wait_for(lambda: not session_exists(cluster, session), 2 * TTL + SLACK, "expiry")
    taken = new_leader_at(cluster, leader, LOCK_DELAY + SLACK)
    assert gone - renewed >= TTL, "Consul never ends a session before its TTL"
    assert taken - renewed >= TTL + LOCK_DELAY, "nor hands its lock on before the lock-delay"
    status = cluster.status(leader)
    assert status.host == "up" and status.serf_health == "passing", (
        "only the process died: the host's agent is alive and gossip must not blame it"
    )


def test_a_hung_process_with_a_bound_check_loses_its_session_to_the_check(
    cluster_of_hosts,
) -> None:
    cluster = cluster_of_hosts(ttl=LONG_TTL, bind_check=True, check_interval=1.0)
    leader, session = leader_with_session(cluster)
    frozen = time.monotonic()
    cluster.pause(leader)
    invalidated = wait_for(
        lambda: not session_exists(cluster, session), LONG_TTL, "the bound check to end it"
    )
    taken = new_leader_at(cluster, leader, LOCK_DELAY + SLACK)
    assert invalidated - frozen < LONG_TTL, "the check, not the TTL, ended the session"
    assert taken - invalidated >= LOCK_DELAY - SIGHTING_LAG, "no new holder before the lock-delay"
    assert cluster.status(leader).serf_health == "passing", "its host is fine"
    cluster.resume(leader)


def test_a_host_that_dies_is_noticed_by_gossip_within_the_window(
    server: DevAgent, cluster_of_hosts
) -> None:
    cluster = cluster_of_hosts(ttl=LONG_TTL)
    leader, session = leader_with_session(cluster)
    window = detection_window(server, members=4)
    crashed = time.monotonic()
    cluster.crash_host(leader)
    critical = wait_for(
        lambda: cluster.status(leader).serf_health == "critical",
        window + SLACK,
        "serfHealth critical",
    )
    assert not session_exists(cluster, session), "the same write invalidates the session"
    taken = new_leader_at(cluster, leader, LOCK_DELAY + SLACK)
    assert critical - crashed <= window + SLACK
    assert critical - crashed < LONG_TTL, "gossip, not the TTL, noticed"
    assert taken - critical >= LOCK_DELAY - SIGHTING_LAG, "no new holder before the lock-delay"
    output = [
        c["Output"] for c in cluster.client.health.node(leader)[1] if c["CheckID"] == "serfHealth"
    ]
    assert output == ["Agent not live or unreachable"]


def test_a_frozen_host_is_failed_and_its_stale_write_is_fenced_when_it_wakes(
    server: DevAgent, cluster_of_hosts
) -> None:
    cluster = cluster_of_hosts(ttl=LONG_TTL, resource=True, write_interval=0.1)
    assert cluster.resource is not None
    leader, session = leader_with_session(cluster)
    old_token = cluster.status(leader).token
    wait_for(lambda: cluster.resource.fenced.highest_token is not None, 10, "a first write")
    window = detection_window(server, members=4)
    frozen = time.monotonic()
    cluster.freeze_host(leader)
    critical = wait_for(
        lambda: cluster.status(leader).serf_health == "critical",
        window + SLACK,
        "serfHealth critical",
    )
    assert not session_exists(cluster, session)
    taken = new_leader_at(cluster, leader, LOCK_DELAY + SLACK)
    assert critical - frozen <= window + SLACK
    assert taken - critical >= LOCK_DELAY - SIGHTING_LAG
    wait_for(
        lambda: cluster.resource.fenced.highest_token > old_token, 10, "the new leader's write"
    )
    cluster.thaw_host(leader)
    wait_for(lambda: cluster.status(leader).serf_health == "passing", window + SLACK, "the rejoin")
    wait_for(
        lambda: any(r.writer == leader for r in cluster.resource.fenced.rejected()),
        10,
        "the woken leader's stale write to be refused",
    )
    assert cluster.resource.fenced.stale_accepted() == []
    assert cluster.leader() is not None and cluster.leader().node != leader
