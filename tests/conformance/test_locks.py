"""Lock acquire/release on KV keys: checkable facts 23-31, 33, 34 (consul-facts.md 2.4, 4).

The timed lock-delay facts (32 and friends) are in test_timing.py.
"""

from __future__ import annotations

from .conftest import Sessions
from .support import Api, b64

NO_SUCH_SESSION = "11111111-1111-1111-1111-111111111111"


def test_fact23_acquire_with_unknown_session_is_500(api: Api, prefix: str) -> None:
    """Fact 23 [agent/consul/state/kvs.go :: kvsLockTxn; agent/consul/kvs_endpoint.go ::
    KVS.Apply]: acquire with a session that does not exist -> 500 'raft apply failed:
    invalid session "<id>"'; nothing is written."""
    response = api.put(f"/v1/kv/{prefix}l?acquire={NO_SUCH_SESSION}", b"v")
    assert response.status_code == 500
    assert response.text.strip() == f'raft apply failed: invalid session "{NO_SUCH_SESSION}"'
    assert api.kv_entry(f"{prefix}l") is None


def test_fact24_acquire_with_empty_session_is_500(api: Api, prefix: str) -> None:
    """Fact 24 [kvsLockTxn; KVS.Apply]: ?acquire= -> 500 'raft apply failed: missing
    session'."""
    response = api.put(f"/v1/kv/{prefix}l?acquire=", b"v")
    assert response.status_code == 500
    assert response.text.strip() == "raft apply failed: missing session"


def test_release_with_empty_session_is_500(api: Api, prefix: str) -> None:
    """Section 2.4 release step 1 [kvsUnlockTxn]: ?release= -> 500 'raft apply failed:
    missing session'."""
    api.kv_put(f"{prefix}l", b"v")
    response = api.put(f"/v1/kv/{prefix}l?release=", b"v")
    assert response.status_code == 500
    assert response.text.strip() == "raft apply failed: missing session"


def test_fact25_acquire_new_key(api: Api, prefix: str, sessions: Sessions) -> None:
    """Fact 25 [kvsLockTxn]: acquiring a new key -> true; LockIndex 1, Session S1,
    CreateIndex == ModifyIndex."""
    s1 = sessions.create()
    assert api.kv_put(f"{prefix}l", b"1", f"?acquire={s1}") is True
    entry = api.kv_entry(f"{prefix}l")
    assert entry["LockIndex"] == 1
    assert entry["Session"] == s1
    assert entry["Value"] == b64("1")
    assert entry["CreateIndex"] == entry["ModifyIndex"]


def test_fact26_reacquire_by_holder(api: Api, prefix: str, sessions: Sessions) -> None:
    """Fact 26 [kvsLockTxn + kvsSetTxn; kvs_test.go :: TestStateStore_KVSLock]: the holder
    re-acquiring with a new value -> true, LockIndex stays 1, ModifyIndex moves; repeating
    with the same value -> true, ModifyIndex unchanged."""
    s1 = sessions.create()
    api.kv_put(f"{prefix}l", b"1", f"?acquire={s1}")
    first = api.kv_entry(f"{prefix}l")
    assert api.kv_put(f"{prefix}l", b"2", f"?acquire={s1}") is True
    second = api.kv_entry(f"{prefix}l")
    assert second["LockIndex"] == 1
    assert second["Value"] == b64("2")
    assert second["ModifyIndex"] > first["ModifyIndex"]
    assert second["CreateIndex"] == first["CreateIndex"]
    assert api.kv_put(f"{prefix}l", b"2", f"?acquire={s1}") is True
    assert api.kv_entry(f"{prefix}l")["ModifyIndex"] == second["ModifyIndex"]


def test_fact27_acquire_held_by_other_session_fails(
    api: Api, prefix: str, sessions: Sessions
) -> None:
    """Fact 27 [kvsLockTxn; py:tests/test_std.py :: test_kv_acquire_release]: another
    session's acquire -> false, and the entry is unchanged."""
    s1, s2 = sessions.create(), sessions.create()
    api.kv_put(f"{prefix}l", b"1", f"?acquire={s1}")
    before = api.kv_entry(f"{prefix}l")
    assert api.kv_put(f"{prefix}l", b"other", f"?acquire={s2}") is False
    assert api.kv_entry(f"{prefix}l") == before


def test_fact28_release_by_non_holder_is_false(api: Api, prefix: str, sessions: Sessions) -> None:
    """Fact 28 [kvsUnlockTxn; py:tests/test_std.py :: test_kv_acquire_release]: release by
    another session or by a non-existent id -> false (not an error); nothing changes."""
    s1, s2 = sessions.create(), sessions.create()
    api.kv_put(f"{prefix}l", b"1", f"?acquire={s1}")
    before = api.kv_entry(f"{prefix}l")
    assert api.kv_put(f"{prefix}l", b"x", f"?release={s2}") is False
    assert api.kv_put(f"{prefix}l", b"x", "?release=not-a-session") is False
    assert api.kv_entry(f"{prefix}l") == before


def test_fact29_release_then_immediate_acquire(api: Api, prefix: str, sessions: Sessions) -> None:
    """Fact 29 [kvsUnlockTxn, kvsLockTxn; kvsPreApply]: the holder's release with body z ->
    true, Session removed, LockIndex kept, Value replaced; another session can acquire at
    once (an explicit release sets no lock-delay) and LockIndex becomes 2."""
    s1 = sessions.create({"LockDelay": "15s"})
    s2 = sessions.create()
    api.kv_put(f"{prefix}l", b"1", f"?acquire={s1}")
    held = api.kv_entry(f"{prefix}l")
    assert api.kv_put(f"{prefix}l", b"z", f"?release={s1}") is True
    released = api.kv_entry(f"{prefix}l")
    assert "Session" not in released
    assert released["LockIndex"] == held["LockIndex"] == 1
    assert released["Value"] == b64("z")
    assert released["CreateIndex"] == held["CreateIndex"]
    assert released["ModifyIndex"] > held["ModifyIndex"]
    assert api.kv_put(f"{prefix}l", b"2", f"?acquire={s2}") is True
    taken = api.kv_entry(f"{prefix}l")
    assert taken["Session"] == s2
    assert taken["LockIndex"] == 2


def test_release_replaces_flags_and_empty_body_nulls_value(
    api: Api, prefix: str, sessions: Sessions
) -> None:
    """Section 2.4 release step 3 (code reading) [kvsUnlockTxn]: the release request's
    flags replace the stored ones and an empty body sets Value to null."""
    s1 = sessions.create()
    api.kv_put(f"{prefix}l", b"held", f"?acquire={s1}&flags=9")
    assert api.kv_entry(f"{prefix}l")["Flags"] == 9
    assert api.kv_put(f"{prefix}l", b"", f"?release={s1}&flags=4") is True
    entry = api.kv_entry(f"{prefix}l")
    assert entry["Flags"] == 4
    assert entry["Value"] is None


def test_fact30_release_missing_key_is_false(api: Api, prefix: str, sessions: Sessions) -> None:
    """Fact 30 [kvsUnlockTxn]: release on a missing key -> false; the key is not created."""
    s1 = sessions.create()
    assert api.kv_put(f"{prefix}nokey2", b"v", f"?release={s1}") is False
    assert api.kv_entry(f"{prefix}nokey2") is None


def test_release_unheld_key_is_false(api: Api, prefix: str, sessions: Sessions) -> None:
    """Section 2.4 release step 2 [kvsUnlockTxn]: release of an existing key nobody holds ->
    false and nothing changes."""
    s1 = sessions.create()
    api.kv_put(f"{prefix}free", b"v")
    before = api.kv_entry(f"{prefix}free")
    assert api.kv_put(f"{prefix}free", b"w", f"?release={s1}") is False
    assert api.kv_entry(f"{prefix}free") == before


def test_fact31_plain_put_on_locked_key_keeps_holder(
    api: Api, prefix: str, sessions: Sessions
) -> None:
    """Fact 31 [agent/consul/state/kvs.go :: kvsSetTxn; docs sessions/index.mdx; issue
    hashicorp/consul#1623]: locks are advisory: a plain PUT on a held key -> true and the
    Session stays."""
    s1 = sessions.create()
    api.kv_put(f"{prefix}l", b"1", f"?acquire={s1}")
    assert api.kv_put(f"{prefix}l", b"x") is True
    entry = api.kv_entry(f"{prefix}l")
    assert entry["Session"] == s1
    assert entry["Value"] == b64("x")


def test_acquire_unheld_existing_key_increments_lock_index(
    api: Api, prefix: str, sessions: Sessions
) -> None:
    """Section 2.4 acquire step 6 [kvsLockTxn]: acquiring an existing key with no holder ->
    LockIndex old+1, Session set, CreateIndex kept, new Value and Flags."""
    s1 = sessions.create()
    api.kv_put(f"{prefix}l", b"plain", "?flags=1")
    before = api.kv_entry(f"{prefix}l")
    assert before["LockIndex"] == 0
    assert api.kv_put(f"{prefix}l", b"mine", f"?acquire={s1}&flags=7") is True
    entry = api.kv_entry(f"{prefix}l")
    assert entry["LockIndex"] == 1
    assert entry["Session"] == s1
    assert entry["Flags"] == 7
    assert entry["Value"] == b64("mine")
    assert entry["CreateIndex"] == before["CreateIndex"]


def test_session_ids_match_case_insensitively(api: Api, prefix: str, sessions: Sessions) -> None:
    """Section 2.4 acquire step 3 [agent/consul/state/session.go :: indexFromSession]: the
    session lookup lower-cases ids, so an upper-cased id still names the session."""
    s1 = sessions.create()
    assert api.kv_put(f"{prefix}l", b"v", f"?acquire={s1.upper()}") is True
    entry = api.kv_entry(f"{prefix}l")
    assert entry["LockIndex"] == 1
    assert entry["Session"].lower() == s1


def test_fact33_zero_lock_delay_allows_immediate_acquire(
    api: Api, prefix: str, sessions: Sessions
) -> None:
    """Fact 33 [agent/consul/state/session.go :: deleteSessionTxn (`if delay > 0`)]: a
    session with LockDelay 0s holding k is destroyed -> another session acquires k at once."""
    s1 = sessions.create({"LockDelay": "0s"})
    s2 = sessions.create()
    api.kv_put(f"{prefix}k", b"v", f"?acquire={s1}")
    assert api.put(f"/v1/session/destroy/{s1}").json() is True
    assert api.kv_put(f"{prefix}k", b"v2", f"?acquire={s2}") is True
    assert api.kv_entry(f"{prefix}k")["LockIndex"] == 2


def test_fact34_behavior_delete_removes_keys_on_destroy(
    api: Api, prefix: str, sessions: Sessions
) -> None:
    """Fact 34 [deleteSessionTxn (SessionKeysDelete); py:tests/test_std.py ::
    test_session_delete_ttl_renew]: destroying a Behavior=delete session deletes its keys."""
    s1 = sessions.create({"Behavior": "delete", "LockDelay": "0s"})
    api.kv_put(f"{prefix}k", b"v", f"?acquire={s1}")
    api.kv_put(f"{prefix}untouched", b"v")
    assert api.put(f"/v1/session/destroy/{s1}").json() is True
    assert api.get(f"/v1/kv/{prefix}k").status_code == 404
    assert api.kv_entry(f"{prefix}untouched") is not None


def test_behavior_release_clears_session_keeps_value(
    api: Api, prefix: str, sessions: Sessions
) -> None:
    """Section 3.6 [deleteSessionTxn, Behavior=release]: invalidation clears Session, keeps
    LockIndex, Value and Flags, and moves ModifyIndex."""
    s1 = sessions.create({"LockDelay": "0s"})
    api.kv_put(f"{prefix}k", b"kept", f"?acquire={s1}&flags=5")
    held = api.kv_entry(f"{prefix}k")
    api.put(f"/v1/session/destroy/{s1}")
    entry = api.kv_entry(f"{prefix}k")
    assert "Session" not in entry
    assert entry["LockIndex"] == held["LockIndex"]
    assert entry["Value"] == b64("kept")
    assert entry["Flags"] == 5
    assert entry["ModifyIndex"] > held["ModifyIndex"]
