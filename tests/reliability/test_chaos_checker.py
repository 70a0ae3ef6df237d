"""The chaos checker on hand-made histories: each check must be able to fail."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "chaos_checker.py"
_spec = importlib.util.spec_from_file_location("chaos_checker", _PATH)
assert _spec is not None and _spec.loader is not None
checker = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("chaos_checker", checker)
_spec.loader.exec_module(checker)

Fault, HolderSample, Write = checker.Fault, checker.HolderSample, checker.Write
BOUNDS = checker.Bounds(detection=3.0, handover=1.0, startup=2.0)


def history(**fields):
    base = {"start": 0.0, "end": 20.0, "bounds": BOUNDS}
    return checker.History(**{**base, **fields})


def elected(t, node, session, token):
    return {"time": t, "node": node, "event": "elected", "session": session, "token": token}


def test_fenced_writes_in_token_order_pass():
    writes = [Write(1, "a", 5, True), Write(2, "b", 3, False), Write(3, "b", 7, True)]
    report = checker.check(history(fenced=writes))
    assert report.fenced_out_of_order == 0
    assert (report.fenced_accepted, report.fenced_rejected) == (2, 1)
    assert report.violations() == []


def test_fenced_write_accepted_out_of_order_is_a_violation():
    writes = [Write(1, "a", 5, True), Write(2, "b", 7, True), Write(3, "a", 5, True)]
    report = checker.check(history(fenced=writes))
    assert report.fenced_out_of_order == 1
    assert any("out of order" in v for v in report.violations())


def test_tokens_that_do_not_follow_consuls_acquisition_order_are_caught():
    """n2 acquired after n1 but got a lower token, so the store takes paused n1's late
    write over n2's: token order looks fine, the acquisition order does not."""
    samples = [HolderSample(1.0, "s-1", "n1", 10, 1), HolderSample(5.0, "s-2", "n2", 20, 1)]
    events = [elected(1.0, "n1", "s-1", 9), elected(5.0, "n2", "s-2", 8)]
    writes = [Write(6, "n2", 8, True), Write(7, "n1", 9, True)]
    report = checker.check(history(samples=samples, events=events, fenced=writes))
    assert checker.out_of_order(writes) == []
    assert report.fenced_out_of_order == 1
    in_order = checker.check(history(samples=samples, events=events, fenced=writes[:1]))
    assert in_order.fenced_out_of_order == 0


def test_unfenced_stale_writes_are_counted_not_violations():
    writes = [Write(1, "a", 5, True), Write(2, "b", 7, True), Write(3, "a", 5, True)]
    report = checker.check(history(unfenced=writes))
    assert report.unfenced_stale_accepted == 1
    assert report.violations() == []


def test_one_acquisition_with_two_sessions_is_a_double_holder():
    samples = [
        HolderSample(1.0, "s-aaaaaaaa", "n1", create_index=10, lock_index=1),
        HolderSample(2.0, "s-bbbbbbbb", "n2", create_index=10, lock_index=1),
    ]
    report = checker.check(history(samples=samples))
    assert len(report.double_holders) >= 1
    assert any("double holders" in v for v in report.violations())


def test_taking_the_key_from_a_live_session_that_never_resigned_is_a_double_holder():
    samples = [
        HolderSample(1.0, "s-a", "n1", create_index=10, lock_index=1),
        HolderSample(2.0, "s-b", "n2", create_index=10, lock_index=2, previous_alive=True),
    ]
    assert checker.check(history(samples=samples)).double_holders


def test_hand_over_after_resign_or_invalidation_is_fine():
    samples = [
        HolderSample(1.0, "s-a", "n1", create_index=10, lock_index=1),
        HolderSample(2.0, "s-b", "n2", create_index=10, lock_index=2, previous_alive=True),
        HolderSample(3.0, "s-c", "n3", create_index=10, lock_index=3, previous_alive=False),
        HolderSample(4.0, None),
        HolderSample(5.0, "s-d", "n4", create_index=30, lock_index=1),
    ]
    events = [{"time": 1.9, "node": "n1", "event": "resigned", "session": "s-a"}]
    assert checker.check(history(samples=samples, events=events)).double_holders == []


def test_orphans_are_a_violation():
    report = checker.check(history(orphans=["pid 123"]))
    assert report.violations() == ["1 orphan processes"]


def _leader_crash_history(restart_at: float | None) -> checker.History:
    """n1 leads from 1 s, is killed at 5 s; n2 takes over at ``restart``-dependent time."""
    faults = [Fault(0.0, "start", "n1"), Fault(0.0, "start", "n2"), Fault(5.0, "kill", "n1")]
    samples = [
        HolderSample(0.0, None),
        HolderSample(1.0, "s-1", "n1", 10, 1),
        HolderSample(7.0, None),
        HolderSample(12.0, "s-2", "n2", 20, 1, previous_alive=False),
    ]
    if restart_at is not None:
        faults += [Fault(4.0, "kill", "n2"), Fault(restart_at, "restart", "n2")]
    return history(samples=samples, faults=faults)


def test_leaderless_time_beyond_the_detection_window_is_unexplained():
    leaderless, changes = checker.leaderless_time(_leader_crash_history(None))
    assert leaderless.expected == pytest.approx(1.0 + 3.0, abs=0.05)  # start-up + detection
    assert leaderless.unexplained == pytest.approx(4.0, abs=0.05)  # 8 s .. 12 s
    assert leaderless.no_candidate == pytest.approx(0.0, abs=0.05)
    assert changes == 2


def test_leaderless_time_without_candidates_is_not_unexplained():
    leaderless, _ = checker.leaderless_time(_leader_crash_history(restart_at=11.0))
    # 8 s .. 13 s: nobody had been running for the start-up allowance
    assert leaderless.no_candidate == pytest.approx(4.0, abs=0.05)
    assert leaderless.unexplained == pytest.approx(0.0, abs=0.05)


def test_a_paused_holder_is_no_working_leader():
    faults = [Fault(0.0, "start", "n1"), Fault(2.0, "pause", "n1"), Fault(4.0, "resume", "n1")]
    samples = [HolderSample(0.0, "s-1", "n1", 10, 1)]
    leaderless, _ = checker.leaderless_time(history(samples=samples, faults=faults))
    assert leaderless.total == pytest.approx(2.0, abs=0.05)
    assert leaderless.expected == pytest.approx(2.0, abs=0.05)


def test_believers_overlap_during_a_pause():
    events = [
        elected(1.0, "n1", "s-1", 10),
        elected(6.0, "n2", "s-2", 20),
        {"time": 8.0, "node": "n1", "event": "lost", "session": "s-1"},
    ]
    faults = [Fault(12.0, "kill", "n2")]
    most, overlap = checker.believers(history(events=events, faults=faults))
    assert most == 2
    assert overlap == pytest.approx(2.0)


def _stale_after(kind: str) -> object:
    """n1 leads with token 5, n2 takes over with 7, then n1 writes with 5 again after a
    ``kind`` fault (pause: it woke up; partition: it never stopped)."""
    faults = [Fault(0.0, "start", "n1"), Fault(0.0, "start", "n2"), Fault(2.0, kind, "n1")]
    writes = [Write(1, "n1", 5, True), Write(5, "n2", 7, True), Write(6, "n1", 5, True)]
    return history(faults=faults, unfenced=writes)


def test_stale_writes_are_blamed_on_the_writers_latest_pause_or_partition():
    paused = checker.check(_stale_after("pause"))
    assert paused.unfenced_stale_by_cause == {"pause": 1}
    assert paused.violations() == []  # the fencing lesson, not a violation
    cut = checker.check(_stale_after("partition"))
    assert cut.unfenced_stale_by_cause == {"partition": 1}
    assert cut.violations() == ["1 stale unfenced writes after a partition"]
    assert any("caused by: pause 0, partition 1, other 0" in line for line in cut.lines())


def test_a_restart_clears_the_blame_of_an_earlier_fault():
    hist = _stale_after("pause")
    hist.faults.append(Fault(3.0, "restart", "n1"))
    assert checker.check(hist).unfenced_stale_by_cause == {"other": 1}


def test_a_cut_off_holder_is_no_working_leader_and_gets_the_partition_window():
    bounds = checker.Bounds(detection=1.0, handover=1.0, startup=0.0, partition=3.0)
    faults = [Fault(0.0, "start", "n1"), Fault(2.0, "partition", "n1"), Fault(8.0, "heal", "n1")]
    samples = [HolderSample(0.0, "s-1", "n1", 10, 1), HolderSample(7.0, "s-2", "n2", 20, 1)]
    faults.append(Fault(0.0, "start", "n2"))
    leaderless, _ = checker.leaderless_time(
        history(samples=samples, faults=faults, bounds=bounds, end=10.0)
    )
    assert leaderless.expected == pytest.approx(3.0, abs=0.05)  # 2 s .. 5 s: the TTL path
    assert leaderless.unexplained == pytest.approx(2.0, abs=0.05)  # 5 s .. 7 s
