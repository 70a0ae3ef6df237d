"""Simulated node processes under the controller, on the embedded agent with short TTLs.

Scenarios in the style of Consul's own lock tests: contention, crash, graceful hand-over,
a frozen leader fenced off, clear errors, and no orphans when the controller dies.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from elect_helpers.cluster import Cluster
from elect_helpers.connection import consul_client
from elect_helpers.consul_view import remove_leftovers
from elect_helpers.errors import (
    ClusterError,
    NodeNotRunning,
    NodeStartError,
    UnknownNode,
    WaitTimeout,
)
from elect_helpers.events import read_events


def elected_token(cluster: Cluster, name: str, after: float | None = None) -> int:
    return cluster.wait_for_event(name, "elected", after=after)["token"]


def test_three_nodes_contend_and_exactly_one_leads(make_cluster):
    cluster = make_cluster(ttl="500ms", lock_delay="0s")
    cluster.start_many(3)
    leader = cluster.wait_for_leader(timeout=10)
    elected_token(cluster, leader.node)
    # Several renewals later (TTL 500ms) the lock has not moved: a blocking watch on the key
    # for 1.5s must time out.
    with pytest.raises(TimeoutError):
        cluster.wait_for_leader(timeout=1.5, other_than=leader.node)
    statuses = cluster.nodes()
    assert [s.name for s in statuses if s.consul_leader] == [leader.node]
    assert [s.name for s in statuses if s.believes == "leader"] == [leader.node]
    assert all(s.state == "running" and s.check is not None for s in statuses)
    assert [e["node"] for e in cluster.timeline() if e["event"] == "elected"] == [leader.node]


def test_killed_leader_is_replaced_within_the_check_detection_bound(make_cluster):
    # --tuned: session bound to a 1s HTTP check, lock-delay 0.  The TTL is 10s, so a new
    # leader within a few seconds can only come from the failing check.
    cluster = make_cluster(tuned=True, ttl="10s")
    cluster.start_many(3)
    old = cluster.wait_for_leader(timeout=15)
    old_token = elected_token(cluster, old.node)
    cluster.kill(old.node)
    new = cluster.wait_for_leader(timeout=6, other_than=old.node)
    assert elected_token(cluster, new.node) > old_token
    dead = cluster.status(old.node)
    assert (dead.state, dead.believes, dead.consul_leader) == ("killed", "leader", False)


def test_graceful_stop_hands_over_without_waiting_for_ttl_or_lock_delay(make_cluster):
    cluster = make_cluster(ttl="10s", lock_delay="10s")
    cluster.start_many(3)
    old = cluster.wait_for_leader(timeout=10)
    stopped = cluster.stop(old.node)
    assert (stopped.state, stopped.exit_code) == ("stopped", 0)
    cluster.wait_for_leader(timeout=5, other_than=old.node)  # well below TTL and lock-delay
    events = [e["event"] for e in read_events(cluster.events_dir / f"{old.node}.events.jsonl")]
    assert events[-4:] == ["signal", "resigned", "deregistered", "stopped"]
    assert cluster.status(old.node).check is None  # deregistered


def test_frozen_leader_wakes_up_and_its_late_write_is_fenced_off(make_cluster):
    cluster = make_cluster(ttl="500ms", lock_delay="0s")
    cluster.start_many(2)
    old = cluster.wait_for_leader(timeout=10)
    old_token = elected_token(cluster, old.node)
    fenced, unfenced = cluster.resource.fenced, cluster.resource.unfenced
    fenced.wait_for(lambda r: r.writer == old.node)
    cluster.pause(old.node)

    new = cluster.wait_for_leader(timeout=10, other_than=old.node)  # ~2 x TTL later
    new_token = elected_token(cluster, new.node)
    assert new_token > old_token
    fenced.wait_for(lambda r: r.writer == new.node and r.token == new_token)
    assert cluster.status(old.node).believes == "leader"  # frozen, it cannot know

    resumed = time.time()
    cluster.resume(old.node)
    late = fenced.wait_for(lambda r: r.writer == old.node and r.time > resumed)
    assert (late.token, late.accepted, late.stale) == (old_token, False, True)
    assert late.highest_before >= new_token
    stale = unfenced.wait_for(lambda r: r.writer == old.node and r.time > resumed)
    assert (stale.token, stale.accepted, stale.stale) == (old_token, True, True)
    cluster.wait_for_event(old.node, "write-rejected", after=resumed)
    cluster.wait_for_event(old.node, "lost", after=resumed)  # and then it notices
    assert cluster.status(old.node).believes == "follower"


def test_close_stops_every_node_and_cleans_up_consul(dev_agent):
    client = consul_client(dev_agent.address)
    cluster = Cluster(f"closing{os.getpid()}", address=dev_agent.address, ttl="10s")
    nodes = cluster.start_many(3)
    leader = cluster.wait_for_leader(timeout=10).node
    followers = [n.name for n in nodes if n.name != leader]
    cluster.kill(leader)  # leaves its service and session behind
    cluster.pause(followers[0])
    cluster.close()
    assert not any(_alive(n.pid) for n in nodes)
    services = client.agent.services()
    assert not any(s["Service"] == cluster.service for s in services.values())
    mine = {e["session"] for e in cluster.timeline() if e["session"]}
    assert mine and not mine & {s["ID"] for s in client.session.list()[1]}
    assert client.kv.get(cluster.key)[1] is None
    assert not cluster.events_dir.exists()
    after = {s.name: (s.state, s.believes) for s in cluster.nodes()}  # from the kept timeline
    assert after[followers[0]] == ("stopped", "stopped")
    assert after[leader] == ("killed", "leader")
    with pytest.raises(ClusterError, match="closed"):
        cluster.start()


def test_wait_for_leader_longer_than_one_blocking_query(make_cluster, monkeypatch):
    # A timeout longer than the client's request timeout must take several blocking
    # queries, each within it, and end in WaitTimeout rather than "agent unreachable".
    cluster = make_cluster(resource=False)
    monkeypatch.setattr("elect_helpers.connection.MAX_BLOCKING_WAIT", 0.3)
    cluster.client.http.timeout = 1.0
    with pytest.raises(WaitTimeout, match=r"no leader for .* within 1\.5s \(nobody leads\)"):
        cluster.wait_for_leader(timeout=1.5)


def test_controller_errors_say_what_to_do(make_cluster):
    cluster = make_cluster(ttl="1s", lock_delay="0s")
    cluster.start("node01")
    with pytest.raises(UnknownNode, match=r"no node named 'nope'.*known: node01"):
        cluster.kill("nope")
    with pytest.raises(ClusterError, match=r"'node01' is already running.*restart"):
        cluster.start("node01")
    cluster.kill("node01")
    with pytest.raises(NodeNotRunning, match=r"cannot kill node01: it is not running \(killed"):
        cluster.kill("node01")
    with pytest.raises(NodeNotRunning, match="cannot pause node01"):
        cluster.pause("node01")
    with pytest.raises(ClusterError, match="unknown node option"):
        cluster.start(lock_dealy="1s")
    with pytest.raises(ClusterError, match="lock_delay '-1s': must not be negative"):
        cluster.start(lock_delay="-1s")
    with pytest.raises(ClusterError, match=r"behavior 'keep': must be 'delete' or 'release'"):
        cluster.start(behavior="keep")
    with pytest.raises(NodeStartError, match=r"node02 failed to start.*session_ttl_min \(100ms\)"):
        cluster.start("node02", ttl="50ms")
    assert cluster.status("node02").state == "exited"
    assert cluster.restart("node01").state == "running"


def test_a_node_that_cannot_reach_the_agent_fails_with_its_stderr_shown():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        Cluster("nowhere", address=f"127.0.0.1:{port}", resource=False) as cluster,
        pytest.raises(NodeStartError, match=rf"exit status 1.*no Consul agent .*link to .*:{port}"),
    ):
        cluster.start("node01")


CONTROLLER = """
import signal, sys
from elect_helpers.cluster import Cluster
cluster = Cluster(sys.argv[1], address=sys.argv[2], events_dir=sys.argv[3],
                  ttl="1s", lock_delay="0s")
nodes = cluster.start_many(3)
cluster.wait_for_leader(timeout=10)
cluster.pause(nodes[0].name)
print(" ".join(str(n.pid) for n in nodes), flush=True)
signal.pause()
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_no_orphans_after_the_controller_is_killed(dev_agent, tmp_path):
    service = f"orphans{os.getpid()}"
    controller = subprocess.Popen(
        [sys.executable, "-c", CONTROLLER, service, dev_agent.address, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        pids = [int(pid) for pid in controller.stdout.readline().split()]
        assert len(pids) == 3 and all(_alive(pid) for pid in pids)
        os.kill(controller.pid, signal.SIGKILL)
        controller.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in pids)
    finally:
        controller.kill()
        controller.wait()
        sessions = {
            e["session"]
            for path in tmp_path.glob("*.events.jsonl")
            for e in read_events(path)
            if e.get("session")
        }
        names = [path.name.split(".")[0] for path in tmp_path.glob("*.events.jsonl")]
        remove_leftovers(
            consul_client(dev_agent.address), service, f"service/{service}/leader", names, sessions
        )
