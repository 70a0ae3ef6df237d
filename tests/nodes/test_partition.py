"""Network partitions: a node cut off from its agent keeps running and writing.

What must hold at every point a partition can hit (right after an acquire, during a renew,
while releasing): the cut-off leader stops believing within one TTL of its last good renew,
which is before Consul may hand the lock on (>= TTL after that renew, 2 x TTL in practice,
plus lock-delay), so even the *unfenced* resource never accepts a stale write from it; a
new leader follows within Consul's bound; healing makes the node a follower again.
"""

from __future__ import annotations

import threading
import time

import pytest

from elect_helpers.cluster import Cluster
from elect_helpers.errors import ClusterError, NodeNotRunning

TTL = 1.0
LOCK_DELAY = 1.0
SLACK = 1.0  # scheduling on a loaded 2-core machine
OPTIONS = {"ttl": "1s", "lock_delay": "1s", "bind_check": False}


def assert_no_stale_writes(cluster: Cluster) -> None:
    assert cluster.resource is not None
    for store in (cluster.resource.fenced, cluster.resource.unfenced):
        assert store.stale_accepted() == []
    assert [r for r in cluster.resource.unfenced.history() if r.stale] == []


def assert_cut_off_leader_steps_down(cluster: Cluster, name: str, cut_at: float) -> None:
    """``name`` was cut off at wall time ``cut_at`` while it led (or was about to)."""
    new = cluster.wait_for_leader(timeout=2 * TTL + LOCK_DELAY + 3 * SLACK, other_than=name)
    elected = cluster.wait_for_event(new.node, "elected", after=cut_at)
    events = [e for e in cluster.timeline() if e["node"] == name and e["time"] > cut_at]
    lost = [e for e in events if e["event"] == "lost"]
    leading_before = any(e["event"] == "elected" and e["node"] == name for e in cluster.timeline())
    if leading_before:
        assert lost, f"{name} never stopped believing it leads"
        assert lost[0]["time"] <= cut_at + TTL + SLACK  # one TTL after its last good renew
        assert lost[0]["time"] < elected["time"]  # before anyone else could lead
    assert cluster.status(name).state == "running"  # the process never stopped
    assert cluster.status(name).partitioned
    assert_no_stale_writes(cluster)


def test_a_cut_off_leader_stops_believing_before_consul_gives_the_lock_away(make_cluster):
    cluster = make_cluster(**OPTIONS)
    cluster.start_many(2)
    leader = cluster.wait_for_leader(timeout=10).node
    cluster.wait_for_event(leader, "write-accepted")
    cut_at = time.time()
    status = cluster.partition(leader)
    assert status.partitioned and status.state == "running" and "cut off" in str(status)
    assert_cut_off_leader_steps_down(cluster, leader, cut_at)
    assert cluster.status(leader).believes == "follower"
    # The resource is reachable: the writer was stopped by the step-down, not by the cut.
    assert all(
        r.time < cut_at + TTL + SLACK
        for r in cluster.resource.unfenced.history()
        if r.writer == leader
    )
    healed = cluster.heal(leader)
    assert not healed.partitioned
    other = cluster.leader()
    time.sleep(2 * TTL)  # requests it gave up on arrive now; none of them may steal the lock
    assert cluster.leader() == other
    assert cluster.status(leader).believes == "follower"
    assert_no_stale_writes(cluster)
    assert [e["event"] for e in cluster.timeline() if e["event"] in ("partition", "heal")] == [
        "partition",
        "heal",
    ]


def test_partition_right_after_the_acquire(make_cluster):
    # The moment Consul names the node, before it may even have read its token back.
    cluster = make_cluster(**OPTIONS)
    cluster.start_many(2)
    leader = cluster.wait_for_leader(timeout=10).node
    cut_at = time.time()
    cluster.partition(leader)
    assert_cut_off_leader_steps_down(cluster, leader, cut_at)


@pytest.mark.parametrize("offset", [0.1, 0.25, 0.45])
def test_partition_during_a_renew(make_cluster, offset):
    # Renewals are due every TTL/2: these offsets after election land before, around and
    # during the first renew (a request already sent whose answer is held back).
    cluster = make_cluster(**OPTIONS)
    cluster.start_many(2)
    leader = cluster.wait_for_leader(timeout=10).node
    elected = cluster.wait_for_event(leader, "elected")
    time.sleep(max(0.0, elected["time"] + TTL / 2 - offset - time.time()))
    cut_at = time.time()
    cluster.partition(leader)
    assert_cut_off_leader_steps_down(cluster, leader, cut_at)


def test_partition_while_releasing(make_cluster):
    # The cut lands just before SIGTERM, so the step-down's release (and the session
    # destroy) get no answer: the lock is only freed by Consul's TTL, and nobody writes
    # stale data meanwhile.
    cluster = make_cluster(**OPTIONS)
    cluster.start_many(2)
    leader = cluster.wait_for_leader(timeout=10).node
    cluster.wait_for_event(leader, "write-accepted")
    stopper = threading.Thread(target=cluster.stop, args=(leader,), kwargs={"timeout": 30})
    cut_at = time.time()
    cluster.partition(leader)
    stopper.start()
    new = cluster.wait_for_leader(timeout=2 * TTL + LOCK_DELAY + 3 * SLACK, other_than=leader)
    assert cluster.wait_for_event(new.node, "elected", after=cut_at)["time"] > cut_at + TTL
    stopper.join()
    assert cluster.status(leader).state in ("stopped", "exited", "killed")
    assert_no_stale_writes(cluster)


def test_partition_errors_say_what_to_do(make_cluster):
    cluster = make_cluster(**OPTIONS, resource=False)
    cluster.start("node01")
    cluster.partition("node01")
    with pytest.raises(ClusterError, match="already cut off"):
        cluster.partition("node01")
    cluster.kill("node01")
    with pytest.raises(ClusterError, match=r"cut off from its agent.*heal\('node01'\)"):
        cluster.start("node01")
    with pytest.raises(NodeNotRunning, match="cannot partition node01"):
        cluster.partition("node01")
    cluster.heal("node01")
    with pytest.raises(ClusterError, match="not cut off"):
        cluster.heal("node01")
    assert cluster.restart("node01").state == "running"


def test_close_heals_first_so_a_cut_off_node_cleans_up(make_cluster, client):
    cluster = make_cluster(**OPTIONS, resource=False)
    cluster.start_many(2)
    leader = cluster.wait_for_leader(timeout=10).node
    cluster.partition(leader)
    cluster.close()
    assert {s.name: s.state for s in cluster.nodes()} == {"node01": "stopped", "node02": "stopped"}
    assert cluster.service not in client.agent.services()
    assert client.kv.get(cluster.key)[1] is None
