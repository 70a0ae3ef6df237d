"""Sessions: validation, the TTL timer (at 2 x TTL) and every invalidation path."""

from __future__ import annotations

import pytest

from elect_helpers.devagent.definitions import build_service
from elect_helpers.devagent.errors import Failure
from elect_helpers.devagent.state import DevState
from elect_helpers.devagent.timers import TimerService

from .support import SECOND, new_session


def exists(state: DevState, session_id: str) -> bool:
    with state.store.lock:
        return state.sessions.lookup(session_id) is not None


def holder(state: DevState, key: str) -> str | None:
    with state.store.lock:
        found = state.kv.get(key).value
        return None if found is None else found.session


def register_ttl_service(state: DevState, name: str = "web") -> str:
    service, checks = build_service({"Name": name, "Check": {"TTL": 30 * SECOND}}, "devnode")
    state.local.add_service(service, checks)
    return checks[0][0].check_id


@pytest.mark.parametrize(
    ("ttl", "message"),
    [
        ("5s", "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]"),
        ("25h", "Invalid Session TTL '90000000000000', must be between [10s=24h0m0s]"),
    ],
)
def test_ttl_out_of_range(state: DevState, ttl: str, message: str) -> None:
    with pytest.raises(Failure) as caught:
        new_session(state, ttl=ttl)
    assert caught.value.message == message


def test_ttl_unparseable_and_behavior_invalid(state: DevState) -> None:
    with pytest.raises(Failure, match=r"^Session TTL 'abc' invalid: time: invalid duration"):
        new_session(state, ttl="abc")
    with pytest.raises(Failure, match=r"^Invalid Behavior setting 'foo'$"):
        new_session(state, behavior="foo")


def test_zero_ttl_means_no_timer(state: DevState) -> None:
    sid = new_session(state, ttl="0s")
    assert not state.sessions.timer_pending(sid)


def test_node_and_check_validation(state: DevState) -> None:
    with pytest.raises(Failure, match=r"^apply failed: Missing node registration$"):
        new_session(state, node="no-such-node")
    with pytest.raises(Failure, match=r"^apply failed: Missing check 'nope' registration$"):
        new_session(state, node_checks=["nope"])
    check_id = register_ttl_service(state)
    with pytest.raises(Failure, match=r"^apply failed: Check 'service:web' is in critical state$"):
        new_session(state, service_checks=[{"ID": check_id, "Namespace": ""}])
    state.local.update_ttl(check_id, "passing", "")
    assert new_session(state, service_checks=[{"ID": check_id, "Namespace": ""}])


def test_ttl_timer_fires_at_twice_the_ttl(state: DevState, timers: TimerService) -> None:
    sid = new_session(state, ttl="10s")
    timers.advance(10 * SECOND)
    assert exists(state, sid)
    timers.advance(10 * SECOND - 1)
    assert exists(state, sid)
    timers.advance(1)
    assert not exists(state, sid)


def test_renew_resets_the_timer(state: DevState, timers: TimerService) -> None:
    sid = new_session(state, ttl="10s")
    timers.advance(15 * SECOND)
    renewed = state.session_renew(sid)
    assert [s.ttl for s in renewed] == ["10s"]
    timers.advance(15 * SECOND)
    assert exists(state, sid)
    timers.advance(5 * SECOND)
    assert not exists(state, sid)
    assert state.session_renew(sid) == []


def test_ttl_expiry_releases_locks_with_lock_delay(state: DevState, timers: TimerService) -> None:
    sid = new_session(state, ttl="10s", lock_delay=1 * SECOND)
    other = new_session(state)
    state.kv_acquire("k", b"v", 0, sid)
    timers.advance(20 * SECOND)
    assert holder(state, "k") == ""
    assert state.kv_acquire("k", b"v", 0, other) is False
    timers.advance(1 * SECOND)
    assert state.kv_acquire("k", b"v", 0, other) is True


def test_destroy_clears_timer_and_is_idempotent(state: DevState) -> None:
    sid = new_session(state, ttl="10s")
    assert state.sessions.timer_pending(sid)
    assert state.session_destroy(sid) is True
    assert not state.sessions.timer_pending(sid)
    assert state.session_destroy(sid) is True


def test_bound_check_going_critical_invalidates_synchronously(state: DevState) -> None:
    check_id = register_ttl_service(state)
    state.local.update_ttl(check_id, "passing", "")
    sid = new_session(state, service_checks=[{"ID": check_id, "Namespace": ""}])
    state.kv_acquire("k", b"v", 0, sid)
    state.local.update_ttl(check_id, "critical", "down")
    assert not exists(state, sid)
    assert holder(state, "k") == ""


def test_warning_does_not_invalidate(state: DevState) -> None:
    check_id = register_ttl_service(state)
    state.local.update_ttl(check_id, "passing", "")
    sid = new_session(state, service_checks=[{"ID": check_id, "Namespace": ""}])
    state.local.update_ttl(check_id, "warning", "")
    assert exists(state, sid)


def test_ttl_check_expiry_invalidates_bound_session(state: DevState, timers: TimerService) -> None:
    check_id = register_ttl_service(state)
    state.local.update_ttl(check_id, "passing", "")
    sid = new_session(state, service_checks=[{"ID": check_id, "Namespace": ""}])
    timers.advance(30 * SECOND)
    assert not exists(state, sid)


def test_check_deregistration_invalidates(state: DevState) -> None:
    check_id = register_ttl_service(state)
    state.local.update_ttl(check_id, "passing", "")
    sid = new_session(state, service_checks=[{"ID": check_id, "Namespace": ""}])
    state.local.remove_check(check_id)
    assert not exists(state, sid)


def test_service_deregistration_invalidates(state: DevState) -> None:
    check_id = register_ttl_service(state)
    state.local.update_ttl(check_id, "passing", "")
    sid = new_session(state, service_checks=[{"ID": check_id, "Namespace": ""}])
    unrelated = new_session(state)
    state.local.remove_service("web")
    assert not exists(state, sid)
    assert exists(state, unrelated)


def test_session_without_checks_survives_check_changes(state: DevState) -> None:
    check_id = register_ttl_service(state)
    state.local.update_ttl(check_id, "passing", "")
    sid = new_session(state, node_checks=[])
    state.local.update_ttl(check_id, "critical", "")
    assert exists(state, sid)


def test_session_lookup_is_case_insensitive(state: DevState) -> None:
    sid = new_session(state)
    assert exists(state, sid.upper())


def test_first_failing_check_follows_consuls_check_ids_order(state: DevState) -> None:
    # Session.CheckIDs: deprecated Checks first, then NodeChecks, then ServiceChecks.
    with pytest.raises(Failure, match=r"^apply failed: Missing check 'c' registration$"):
        new_session(
            state, checks=["c"], node_checks=["n"], service_checks=[{"ID": "s", "Namespace": ""}]
        )
    with pytest.raises(Failure, match=r"^apply failed: Missing check 'n' registration$"):
        new_session(state, node_checks=["n"], service_checks=[{"ID": "s", "Namespace": ""}])


def test_node_keeps_the_requests_spelling(state: DevState) -> None:
    sid = new_session(state, node="DEVNODE")
    with state.store.lock:
        assert [s.node for s in state.sessions.get(sid).value] == ["DEVNODE"]
        assert [s.id for s in state.sessions.for_node("devnode").value] == [sid]


def test_check_binding_ignores_case(state: DevState) -> None:
    check_id = register_ttl_service(state)
    state.local.update_ttl(check_id, "passing", "")
    sid = new_session(state, node_checks=["SERFHEALTH", check_id.upper()])
    state.local.update_ttl(check_id, "critical", "down")
    assert not exists(state, sid)
