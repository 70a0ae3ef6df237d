"""Session timers and lock-delay: checkable facts 32 and 51, with renew and every kind of
invalidation (consul-facts.md section 3.6).

TTLs are scaled to the agent's ``session_ttl_min`` (see ``support.Timing``): 0.5s on the
embedded agent, 1s on ``consul agent -dev -hcl 'session_ttl_min="1s"'``.  Lock-delays are
0.8s instead of the default 15s.  Every bound is taken from request start/end times, so a
slow request only ever makes a test more lenient, never wrong.
"""

from __future__ import annotations

import time

import pytest

from .conftest import Registrations, Sessions
from .support import Api, Probe, Timing, index_of

NO_SUCH_SESSION = "11111111-1111-1111-1111-111111111111"


def session_alive(api: Api, session_id: str) -> Probe:
    return Probe(lambda: api.session_info(session_id) is not None)


@pytest.mark.slow
def test_fact51_ttl_session_expires_between_ttl_and_twice_ttl(
    api: Api, sessions: Sessions, timing: Timing
) -> None:
    """Fact 51 [agent/consul/session_ttl.go :: createSessionTimer; agent/structs/structs.go
    SessionTTLMultiplier=2; docs sessions/index.mdx]: a session with TTL T that is never
    renewed still exists well after T (at 1.3T, so an agent expiring at 1xTTL fails) and
    is gone by about 2T."""
    began = time.monotonic()
    session_id = sessions.create({"TTL": timing.ttl_go})
    created = time.monotonic()
    probe = session_alive(api, session_id)
    probe.until_false(deadline=created + timing.gone_by + 2)
    last_alive = probe.last_start_with(True)
    first_gone = probe.first_end_with(False)
    assert last_alive is not None and last_alive - created >= timing.alive_until, (
        f"gone before {timing.alive_until:.2f}s (TTL {timing.ttl}s)"
    )
    assert first_gone is not None, "never expired"
    assert first_gone - began <= timing.gone_by, (
        f"still there {first_gone - began:.2f}s after creation (TTL {timing.ttl}s)"
    )
    renew = api.put(f"/v1/session/renew/{session_id}")
    assert renew.status_code == 404


@pytest.mark.slow
def test_renew_resets_the_timer(api: Api, sessions: Sessions, timing: Timing) -> None:
    """Section 3.5/3.6 [agent/consul/session_ttl.go :: resetSessionTimer]: renewing every T
    keeps a session alive long past 2T; after the last renew it again lives past 1.3T and is
    gone by about 2T."""
    began = time.monotonic()
    session_id = sessions.create({"TTL": timing.ttl_go})
    last_renew_start = began
    last_renew_end = time.monotonic()
    while last_renew_end - began < timing.gone_by + 0.5 * timing.ttl:
        time.sleep(max(0.0, last_renew_end + timing.ttl - time.monotonic()))
        last_renew_start = time.monotonic()
        response = api.put(f"/v1/session/renew/{session_id}")
        last_renew_end = time.monotonic()
        assert response.status_code == 200, (
            f"renew failed {last_renew_start - began:.2f}s after creation: {response.text}"
        )
        assert response.json()[0]["TTL"] == timing.ttl_go
    probe = session_alive(api, session_id)
    probe.until_false(deadline=last_renew_end + timing.gone_by + 2)
    last_alive = probe.last_start_with(True)
    first_gone = probe.first_end_with(False)
    assert last_alive is not None and last_alive - last_renew_end >= timing.alive_until
    assert first_gone is not None, "never expired after the last renew"
    assert first_gone - last_renew_start <= timing.gone_by


@pytest.mark.slow
def test_ttl_expiry_releases_lock_and_sets_lock_delay(
    api: Api, prefix: str, sessions: Sessions, timing: Timing
) -> None:
    """Section 3.6 [deleteSessionTxn on TTL invalidation; kvsPreApply]: when a TTL session
    holding k expires, k loses its Session (LockIndex kept) and the session's lock-delay
    then blocks a new acquire, which succeeds once the delay is over."""
    holder = sessions.create({"TTL": timing.ttl_go, "LockDelay": timing.lock_delay_go})
    waiting = sessions.create()
    key = f"{prefix}leader"
    assert api.kv_put(key, b"me", f"?acquire={holder}") is True
    index = index_of(api.get(f"/v1/kv/{key}"))
    watch_start = time.monotonic()
    response = api.get(f"/v1/kv/{key}?index={index}&wait=30s", timeout=60)
    released = time.monotonic()
    entry = response.json()[0]
    assert "Session" not in entry, "woken while still held"
    assert entry["LockIndex"] == 1
    assert api.session_info(holder) is None
    probe = Probe(lambda: api.kv_put(key, b"next", f"?acquire={waiting}"))
    probe.until_true(deadline=released + timing.lock_delay + 3)
    assert probe.observations[0].value is False, "acquired right after expiry: no lock-delay"
    acquired = probe.first_end_with(True)
    assert acquired is not None, "never acquired after the lock-delay"
    assert acquired - watch_start >= timing.lock_delay
    assert probe.first_start_with(True) - released <= (timing.lock_delay + timing.lock_delay_margin)
    assert api.kv_entry(key)["LockIndex"] == 2


@pytest.mark.slow
def test_fact32_destroy_sets_lock_delay(
    api: Api, prefix: str, sessions: Sessions, timing: Timing
) -> None:
    """Fact 32, scaled from 15s to the session's own LockDelay [agent/consul/state/session.go
    :: deleteSessionTxn; kvsPreApply; agent/consul/kvs_endpoint_test.go ::
    TestKVS_Apply_LockDelay]: destroy -> true; k keeps LockIndex, loses Session, ModifyIndex
    moves; another session's acquire is false for the lock-delay and true after it, with
    LockIndex +1."""
    holder = sessions.create({"LockDelay": timing.lock_delay_go})
    other = sessions.create()
    key = f"{prefix}k"
    api.kv_put(key, b"v", f"?acquire={holder}")
    held = api.kv_entry(key)
    destroy_start = time.monotonic()
    assert api.put(f"/v1/session/destroy/{holder}").json() is True
    destroyed = time.monotonic()
    entry = api.kv_entry(key)
    assert "Session" not in entry
    assert entry["LockIndex"] == held["LockIndex"]
    assert entry["ModifyIndex"] > held["ModifyIndex"]
    probe = Probe(lambda: api.kv_put(key, b"mine", f"?acquire={other}"))
    probe.until_true(deadline=destroyed + timing.lock_delay + 3)
    assert probe.observations[0].value is False, "acquired right after destroy: no lock-delay"
    acquired = probe.first_end_with(True)
    assert acquired is not None, "never acquired after the lock-delay"
    assert acquired - destroy_start >= timing.lock_delay, "lock-delay ended early"
    assert probe.first_start_with(True) - destroyed <= (
        timing.lock_delay + timing.lock_delay_margin
    )
    taken = api.kv_entry(key)
    assert taken["Session"] == other
    assert taken["LockIndex"] == held["LockIndex"] + 1


def test_lock_delay_blocks_only_acquire(
    api: Api, prefix: str, sessions: Sessions, timing: Timing
) -> None:
    """Section 3.6 [kvsPreApply checks only KVLock]: during a lock-delay a brand-new
    session's acquire is false, an acquire with a non-existent session is also false (the
    delay is checked before the session, code reading), and plain PUT and DELETE work."""
    holder = sessions.create({"LockDelay": "10s"})
    key = f"{prefix}k"
    api.kv_put(key, b"v", f"?acquire={holder}")
    api.put(f"/v1/session/destroy/{holder}")
    newcomer = sessions.create()
    assert api.kv_put(key, b"x", f"?acquire={newcomer}") is False
    response = api.put(f"/v1/kv/{key}?acquire={NO_SUCH_SESSION}", b"x")
    assert response.status_code == 200
    assert response.json() is False
    assert api.kv_put(key, b"plain") is True
    assert api.kv_entry(key)["Value"] == "cGxhaW4="
    assert api.delete(f"/v1/kv/{key}").json() is True
    assert api.kv_entry(key) is None


def test_explicit_release_sets_no_lock_delay(
    api: Api, prefix: str, sessions: Sessions, timing: Timing
) -> None:
    """Fact 29 / section 2.4 release step 4 [kvsUnlockTxn sets no delay]: after an explicit
    release by a session with a long LockDelay, another session acquires at once; the
    releasing session itself also stays valid."""
    holder = sessions.create({"LockDelay": "10s", "TTL": timing.ttl_go})
    other = sessions.create()
    key = f"{prefix}k"
    api.kv_put(key, b"v", f"?acquire={holder}")
    assert api.kv_put(key, b"v", f"?release={holder}") is True
    assert api.kv_put(key, b"w", f"?acquire={other}") is True
    assert api.kv_entry(key)["Session"] == other


@pytest.mark.slow
def test_behavior_delete_expiry_deletes_key_with_lock_delay(
    api: Api, prefix: str, sessions: Sessions, timing: Timing
) -> None:
    """Section 3.6 / table 4 [deleteSessionTxn, Behavior=delete]: when a Behavior=delete
    session is destroyed its key is deleted and the lock-delay still applies to it: a new
    acquire (which would create the key) is false until the delay is over."""
    holder = sessions.create({"Behavior": "delete", "LockDelay": timing.lock_delay_go})
    other = sessions.create()
    key = f"{prefix}k"
    api.kv_put(key, b"v", f"?acquire={holder}")
    destroy_start = time.monotonic()
    api.put(f"/v1/session/destroy/{holder}")
    destroyed = time.monotonic()
    assert api.kv_entry(key) is None
    probe = Probe(lambda: api.kv_put(key, b"mine", f"?acquire={other}"))
    probe.until_true(deadline=destroyed + timing.lock_delay + 3)
    assert probe.observations[0].value is False, "acquired right after destroy: no lock-delay"
    acquired = probe.first_end_with(True)
    assert acquired is not None
    assert acquired - destroy_start >= timing.lock_delay
    assert probe.first_start_with(True) - destroyed <= (
        timing.lock_delay + timing.lock_delay_margin
    )
    entry = api.kv_entry(key)
    assert entry["LockIndex"] == 1
    assert entry["CreateIndex"] == entry["ModifyIndex"]


def test_critical_check_invalidation_sets_lock_delay(
    api: Api,
    uid: str,
    prefix: str,
    sessions: Sessions,
    registrations: Registrations,
    timing: Timing,
) -> None:
    """Fact 50 with its lock-delay [agent/agent_endpoint.go :: agentCheckUpdate;
    ensureCheckTxn -> deleteSessionTxn]: a bound check failing invalidates the session when
    the fail call returns, and the session's lock-delay then holds off a new acquire."""
    service = f"web-{uid}"
    check = f"service:{service}"
    registrations.service({"Name": service, "Check": {"TTL": "30s", "Status": "passing"}})
    holder = sessions.create({"ServiceChecks": [{"ID": check}], "LockDelay": "10s"})
    other = sessions.create()
    key = f"{prefix}k"
    api.kv_put(key, b"v", f"?acquire={holder}")
    assert api.put(f"/v1/agent/check/fail/{check}").status_code == 200
    assert api.session_info(holder) is None
    assert "Session" not in api.kv_entry(key)
    assert api.kv_put(key, b"mine", f"?acquire={other}") is False


def test_lock_delay_applies_to_every_key_of_the_session(
    api: Api, prefix: str, sessions: Sessions, timing: Timing
) -> None:
    """Section 3.6 [deleteSessionTxn sets a delay on each affected key]: a session holding
    two keys puts both under lock-delay when destroyed; a key it never held is free."""
    holder = sessions.create({"LockDelay": "10s"})
    other = sessions.create()
    for name in ("a", "b"):
        api.kv_put(f"{prefix}{name}", b"v", f"?acquire={holder}")
    api.kv_put(f"{prefix}free", b"v")
    api.put(f"/v1/session/destroy/{holder}")
    assert api.kv_put(f"{prefix}a", b"x", f"?acquire={other}") is False
    assert api.kv_put(f"{prefix}b", b"x", f"?acquire={other}") is False
    assert api.kv_put(f"{prefix}free", b"x", f"?acquire={other}") is True
