"""election: one candidate's life cycle, bad input, and an unreachable agent."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from elect_helpers.connection import consul_client
from elect_helpers.election import Election
from elect_helpers.errors import AgentUnreachable, InvalidArgument, InvalidTTL
from elect_helpers.lock import read_leader
from elect_helpers.session import session_info
from elect_helpers.watch import CancelEvent


def election_threads() -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t.is_alive() and t.name.startswith(("election-", "renew-"))
    ]


def test_single_candidate_leads_then_resigns(client, key_prefix, wait_until) -> None:
    key = key_prefix + "leader"
    events: list[tuple] = []
    election = Election(
        client,
        key,
        "n1",
        address="127.0.0.1:7001",
        ttl=0.3,
        lock_delay=0,
        on_elected=lambda token: events.append(("elected", token)),
        on_lost=lambda reason: events.append(("lost", reason)),
        on_leader_observed=lambda info: events.append(("observed", info)),
    ).start()
    assert election.wait_for_leadership(5)
    assert election.is_leader
    token = election.token
    leader = read_leader(client, key)
    assert (leader.node, leader.address, leader.session) == ("n1", "127.0.0.1:7001", token.session)
    assert token.session == election.session_id and token.lock_index == 1
    assert int(token) == leader.modify_index
    assert ("elected", token) in events
    assert events[0] == ("observed", None)  # nobody held the key at first
    sid = election.session_id
    election.resign()
    assert not election.is_leader and election.token is None
    assert read_leader(client, key) is None
    assert session_info(client, sid) is None
    assert events[-1] == ("lost", "resigned")
    wait_until(lambda: not election_threads(), what="threads to end")
    with pytest.raises(RuntimeError, match="runs once"):
        election.start()


def test_run_blocks_until_the_callers_cancel_event(client, key_prefix, wait_until) -> None:
    stop = CancelEvent()
    election = Election(client, key_prefix + "leader", "n1", ttl=0.3, lock_delay=0)
    runner = threading.Thread(target=election.run, args=(stop,))
    runner.start()
    term = election.wait_for_leadership(5)
    assert term is not None and not term.ended.is_set()
    started = time.monotonic()
    stop.set()  # cuts the blocking read at once: no thread polls the event
    runner.join(5)
    assert not runner.is_alive() and time.monotonic() - started < 1
    assert term.ended.is_set() and term.reason == "resigned"
    assert read_leader(client, key_prefix + "leader") is None
    with pytest.raises(InvalidArgument, match=r"must be an elect_helpers\.watch\.CancelEvent"):
        Election(client, key_prefix + "leader", "n1").run(threading.Event())


def test_invalid_arguments() -> None:
    client = consul_client("127.0.0.1:1")
    with pytest.raises(InvalidArgument, match="behavior"):
        Election(client, "k", "n", behavior="keep")
    with pytest.raises(InvalidArgument, match="ttl"):
        Election(client, "k", "n", ttl="25h")
    with pytest.raises(InvalidArgument, match="node"):
        Election(client, "k", "")


def test_ttl_below_agent_minimum_fails_fast(client, key_prefix) -> None:
    errors: list[Exception] = []
    election = Election(client, key_prefix + "leader", "n1", ttl="50ms", on_error=errors.append)
    with pytest.raises(InvalidTTL, match="session_ttl_min"):
        election.run()
    assert isinstance(election.failure, InvalidTTL) and errors == [election.failure]


def test_unreachable_agent_backs_off_and_resigns_promptly(wait_until) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = consul_client(f"127.0.0.1:{sock.getsockname()[1]}")
        errors: list[Exception] = []
        election = Election(dead, "k", "n1", ttl=1, on_error=errors.append).start()
        time.sleep(1.0)
        assert not election.wait_for_leadership(0)
        started = time.monotonic()
        election.resign()
        assert time.monotonic() - started < 2
    # Back-off 0.1, 0.2, 0.4...: a handful of attempts in a second, not a hot loop.
    assert 2 <= len(errors) <= 6
    assert all(isinstance(e, AgentUnreachable) for e in errors)
    wait_until(lambda: not election_threads(), what="threads to end")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_start_resign_cycles_leak_no_threads_or_sockets(client, key_prefix, wait_until) -> None:
    def cycle() -> None:
        election = Election(client, key_prefix + "leader", "n1", ttl=0.3, lock_delay=0).start()
        assert election.wait_for_leadership(5)
        election.resign()

    cycle()  # warm up the shared client's connection pool
    threads, fds = threading.active_count(), open_fds()
    for _ in range(10):
        cycle()
    wait_until(lambda: threading.active_count() <= threads, what="threads to end")
    wait_until(lambda: open_fds() <= fds + 2, what="sockets to close")


def test_the_term_ends_the_moment_the_session_is_ended_from_outside(
    client, key_prefix, wait_until
) -> None:
    lost: list[str] = []
    election = Election(
        client, key_prefix + "leader", "n1", ttl=0.3, lock_delay=0, on_lost=lost.append
    ).start()
    try:
        term = election.wait_for_leadership(5)
        assert term is not None and term.is_current() and term is election.term
        assert int(term) == term.sequence and term.token.session == term.session
        client.session.destroy(term.session)  # "from outside": Consul's truth changes
        assert term.wait_ended(5)
        # Whichever notices first: the hold's read (the key changed, the session is gone)
        # or the renewer (404).  The event is set at once; on_lost follows on the loop.
        assert term.reason in ("session invalidated", "session expired")
        assert not term.is_current()
        wait_until(lambda: lost, what="on_lost")
        assert lost[0] in ("session invalidated", "session expired")
    finally:
        election.resign()
