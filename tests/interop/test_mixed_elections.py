"""Go and Python candidates in one election: a lock in Consul is a protocol, not a library.

Python nodes (``Election``), the article's program written with HashiCorp's Go client and a
candidate built on its ``api.Lock`` contend for one key.  Under SIGTERM (hand-over), SIGKILL
(crash) and SIGSTOP/SIGCONT (a frozen leader) they must exclude each other (one holder at a
time, per Consul and per the fenced resource), hand over in every direction, and keep the
fencing tokens in order whoever leads.
"""

from __future__ import annotations

import random
import time

import pytest

from elect_helpers import gonodes
from elect_helpers.cluster import Cluster
from elect_helpers.session import session_info

if _missing := gonodes.go_missing():  # one skip, one message, for the whole module
    pytest.skip(f"mixed Go/Python elections need Go: {_missing}", allow_module_level=True)

# Short timings on the test agent (session_ttl_min 100ms): a crash costs about 2 x TTL.
FAST = {"ttl": "1s", "lock_delay": "0s", "write_interval": "100ms"}
TAKEOVER = 15.0  # seconds any hand-over or fail-over here may take, with room for a slow machine


def elections(cluster: Cluster) -> list[dict]:
    return [e for e in cluster.timeline() if e["event"] == "elected"]


def assert_tokens_grow(cluster: Cluster) -> list[dict]:
    """Every leader's token is above its predecessor's, whatever language either runs."""
    elected = elections(cluster)
    tokens = [e["token"] for e in elected]
    assert all(isinstance(t, int) and t > 0 for t in tokens), elected
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens), elected
    return elected


def assert_fenced_store_in_order(cluster: Cluster) -> None:
    assert cluster.resource is not None
    highest = 0
    for record in cluster.resource.fenced.history():
        if record.accepted:
            assert record.token >= highest, record
            highest = record.token


def await_leader(cluster: Cluster, expected: str, other_than: str | None = None) -> dict:
    """Wait until Consul names ``expected`` and it has logged being elected with the
    holding session (Consul names a leader a moment before the node reads its token)."""
    info = cluster.wait_for_leader(timeout=TAKEOVER, other_than=other_than)
    assert info.node == expected, info
    return cluster.wait_for_event(
        expected, "elected", timeout=5, where=lambda e: e["session"] == info.session
    )


def hand_over(cluster: Cluster, leader: str, expected: str) -> None:
    """Once the leader has written with its token, SIGTERM it; ``expected`` (the only other
    candidate) must take over."""
    token = cluster.status(leader).token
    assert cluster.resource is not None and token
    cluster.resource.fenced.wait_for(lambda r: (r.writer, r.token) == (leader, token), 5)
    cluster.stop(leader)
    await_leader(cluster, expected, other_than=leader)


def test_graceful_hand_over_in_every_direction(mixed_cluster) -> None:
    cluster = mixed_cluster(**FAST)
    cluster.start("py1")
    await_leader(cluster, "py1")
    cluster.start("goart", program="article")
    hand_over(cluster, "py1", "goart")  # Python -> Go (the article's steps)
    cluster.start("py1")
    hand_over(cluster, "goart", "py1")  # Go -> Python
    cluster.start("golock", program="golock")
    hand_over(cluster, "py1", "golock")  # Python -> Go (api.Lock)
    cluster.start("goart")  # keeps its program: the article
    hand_over(cluster, "golock", "goart")  # api.Lock -> article
    cluster.start("py1")
    hand_over(cluster, "goart", "py1")

    elected = assert_tokens_grow(cluster)
    assert [e["node"] for e in elected] == ["py1", "goart", "py1", "golock", "goart", "py1"]
    # A graceful leader stops writing and releases before anyone else is elected, so the
    # fenced store accepted every leader's writes and refused none.
    assert cluster.resource is not None
    fenced = cluster.resource.fenced.history()
    assert not [r for r in fenced if not r.accepted]
    assert_fenced_store_in_order(cluster)
    languages = {s.name: s.language for s in cluster.nodes()}
    assert languages == {"py1": "Python", "goart": "Go (article)", "golock": "Go (api.Lock)"}


def test_a_python_token_stays_ordered_after_a_go_leader(mixed_cluster) -> None:
    """Python -> Go -> Python with ``behavior=delete``: the key is deleted and created
    again (LockIndex restarts at 1), yet the third leader's token is above both others'."""
    cluster = mixed_cluster(**FAST)
    cluster.start("py1")
    await_leader(cluster, "py1")
    cluster.start("golock", program="golock")
    cluster.kill("py1")  # the session expires, Consul deletes the key
    await_leader(cluster, "golock", other_than="py1")
    cluster.start("py2")
    cluster.kill("golock")
    await_leader(cluster, "py2", other_than="golock")
    elected = assert_tokens_grow(cluster)
    assert [e["node"] for e in elected] == ["py1", "golock", "py2"]
    assert all("lock index 1)" in e["detail"] for e in elected), elected


@pytest.mark.parametrize("go_program", ["article", "golock"])
def test_crash_fail_over_between_go_and_python(mixed_cluster, go_program: str) -> None:
    """SIGKILL the leader: the other language takes over once Consul invalidated the dead
    leader's session, never while it still exists."""
    cluster = mixed_cluster(**FAST)
    cluster.start("py1")
    await_leader(cluster, "py1")
    cluster.start("go1", program=go_program)
    for dead, survivor in [("py1", "go1"), ("go1", "py1")]:
        old_session = cluster.status(dead).session
        assert old_session
        cluster.kill(dead)
        await_leader(cluster, survivor, other_than=dead)
        assert session_info(cluster.client, old_session) is None
        cluster.start(dead)
    assert_tokens_grow(cluster)
    assert_fenced_store_in_order(cluster)


@pytest.mark.parametrize(
    ("frozen", "program", "successor", "successor_program"),
    [
        ("go1", "article", "py1", "python"),
        ("go1", "golock", "py1", "python"),
        ("py1", "python", "go1", "golock"),
    ],
)
def test_a_frozen_leader_is_fenced_off_across_languages(
    mixed_cluster, frozen: str, program: str, successor: str, successor_program: str
) -> None:
    """SIGSTOP the leader past its TTL: the other language takes over; the frozen one wakes
    up still believing it leads and writes with its old token: the fenced resource refuses
    it (the unfenced one takes it), and the woken node then learns it lost."""
    cluster = mixed_cluster(**FAST)
    cluster.start(frozen, program=program)
    old_token = await_leader(cluster, frozen)["token"]
    cluster.start(successor, program=successor_program)
    cluster.pause(frozen)
    new_token = await_leader(cluster, successor, other_than=frozen)["token"]
    assert new_token > old_token
    assert cluster.resource is not None
    for store in (cluster.resource.fenced, cluster.resource.unfenced):
        store.wait_for(lambda r: r.writer == successor, timeout=5)
    woke_at = time.time()
    cluster.resume(frozen)
    cluster.wait_for_event(frozen, "woke", timeout=5, after=woke_at)
    rejected = cluster.wait_for_event(frozen, "write-rejected", timeout=5, after=woke_at)
    assert rejected["token"] == old_token
    cluster.wait_for_event(frozen, "lost", timeout=TAKEOVER, after=woke_at)
    stale = [r for r in cluster.resource.fenced.rejected() if r.writer == frozen]
    assert stale and all(r.token == old_token for r in stale)
    # Without fencing the old token's write lands (the woken node writes there next).
    landed = cluster.resource.unfenced.wait_for(lambda r: r.writer == frozen and r.stale, 5)
    assert landed.accepted and landed.token == old_token
    assert cluster.leader().node == successor
    assert_fenced_store_in_order(cluster)


def test_seeded_random_faults_on_a_mixed_cluster(mixed_cluster) -> None:
    """Random SIGTERM / SIGKILL / SIGSTOP on two Python nodes, the article and api.Lock:
    tokens grow with every leader and the fenced store never takes one out of order."""
    seed = random.randrange(2**32)
    print(f"seed {seed}")  # pytest shows it on failure; rerun with this seed to replay
    rng = random.Random(seed)
    cluster = mixed_cluster(**FAST)
    programs = {"py1": "python", "py2": "python", "goart": "article", "golock": "golock"}
    for name, program in programs.items():
        cluster.start(name, program=program)
    cluster.wait_for_leader(timeout=TAKEOVER)
    for _ in range(8):
        info = cluster.wait_for_leader(timeout=TAKEOVER)
        leader = info.node
        cluster.wait_for_event(
            leader, "elected", timeout=5, where=lambda e, s=info.session: e["session"] == s
        )
        fault = rng.choice(["term", "kill", "pause"])
        if fault == "term":
            cluster.stop(leader)
        elif fault == "kill":
            cluster.kill(leader)
        else:
            cluster.pause(leader)
        cluster.wait_for_leader(timeout=TAKEOVER, other_than=leader)
        if fault == "pause":
            time.sleep(rng.uniform(0.0, 0.5))
            cluster.resume(leader)
        else:
            cluster.start(leader)
    assert_tokens_grow(cluster)
    assert_fenced_store_in_order(cluster)
    led = {e["node"] for e in elections(cluster)}
    assert len(led) >= 2, f"seed {seed}: only {led} ever led"
