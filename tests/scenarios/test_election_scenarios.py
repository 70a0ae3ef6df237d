"""Election scenarios in the style of Consul's own lock tests, with several in-process
candidates on the embedded agent and short TTLs (the agent allows down to 100 ms).

Process-level scenarios (SIGKILL, SIGSTOP, orphans) live with the node/cluster tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from elect_helpers.connection import consul_client
from elect_helpers.election import Election
from elect_helpers.errors import AgentUnreachable, ConsulError
from elect_helpers.lock import read_leader
from elect_helpers.service import HealthEndpoint, register_node, wait_for_check
from elect_helpers.session import destroy_session


class Beliefs:
    """Who believes they lead, across candidates; remembers the most at any one time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.leaders: set[str] = set()
        self.most_at_once = 0

    def elected(self, name: str) -> None:
        with self.lock:
            self.leaders.add(name)
            self.most_at_once = max(self.most_at_once, len(self.leaders))

    def lost(self, name: str) -> None:
        with self.lock:
            self.leaders.discard(name)


class Candidate:
    """An Election plus a record of what happened to it (monotonic timestamps)."""

    def __init__(self, client, key: str, name: str, beliefs: Beliefs, **options) -> None:
        self.name = name
        self.beliefs = beliefs
        self.elected_at: list[float] = []
        self.tokens: list = []
        self.lost: list[str] = []
        self.errors: list[Exception] = []
        self.election = Election(
            client,
            key,
            name,
            address=f"127.0.0.1:{7000 + len(name)}",
            on_elected=self._elected,
            on_lost=self._lost,
            on_error=self.errors.append,
            **options,
        )

    def _elected(self, token) -> None:
        self.elected_at.append(time.monotonic())
        self.tokens.append(token)
        self.beliefs.elected(self.name)

    def _lost(self, reason: str) -> None:
        self.beliefs.lost(self.name)
        self.lost.append(reason)


@pytest.fixture
def candidates(client, key_prefix) -> Iterator:
    """``make(name, **election_options)`` starts a candidate on ``<prefix>leader``; all
    are resigned after the test and must leave no thread behind."""
    made: list[Candidate] = []
    beliefs = Beliefs()

    def make(name: str, **options) -> Candidate:
        options.setdefault("ttl", 0.5)
        options.setdefault("lock_delay", 0)
        candidate = Candidate(client, key_prefix + "leader", name, beliefs, **options)
        made.append(candidate)
        candidate.election.start()
        return candidate

    make.beliefs = beliefs  # type: ignore[attr-defined]
    yield make
    for candidate in made:
        candidate.election.resign()
    deadline = time.monotonic() + 5
    while any(t.name.startswith(("election-", "renew-")) for t in threading.enumerate()):
        assert time.monotonic() < deadline, "election threads left behind"
        time.sleep(0.01)


def current_leader(made: list[Candidate]) -> Candidate | None:
    leading = [c for c in made if c.election.is_leader]
    assert len(leading) <= 1, f"two candidates lead at once: {[c.name for c in leading]}"
    return leading[0] if leading else None


def test_contend_exactly_one_leader(client, key_prefix, candidates, wait_until) -> None:
    """Three candidates; one leads (the one Consul names); resigning hands over in turn."""
    made = [candidates(name) for name in ("n1", "n2", "n3")]
    remaining = list(made)
    tokens = []
    while remaining:
        leader = wait_until(lambda: current_leader(remaining), what="a leader")
        holder = read_leader(client, key_prefix + "leader")
        assert holder.session == leader.election.session_id and holder.node == leader.name
        wait_until(
            lambda: all(c.election.leader == holder for c in remaining),  # noqa: B023
            what="every candidate to see the leader",
        )
        tokens.append(leader.election.token)
        leader.election.resign()
        assert leader.lost == ["resigned"]
        remaining.remove(leader)
    assert candidates.beliefs.most_at_once == 1
    assert all(len(c.elected_at) == 1 for c in made)
    assert tokens == sorted(tokens) and len({int(t) for t in tokens}) == 3


def test_session_destroyed_from_outside(client, candidates, wait_until) -> None:
    made = [candidates("n1"), candidates("n2")]
    first = wait_until(lambda: current_leader(made), what="a leader")
    old_token = first.election.token
    destroy_session(client, first.election.session_id)
    wait_until(lambda: first.lost, what="the leader to notice")
    assert first.lost[0] in ("session invalidated", "session expired")
    new = wait_until(lambda: current_leader(made), what="a new leader")
    assert new.election.token > old_token  # even though the key was deleted and re-created


def test_key_deleted_from_outside(client, key_prefix, candidates, wait_until) -> None:
    node = candidates("n1")
    wait_until(lambda: node.election.is_leader, what="n1 to lead")
    old_token = node.election.token
    client.kv.delete(key_prefix + "leader")
    wait_until(lambda: node.lost, what="the leader to notice")
    assert node.lost == ["key deleted"]
    # A delete sets no lock-delay: it campaigns again and leads with a newer token.
    wait_until(lambda: len(node.tokens) == 2 and node.election.is_leader, what="n1 again")
    assert node.tokens[1] > old_token
    assert read_leader(client, key_prefix + "leader").session == node.election.session_id


def test_graceful_resign_hands_over_without_lock_delay(candidates, wait_until) -> None:
    """Resigning releases the key before destroying the session, so the 10 s lock-delay of
    the resigning session never applies and the other candidate takes over at once."""
    made = [candidates("n1", lock_delay="10s"), candidates("n2", lock_delay="10s")]
    first = wait_until(lambda: current_leader(made), what="a leader")
    other = made[1] if first is made[0] else made[0]
    first.election.resign()
    wait_until(lambda: other.election.is_leader, timeout=3, what="the hand-over")


def test_lock_delay_is_respected(client, candidates, wait_until) -> None:
    first = candidates("n1", lock_delay="1s")
    wait_until(lambda: first.election.is_leader, what="n1 to lead")
    waiting = candidates("n2")
    wait_until(lambda: waiting.election.leader is not None, what="n2 to see the leader")
    invalidated_at = time.monotonic()
    destroy_session(client, first.election.session_id)  # invalidation starts the lock-delay
    wait_until(lambda: first.lost, what="n1 to notice")
    made = [first, waiting]
    new = wait_until(lambda: current_leader(made), timeout=4, what="a leader after the delay")
    elected_at = new.elected_at[-1]
    assert elected_at - invalidated_at >= 1.0  # nobody got the lock during the delay
    assert elected_at - invalidated_at < 3.0  # and it was taken soon after, no 5 s retry
    assert all(len(c.errors) == 0 for c in made)


def test_renew_failure_leader_steps_down_on_its_own(wait_until) -> None:
    """The agent dies: the leader cannot renew and steps down once a whole TTL has passed
    since its last good renew, before Consul could give the lock to anyone else."""
    from elect_helpers.devagent import DevAgent

    agent = DevAgent(port=0, session_ttl_min="100ms")
    agent.start()
    leader = Candidate(consul_client(agent.address), "svc/leader", "n1", Beliefs(), ttl=0.5)
    try:
        leader.election.start()
        assert leader.election.wait_for_leadership(5)
        agent.stop()
        stopped_at = time.monotonic()
        wait_until(lambda: leader.lost, timeout=5, what="the leader to give up")
        assert leader.lost[0].startswith("session gave-up: ")
        assert time.monotonic() - stopped_at < 2.0  # about one TTL, not forever
        assert not leader.election.is_leader
        wait_until(lambda: leader.errors, what="errors reported")
        assert all(isinstance(e, AgentUnreachable) for e in leader.errors)
    finally:
        leader.election.resign()
        agent.stop()


def test_bound_check_going_critical_invalidates_leadership(
    client, key_prefix, candidates, wait_until
) -> None:
    with HealthEndpoint() as health:
        reg = register_node(client, "n1", "scen", health_url=health.url, interval="1s")
        wait_for_check(client, "scen", reg.check_id, "passing", timeout="10s")
        # A long TTL, so that only the check can end the session.
        node = candidates("n1", ttl="30s", service_checks=[reg.check_id])
        wait_until(lambda: node.election.is_leader, what="n1 to lead")
        health.set_healthy(False)
        wait_until(lambda: node.lost, timeout=10, what="the check to invalidate the session")
        assert node.lost[0] in ("session invalidated", "session expired")
        assert read_leader(client, key_prefix + "leader") is None
        # While the check is critical Consul refuses a new session bound to it...
        wait_until(
            lambda: any(isinstance(e, ConsulError) and "critical" in str(e) for e in node.errors),
            what="the refused session",
        )
        health.set_healthy(True)
        # ...and once it passes again, the node campaigns and leads again.
        wait_until(lambda: node.election.is_leader, timeout=10, what="n1 to lead again")
