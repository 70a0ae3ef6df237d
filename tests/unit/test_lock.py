"""lock: acquire/release the leader key, read the leader back, fencing tokens."""

from __future__ import annotations

import json

import pytest

from elect_helpers.errors import InvalidArgument, SessionGone
from elect_helpers.lock import (
    LOCK_FLAG_VALUE,
    FencingToken,
    leader_from_entry,
    leader_key,
    leader_value,
    read_leader,
    release,
    try_acquire,
)
from elect_helpers.session import create_session, destroy_session


def test_leader_key_and_value() -> None:
    assert leader_key("monitoring") == "service/monitoring/leader"
    with pytest.raises(InvalidArgument):
        leader_key("a/b")
    assert json.loads(leader_value("n1", "127.0.0.1:80", "s1")) == {
        "node": "n1",
        "address": "127.0.0.1:80",
        "session": "s1",
    }


def test_fencing_tokens_order_by_sequence() -> None:
    old = FencingToken("k", lock_index=3, session="a", sequence=10)
    new = FencingToken("k", lock_index=1, session="b", sequence=25)  # key was re-created
    assert old < new and new >= old and not new <= old
    assert int(new) == 25
    assert max([new, old]) is new
    assert "k#25" in str(new)


def test_leader_from_entry() -> None:
    assert leader_from_entry("k", None) is None
    assert leader_from_entry("k", {"Key": "k", "Value": b"x", "LockIndex": 2}) is None
    info = leader_from_entry(
        "k",
        {
            "Value": leader_value("n1", "a:1", "s1"),
            "Session": "s1",
            "LockIndex": 2,
            "ModifyIndex": 9,
            "CreateIndex": 4,
        },
    )
    assert (info.node, info.address, info.session) == ("n1", "a:1", "s1")
    assert (info.lock_index, info.modify_index, info.create_index) == (2, 9, 4)
    foreign = leader_from_entry("k", {"Value": b"not json", "Session": "s2"})
    assert foreign.session == "s2" and foreign.node == ""


def test_acquire_release_and_read_back(client, key_prefix) -> None:
    key = key_prefix + "leader"
    s1 = create_session(client, name="n1", ttl="10s", lock_delay=0)
    s2 = create_session(client, name="n2", ttl="10s", lock_delay=0)
    assert read_leader(client, key) is None
    assert try_acquire(client, key, s1, node="n1", address="127.0.0.1:1")
    info = read_leader(client, key)
    assert (info.node, info.address, info.session, info.lock_index) == (
        "n1",
        "127.0.0.1:1",
        s1,
        1,
    )
    assert not try_acquire(client, key, s2, node="n2")  # held by another session
    assert try_acquire(client, key, s1, node="n1", address="127.0.0.1:1")  # already ours
    assert not release(client, key, s2)  # not the holder
    assert release(client, key, s1)
    assert read_leader(client, key) is None
    assert try_acquire(client, key, s2, node="n2")  # explicit release: no lock-delay
    assert read_leader(client, key).lock_index == 2


def test_the_key_carries_the_go_clients_lock_flags(client, key_prefix) -> None:
    # api.Lock contends only for a key whose flags are api.LockFlagValue, so the key keeps
    # them while held and after an explicit release.
    key = key_prefix + "leader"
    sid = create_session(client, name="n1", ttl="10s", lock_delay=0)
    assert LOCK_FLAG_VALUE == 0x2DDCCBC058A50C18
    assert try_acquire(client, key, sid, node="n1")
    assert client.kv.get(key)[1]["Flags"] == LOCK_FLAG_VALUE
    assert release(client, key, sid)
    assert client.kv.get(key)[1]["Flags"] == LOCK_FLAG_VALUE
    destroy_session(client, sid)


def test_acquire_with_gone_session(client, key_prefix) -> None:
    sid = create_session(client, name="gone", ttl="10s")
    destroy_session(client, sid)
    with pytest.raises(SessionGone, match="no longer exists") as info:
        try_acquire(client, key_prefix + "leader", sid, node="n1")
    assert info.value.session_id == sid
    with pytest.raises(InvalidArgument):
        try_acquire(client, key_prefix + "leader", "", node="n1")


def test_modify_index_grows_when_delete_behaviour_recreates_the_key(client, key_prefix) -> None:
    """With behavior=delete LockIndex restarts at 1; the acquire's ModifyIndex keeps growing."""
    key = key_prefix + "leader"
    s1 = create_session(client, name="n1", ttl="10s", behavior="delete", lock_delay=0)
    assert try_acquire(client, key, s1, node="n1")
    first = read_leader(client, key)
    destroy_session(client, s1)  # invalidation deletes the key
    s2 = create_session(client, name="n2", ttl="10s", behavior="delete", lock_delay=0)
    assert try_acquire(client, key, s2, node="n2")
    second = read_leader(client, key)
    assert first.lock_index == second.lock_index == 1
    assert second.modify_index > first.modify_index
