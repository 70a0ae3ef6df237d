"""KV lock semantics: the table in consul-facts section 4, one row per test."""

from __future__ import annotations

import pytest

from elect_helpers.devagent.errors import Failure
from elect_helpers.devagent.state import DevState
from elect_helpers.devagent.timers import TimerService

from .support import SECOND, new_session


def entry(state: DevState, key: str):  # type: ignore[no-untyped-def]
    with state.store.lock:
        return state.kv.get(key).value


def test_acquire_new_key(state: DevState) -> None:
    s1 = new_session(state)
    assert state.kv_acquire("k", b"1", 7, s1) is True
    e = entry(state, "k")
    assert (e.session, e.lock_index, e.flags, e.value) == (s1, 1, 7, b"1")
    assert e.create_index == e.modify_index == state.store.index


def test_acquire_unlocked_existing_key_increments_lock_index(state: DevState) -> None:
    s1 = new_session(state)
    state.kv_acquire("k", b"1", 0, s1)
    state.kv_release("k", b"1", 0, s1)
    assert state.kv_acquire("k", b"2", 0, s1) is True
    assert entry(state, "k").lock_index == 2


def test_reacquire_same_session_moves_modify_index_only_on_change(state: DevState) -> None:
    s1 = new_session(state)
    state.kv_acquire("k", b"1", 0, s1)
    state.kv_acquire("k", b"2", 0, s1)
    first = entry(state, "k")
    assert (first.lock_index, first.value) == (1, b"2")
    assert state.kv_acquire("k", b"2", 0, s1) is True
    again = entry(state, "k")
    assert again.modify_index == first.modify_index
    assert again.create_index == first.create_index


def test_acquire_held_by_other_session_changes_nothing(state: DevState) -> None:
    s1, s2 = new_session(state), new_session(state)
    state.kv_acquire("k", b"1", 0, s1)
    before = entry(state, "k")
    assert state.kv_acquire("k", b"other", 9, s2) is False
    assert entry(state, "k") == before


def test_release_by_holder_takes_request_value_and_sets_no_delay(state: DevState) -> None:
    s1, s2 = new_session(state), new_session(state)
    state.kv_acquire("k", b"1", 3, s1)
    held = entry(state, "k")
    assert state.kv_release("k", b"z", 0, s1) is True
    released = entry(state, "k")
    assert released.session == ""
    assert released.lock_index == held.lock_index
    assert (released.value, released.flags) == (b"z", 0)
    assert released.modify_index > held.modify_index
    assert state.kv_acquire("k", None, 0, s2) is True
    assert entry(state, "k").lock_index == held.lock_index + 1


def test_release_by_non_holder_or_missing_key_is_false(state: DevState) -> None:
    s1, s2 = new_session(state), new_session(state)
    state.kv_acquire("k", b"1", 0, s1)
    before = entry(state, "k")
    assert state.kv_release("k", b"x", 0, s2) is False
    assert state.kv_release("k", b"x", 0, "not-a-session") is False
    assert state.kv_release("missing", b"x", 0, s1) is False
    assert entry(state, "k") == before


def test_plain_put_on_locked_key_keeps_holder_and_resets_lock_index(state: DevState) -> None:
    s1 = new_session(state)
    state.kv_acquire("k", b"1", 0, s1)
    assert state.kv_set("k", b"x", 0) is True
    e = entry(state, "k")
    assert (e.session, e.value, e.lock_index) == (s1, b"x", 0)


def test_invalidation_release_keeps_value_and_sets_lock_delay(state: DevState) -> None:
    s1 = new_session(state, lock_delay=5 * SECOND)
    s2 = new_session(state)
    state.kv_acquire("k", b"v", 4, s1)
    held = entry(state, "k")
    state.session_destroy(s1)
    e = entry(state, "k")
    assert e.session == ""
    assert (e.lock_index, e.value, e.flags) == (held.lock_index, b"v", 4)
    assert e.modify_index > held.modify_index
    assert state.kv_acquire("k", b"v", 0, s2) is False


def test_invalidation_delete_removes_key_and_sets_lock_delay(state: DevState) -> None:
    s1 = new_session(state, behavior="delete")
    s2 = new_session(state)
    state.kv_acquire("k", b"v", 0, s1)
    state.session_destroy(s1)
    assert entry(state, "k") is None
    assert state.kv_acquire("k", b"v", 0, s2) is False


@pytest.mark.parametrize(
    ("lock_delay", "effective"),
    [(2 * SECOND, 2 * SECOND), (600 * SECOND, 60 * SECOND)],
    ids=["its-duration", "capped-at-60s"],
)
def test_lock_delay_expires_after_its_capped_duration(
    state: DevState, timers: TimerService, lock_delay: int, effective: int
) -> None:
    s1 = new_session(state, lock_delay=lock_delay)
    s2 = new_session(state)
    state.kv_acquire("k", None, 0, s1)
    state.session_destroy(s1)
    timers.advance(effective - 1)
    assert state.kv_acquire("k", None, 0, s2) is False
    timers.advance(1)
    assert state.kv_acquire("k", None, 0, s2) is True


def test_zero_lock_delay_sets_no_delay(state: DevState) -> None:
    s1 = new_session(state, lock_delay=0)
    s2 = new_session(state)
    state.kv_acquire("k", None, 0, s1)
    state.session_destroy(s1)
    assert state.kv_acquire("k", None, 0, s2) is True


def test_lock_delay_is_checked_before_the_session(state: DevState) -> None:
    s1 = new_session(state)
    state.kv_acquire("k", None, 0, s1)
    state.session_destroy(s1)
    assert state.kv_acquire("k", None, 0, "bogus") is False


def test_plain_put_cas_and_delete_ignore_lock_delay(state: DevState) -> None:
    s1 = new_session(state)
    state.kv_acquire("k", None, 0, s1)
    state.session_destroy(s1)
    assert state.kv_set("k", b"a", 0) is True
    assert state.kv_cas("k", b"b", 0, entry(state, "k").modify_index) is True
    assert state.kv_delete("k") is True


def test_acquire_errors_carry_consuls_texts(state: DevState) -> None:
    with pytest.raises(Failure, match=r"^raft apply failed: missing session$"):
        state.kv_acquire("k", None, 0, "")
    sid = "11111111-1111-1111-1111-111111111111"
    with pytest.raises(Failure) as caught:
        state.kv_acquire("k", None, 0, sid)
    assert caught.value.message == f'raft apply failed: invalid session "{sid}"'
    with pytest.raises(Failure, match="missing session"):
        state.kv_release("k", None, 0, "")


@pytest.mark.parametrize("behavior", ["release", "delete"])
def test_invalidation_finds_locks_taken_with_an_upper_case_session_id(
    state: DevState, behavior: str
) -> None:
    # Consul's kvs "session" index parses the id as a UUID, so case does not matter there.
    s1 = new_session(state, behavior=behavior, lock_delay=0)
    assert state.kv_acquire("k", b"v", 0, s1.upper()) is True
    assert entry(state, "k").session == s1.upper()
    state.session_destroy(s1)
    e = entry(state, "k")
    assert e is None if behavior == "delete" else e.session == ""


def test_invalid_session_is_go_quoted(state: DevState) -> None:
    # kvsLockTxn formats the id with %#v, i.e. strconv.Quote.
    with pytest.raises(Failure) as caught:
        state.kv_acquire("k", None, 0, 'no"such\n')
    assert caught.value.message == 'raft apply failed: invalid session "no\\"such\\n"'
