"""Model-based test of KV + sessions against the reference model in ``kv_refmodel``.

Hypothesis runs random sequences of put / cas / acquire / release / delete / delete-cas /
session create / destroy / expire on the embedded agent and, after every step, compares
the agent's KV entries and sessions with the model: values, flags, LockIndex and Session
exactly; CreateIndex kept and ModifyIndex moved only by writes that change the entry,
always to an index above every index seen before; no key held by a session that does not
exist; and each answer (status, ``true``/``false``) as Consul gives it.

Each example works under its own key prefix with its own sessions on one shared agent.
Sessions are bound to their own TTL check (registered passing, TTL 1h); ``expire``
fails that check, which invalidates the session at once, as Consul does for a bound
check going critical (facts 3.6) -- the same invalidation a TTL expiry runs.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from .kv_refmodel import Effect, KVSessionModel

SECOND = 1_000_000_000
TTL_NS = 10 * SECOND
KEYS = ["a", "b"]
#: Lock-delays: none, shorter and longer than the TTL, Consul's 60 s cap, and over it.
LOCK_DELAYS = st.sampled_from([0, 5 * SECOND, 15 * SECOND, 60 * SECOND, 120 * SECOND])
VALUES = [b"", b"v1", b"v2"]
FLAGS = [0, 7]
_examples = itertools.count()


@dataclass(frozen=True)
class Actual:
    value: bytes | None
    flags: int
    lock_index: int
    session: str | None
    create_index: int
    modify_index: int


class HttpAgent:
    """The machine's operations over the agent's HTTP API (one shared agent).

    Sessions are bound to their own TTL check (registered passing, TTL 1h); ``expire``
    fails that check, which invalidates the session at once, as Consul does for a bound
    check going critical (facts 3.6) -- the same invalidation a TTL expiry runs.
    """

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self._conn = http.client.HTTPConnection(host, int(port), timeout=10)
        self.checks: dict[str, str] = {}

    def call(self, method: str, path: str, body: bytes = b"") -> tuple[int, object]:
        self._conn.request(method, path, body=body or None)
        response = self._conn.getresponse()
        data = response.read()
        if response.status == 200 and data:
            return 200, json.loads(data)
        return response.status, data.decode(errors="replace")

    def kv(self, method: str, key: str, value: bytes = b"", **params: object) -> tuple[int, object]:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return self.call(method, "/v1/kv/" + key + ("?" + query if query else ""), value)

    def create_session(self, behavior: str, lock_delay_ns: int) -> str:
        check = f"model-{uuid.uuid4().hex[:12]}"
        definition = {"ID": check, "Name": check, "TTL": "1h", "Status": "passing"}
        status, body = self.call("PUT", "/v1/agent/check/register", json.dumps(definition).encode())
        assert status == 200, body
        spec = {
            "Name": "model",
            "Behavior": behavior,
            "LockDelay": f"{lock_delay_ns}ns" if lock_delay_ns else "0s",
            "NodeChecks": [check],
        }
        status, body = self.call("PUT", "/v1/session/create", json.dumps(spec).encode())
        assert status == 200, body
        session = body["ID"]  # type: ignore[index]
        self.checks[session] = check
        return session

    def destroy(self, session: str) -> tuple[int, object]:
        return self.call("PUT", "/v1/session/destroy/" + session)

    def renew(self, session: str) -> int:
        return self.call("PUT", "/v1/session/renew/" + session)[0]

    def expire(self, session: str) -> None:
        status, body = self.call("PUT", "/v1/agent/check/fail/" + self.checks[session])
        assert status == 200, body

    def entries(self, prefix: str) -> dict[str, Actual]:
        status, body = self.call("GET", "/v1/kv/" + prefix + "?recurse")
        assert status in (200, 404), (status, body)
        found = {}
        for e in body if status == 200 else []:  # type: ignore[union-attr]
            value = base64.b64decode(e["Value"]) if e["Value"] is not None else None
            found[e["Key"][len(prefix) :]] = Actual(
                value,
                e["Flags"],
                e["LockIndex"],
                e.get("Session"),
                e["CreateIndex"],
                e["ModifyIndex"],
            )
        return found

    def live_sessions(self) -> set[str]:
        status, body = self.call("GET", "/v1/session/list")
        assert status == 200, body
        return {s["ID"] for s in body}  # type: ignore[union-attr]

    def close(self, prefix: str) -> None:
        for session, check in self.checks.items():
            self.destroy(session)
            self.call("PUT", "/v1/agent/check/deregister/" + check)
        self.call("DELETE", "/v1/kv/" + prefix + "?recurse")
        self._conn.close()


class DirectAgent:
    """The machine's operations on the dev agent's state machine (``DevState``), with a
    manual clock: ``advance`` lets TTL timers and lock-delays run out deterministically."""

    def __init__(self) -> None:
        from elect_helpers.devagent.errors import Failure, InvalidInput, NotFound
        from elect_helpers.devagent.state import DevState
        from elect_helpers.devagent.timers import ManualClock, TimerService

        self._errors = ((Failure, 500), (InvalidInput, 400), (NotFound, 404))
        self.clock = ManualClock()
        self.timers = TimerService(self.clock)
        self.state = DevState(
            node_name="model",
            session_ttl_min_ns=SECOND,
            timers=self.timers,
            start_check_runners=False,
        )

    def _run(self, call, *args) -> tuple[int, object]:  # type: ignore[no-untyped-def]
        try:
            return 200, call(*args)
        except Exception as exc:
            for kind, status in self._errors:
                if isinstance(exc, kind):
                    return status, exc.message  # type: ignore[attr-defined]
            raise

    def kv(self, method: str, key: str, value: bytes = b"", **params: object) -> tuple[int, object]:
        state, body = self.state, value or None
        flags = int(params.get("flags") or 0)  # type: ignore[arg-type]
        if method == "DELETE":
            if "cas" in params:
                return self._run(state.kv_delete_cas, key, params["cas"])
            return self._run(state.kv_delete, key)
        if "cas" in params:
            return self._run(state.kv_cas, key, body, flags, params["cas"])
        if "acquire" in params:
            return self._run(state.kv_acquire, key, body, flags, params["acquire"])
        if "release" in params:
            return self._run(state.kv_release, key, body, flags, params["release"])
        return self._run(state.kv_set, key, body, flags)

    def create_session(self, behavior: str, lock_delay_ns: int) -> str:
        from elect_helpers.devagent.sessions import Session

        session = Session(
            id="",
            name="model",
            node="model",
            lock_delay=lock_delay_ns,
            behavior=behavior,
            ttl=f"{TTL_NS}ns",
            node_checks=[],
        )
        return self.state.session_create(session)

    def destroy(self, session: str) -> tuple[int, object]:
        return self._run(self.state.session_destroy, session)

    def renew(self, session: str) -> int:
        return 200 if self.state.session_renew(session) else 404

    def advance(self, delta_ns: int) -> None:
        self.timers.advance(delta_ns)

    def timer_pending(self, session: str) -> bool:
        return self.state.sessions.timer_pending(session)

    def entries(self, prefix: str) -> dict[str, Actual]:
        with self.state.store.lock:
            listed = self.state.kv.list(prefix).value
        return {
            e.key[len(prefix) :]: Actual(
                e.value, e.flags, e.lock_index, e.session or None, e.create_index, e.modify_index
            )
            for e in listed
        }

    def live_sessions(self) -> set[str]:
        with self.state.store.lock:
            return {s.id for s in self.state.sessions.list().value}

    def close(self, prefix: str) -> None:
        self.state.close()


@pytest.fixture(scope="module")
def agent_address() -> Iterator[str]:
    from elect_helpers.devagent import DevAgent

    with DevAgent(port=0, session_ttl_min="100ms") as agent:
        yield agent.address


class KVSessionMachine(RuleBasedStateMachine):
    """Random operations on an agent, checked against :class:`KVSessionModel`."""

    sessions = Bundle("sessions")

    def __init__(self) -> None:
        super().__init__()
        self.agent = self.make_agent()
        self.prefix = f"model/{next(_examples)}-{uuid.uuid4().hex[:6]}/"
        self.model = KVSessionModel()
        self.seen: dict[str, tuple[int, int]] = {}  # key -> (CreateIndex, ModifyIndex)
        self.high = 0  # highest index observed so far
        self.last = Effect()
        self.created: list[str] = []

    def make_agent(self) -> HttpAgent | DirectAgent:
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------

    def _expect(self, effect: Effect, answer: tuple[int, object], what: str) -> None:
        status, body = answer
        assert status == effect.status, f"{what}: {status} {body!r}, model says {effect.status}"
        if status == 200 and effect.result is not None:
            assert body is effect.result, f"{what}: answered {body}, model says {effect.result}"
        self.last = effect

    def _kv(
        self, method: str, key: str, value: bytes = b"", **params: object
    ) -> tuple[int, object]:
        return self.agent.kv(method, self.prefix + key, value, **params)

    def _cas_index(self, key: str, kind: str) -> int:
        if kind == "zero":
            return 0
        if kind == "current" and key in self.seen:
            return self.seen[key][1]
        return self.high + 1000  # an index no entry has

    def _new_session(self, behavior: str, lock_delay_ns: int) -> str:
        session = self.agent.create_session(behavior, lock_delay_ns)
        self.created.append(session)
        self.last = self.model.create_session(session, behavior, lock_delay_ns)
        return session

    # -- rules ------------------------------------------------------------------------

    @initialize(target=sessions, behavior=st.sampled_from(["release", "delete"]), delay=LOCK_DELAYS)
    def first_session(self, behavior: str, delay: int) -> str:
        return self._new_session(behavior, delay)

    @rule(target=sessions, behavior=st.sampled_from(["release", "delete"]), delay=LOCK_DELAYS)
    def create_session(self, behavior: str, delay: int) -> str:
        return self._new_session(behavior, delay)

    @rule(key=st.sampled_from(KEYS), value=st.sampled_from(VALUES), flags=st.sampled_from(FLAGS))
    def put(self, key: str, value: bytes, flags: int) -> None:
        effect = self.model.put(key, value or None, flags)
        self._expect(effect, self._kv("PUT", key, value, flags=flags), f"put {key}")

    @rule(
        key=st.sampled_from(KEYS),
        value=st.sampled_from(VALUES),
        flags=st.sampled_from(FLAGS),
        kind=st.sampled_from(["zero", "current", "stale"]),
    )
    def cas(self, key: str, value: bytes, flags: int, kind: str) -> None:
        index = self._cas_index(key, kind)
        effect = self.model.cas(key, value or None, flags, kind)  # type: ignore[arg-type]
        answer = self._kv("PUT", key, value, cas=index, flags=flags)
        self._expect(effect, answer, f"cas={index} ({kind}) {key}")

    @rule(
        key=st.sampled_from(KEYS),
        session=sessions,
        value=st.sampled_from(VALUES),
        flags=st.sampled_from(FLAGS),
    )
    def acquire(self, key: str, session: str, value: bytes, flags: int) -> None:
        effect = self.model.acquire(key, session, value or None, flags)
        answer = self._kv("PUT", key, value, acquire=session, flags=flags)
        self._expect(effect, answer, f"acquire {key} by {session[:8]}")

    @rule(session=sessions, value=st.sampled_from(VALUES))
    def acquire_every_key(self, session: str, value: bytes) -> None:
        """One step that tries to lock all keys, so invalidations often have locks to drop."""
        changes = {}
        for key in KEYS:
            effect = self.model.acquire(key, session, value or None, 0)
            answer = self._kv("PUT", key, value, acquire=session)
            self._expect(effect, answer, f"acquire {key} by {session[:8]}")
            changes.update(effect.changes)
        self.last = Effect(changes=changes)

    @rule(key=st.sampled_from(KEYS), value=st.sampled_from(VALUES))
    def acquire_with_unknown_session(self, key: str, value: bytes) -> None:
        ghost = str(uuid.uuid4())
        effect = self.model.acquire(key, ghost, value or None, 0)
        answer = self._kv("PUT", key, value, acquire=ghost)
        self._expect(effect, answer, f"acquire {key} by an unknown session")
        if answer[0] == 500:
            assert answer[1] == f'raft apply failed: invalid session "{ghost}"', answer

    @rule(
        key=st.sampled_from(KEYS),
        session=sessions,
        value=st.sampled_from(VALUES),
        flags=st.sampled_from(FLAGS),
    )
    def release(self, key: str, session: str, value: bytes, flags: int) -> None:
        effect = self.model.release(key, session, value or None, flags)
        answer = self._kv("PUT", key, value, release=session, flags=flags)
        self._expect(effect, answer, f"release {key} by {session[:8]}")

    @rule(key=st.sampled_from(KEYS))
    def delete(self, key: str) -> None:
        self._expect(self.model.delete(key), self._kv("DELETE", key), f"delete {key}")

    @rule(key=st.sampled_from(KEYS), kind=st.sampled_from(["zero", "current", "stale"]))
    def delete_cas(self, key: str, kind: str) -> None:
        index = self._cas_index(key, kind)
        effect = self.model.delete_cas(key, kind)  # type: ignore[arg-type]
        self._expect(effect, self._kv("DELETE", key, cas=index), f"delete cas={index} {key}")

    @rule(session=sessions)
    def destroy(self, session: str) -> None:
        effect = self.model.invalidate(session)
        self._expect(effect, self.agent.destroy(session), f"destroy {session[:8]}")
        self.forget(session)

    @rule(session=sessions)
    def renew(self, session: str) -> None:
        status = self.agent.renew(session)
        assert status == (200 if session in self.model.sessions else 404), status
        self.renewed(session)

    def renewed(self, session: str) -> None:
        """Hook: a live session's TTL timer was reset."""

    def forget(self, session: str) -> None:
        """Hook: the session is gone."""

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def agrees_with_model(self) -> None:
        actual = self.agent.entries(self.prefix)
        assert sorted(actual) == sorted(self.model.kv), "keys differ from the model"
        live = self.agent.live_sessions()
        assert live & set(self.created) == set(self.model.sessions), "sessions differ"
        high = self.high
        for key, got in actual.items():
            want = self.model.kv[key]
            assert (got.value, got.flags) == (want.value, want.flags), f"{key}: value/flags"
            assert got.lock_index == want.lock_index, f"{key}: LockIndex {got.lock_index}"
            assert got.session == want.session, f"{key}: Session {got.session}"
            assert got.session is None or got.session in live, f"{key}: held by a dead session"
            assert 0 < got.create_index <= got.modify_index, f"{key}: indexes {got}"
            change = self.last.changes.get(key)
            before = self.seen.get(key)
            if change is None:
                assert before == (got.create_index, got.modify_index), (
                    f"{key}: indexes moved without a change: {before} -> "
                    f"{(got.create_index, got.modify_index)}"
                )
            elif change == "create" or before is None:
                assert got.create_index == got.modify_index > self.high, f"{key}: new {got}"
            else:
                assert got.create_index == before[0], f"{key}: CreateIndex changed"
                assert got.modify_index > self.high, f"{key}: ModifyIndex did not move up"
            high = max(high, got.modify_index)
        self.seen = {k: (a.create_index, a.modify_index) for k, a in actual.items()}
        self.high = high
        self.last = Effect()

    def teardown(self) -> None:
        self.agent.close(self.prefix)


class HttpMachine(KVSessionMachine):
    """Over HTTP; ``expire`` = the session's bound check goes critical."""

    address = ""

    def make_agent(self) -> HttpAgent:
        return HttpAgent(self.address)

    @rule(session=KVSessionMachine.sessions)
    def expire(self, session: str) -> None:
        effect = self.model.invalidate(session)
        self.agent.expire(session)  # type: ignore[union-attr]
        self.last = effect


class DirectMachine(KVSessionMachine):
    """On ``DevState`` with a manual clock: ``expire`` lets time run to the session's
    TTL x 2 deadline so that its timer fires (with every timer due before it), and
    ``time_passes`` moves time on, so lock-delays and TTLs run out as in real time."""

    def __init__(self) -> None:
        self.now = 0
        self.reset_at: dict[str, tuple[int, int]] = {}  # session -> (time, order) of reset
        self._order = itertools.count()
        super().__init__()

    def make_agent(self) -> DirectAgent:
        return DirectAgent()

    def _new_session(self, behavior: str, lock_delay_ns: int) -> str:
        session = super()._new_session(behavior, lock_delay_ns)
        self.renewed(session)
        return session

    def renewed(self, session: str) -> None:
        if session in self.model.sessions:
            self.reset_at[session] = (self.now, next(self._order))

    def forget(self, session: str) -> None:
        self.reset_at.pop(session, None)

    def _advance_to(self, target: int) -> None:
        """Move the clock to ``target`` one timer deadline at a time, as real time would,
        invalidating in the model what expires on the way."""
        changes = {}
        due = sorted(
            (at + 2 * TTL_NS, order, session)
            for session, (at, order) in self.reset_at.items()
            if at + 2 * TTL_NS <= target
        )
        for deadline, _, session in due:
            self.agent.advance(deadline - self.now)  # type: ignore[union-attr]
            self.now = self.model.now_ns = deadline
            del self.reset_at[session]
            changes.update(self.model.invalidate(session).changes)
        self.agent.advance(target - self.now)  # type: ignore[union-attr]
        self.now = self.model.now_ns = target
        self.last = Effect(changes=changes)

    @rule(session=KVSessionMachine.sessions)
    def expire(self, session: str) -> None:
        if session in self.reset_at:
            self._advance_to(self.reset_at[session][0] + 2 * TTL_NS)

    @rule(seconds=st.sampled_from([1, 4, 30, 61]))
    def time_passes(self, seconds: int) -> None:
        self._advance_to(self.now + seconds * SECOND)

    @invariant()
    def ttl_timers_armed(self) -> None:
        agent = self.agent
        assert isinstance(agent, DirectAgent)
        for session in self.model.sessions:
            assert agent.timer_pending(session), f"no TTL timer for {session[:8]}"


SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_state_machine_follows_the_reference_model() -> None:
    run_state_machine_as_test(
        DirectMachine, settings=settings(SETTINGS, max_examples=200, stateful_step_count=40)
    )


def test_http_api_follows_the_reference_model(agent_address: str) -> None:
    HttpMachine.address = agent_address
    run_state_machine_as_test(
        HttpMachine, settings=settings(SETTINGS, max_examples=40, stateful_step_count=30)
    )


def test_lock_delay_is_capped_at_60_seconds() -> None:
    """A 120 s LockDelay blocks acquires for exactly 60 s after invalidation (facts 3.6)."""
    agent, model = DirectAgent(), KVSessionModel()
    holder = agent.create_session("release", 120 * SECOND)
    model.create_session(holder, "release", 120 * SECOND)
    assert agent.kv("PUT", "k", b"v", acquire=holder) == (200, True)
    model.acquire("k", holder, b"v", 0)
    agent.destroy(holder)
    model.invalidate(holder)
    for elapsed in (0, 59 * SECOND, 60 * SECOND - 1, 60 * SECOND):
        agent.advance(elapsed - model.now_ns)
        model.now_ns = elapsed
        other = agent.create_session("release", 0)  # a fresh one: TTL sessions run out
        model.create_session(other, "release", 0)
        expected = model.acquire("k", other, b"w", 0).result
        assert agent.kv("PUT", "k", b"w", acquire=other) == (200, expected), elapsed
    assert expected is True
    agent.close("")


def test_ttl_session_expires_at_twice_its_ttl_and_renew_resets_it() -> None:
    agent = DirectAgent()
    session = agent.create_session("delete", 0)
    agent.advance(2 * TTL_NS - 1)
    assert session in agent.live_sessions()
    assert agent.renew(session) == 200
    agent.advance(2 * TTL_NS - 1)
    assert session in agent.live_sessions()
    agent.advance(1)
    assert session not in agent.live_sessions()
    assert agent.renew(session) == 404
    agent.close("")
