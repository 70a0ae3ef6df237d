"""A small reference model of Consul's KV store and sessions, for model-based tests.

It encodes the lock table of ``consul-facts.md`` (sections 2.3-2.5, 3.3, 3.6 and 4) and
nothing else: no HTTP, no indexes.  Raft indexes are not deterministic in a live agent
(check runners and the catalog also consume them), so every operation returns an
:class:`Effect` that says *which* keys the write must touch and how; the test harness then
checks the agent's real ``CreateIndex``/``ModifyIndex`` against that (a touched key gets
a fresh, larger index, an untouched key keeps its index).

Time is the harness's: ``now_ns`` (a manual clock in direct tests, constant over HTTP).
Lock-delays run out on that clock; Consul caps them at 60 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

Change = Literal["create", "modify", "delete"]
CasKind = Literal["zero", "current", "stale"]


@dataclass(frozen=True)
class ModelEntry:
    """What the model knows of one key: everything in ``DirEntry`` except the indexes."""

    value: bytes | None
    flags: int
    lock_index: int
    session: str | None


MAX_LOCK_DELAY_NS = 60 * 1_000_000_000


@dataclass(frozen=True)
class ModelSession:
    behavior: Literal["release", "delete"]
    lock_delay_ns: int


@dataclass
class Effect:
    """The outcome of one operation.

    ``status`` is the HTTP status Consul answers with and ``result`` the JSON body for
    200 answers (``True``/``False``); ``changes`` maps every key the write touches to how.
    Keys not in ``changes`` must keep their indexes.
    """

    status: int = 200
    result: bool | None = True
    changes: dict[str, Change] = field(default_factory=dict)


class KVSessionModel:
    """Reference semantics of KV writes, locks and session invalidation."""

    def __init__(self) -> None:
        self.kv: dict[str, ModelEntry] = {}
        self.sessions: dict[str, ModelSession] = {}
        self.delay_until: dict[str, int] = {}  # key -> end of its lock-delay (ns)
        self.now_ns = 0

    # -- KV writes -------------------------------------------------------------------

    def _set(self, key: str, new: ModelEntry) -> Effect:
        """Store ``new`` unless it equals the current entry (idempotent writes skip)."""
        old = self.kv.get(key)
        if old == new:
            return Effect()
        self.kv[key] = new
        return Effect(changes={key: "modify" if old else "create"})

    def put(self, key: str, value: bytes | None, flags: int) -> Effect:
        """Plain PUT: always true; keeps the holder; LockIndex becomes the request's 0."""
        old = self.kv.get(key)
        return self._set(key, ModelEntry(value, flags, 0, old.session if old else None))

    def cas(self, key: str, value: bytes | None, flags: int, kind: CasKind) -> Effect:
        """PUT ?cas=: ``zero`` writes only a new key, ``current`` (the key's ModifyIndex)
        only an existing key, ``stale`` (any other index) never."""
        exists = key in self.kv
        if (kind == "zero" and exists) or (kind != "zero" and not exists) or kind == "stale":
            return Effect(result=False)
        return self.put(key, value, flags)

    def acquire(self, key: str, session: str, value: bytes | None, flags: int) -> Effect:
        """PUT ?acquire=: lock-delay first, then session validity, then the holder."""
        if self.delay_until.get(key, -1) > self.now_ns:
            return Effect(result=False)
        if not session:
            return Effect(status=500, result=None)
        if session not in self.sessions:
            return Effect(status=500, result=None)
        old = self.kv.get(key)
        if old is None:
            return self._set(key, ModelEntry(value, flags, 1, session))
        if old.session == session:
            return self._set(key, replace(old, value=value, flags=flags))
        if old.session is not None:
            return Effect(result=False)
        return self._set(key, ModelEntry(value, flags, old.lock_index + 1, session))

    def release(self, key: str, session: str, value: bytes | None, flags: int) -> Effect:
        """PUT ?release=: only the holder releases; value and flags come from the request."""
        if not session:
            return Effect(status=500, result=None)
        old = self.kv.get(key)
        if old is None or old.session != session:
            return Effect(result=False)
        return self._set(key, ModelEntry(value, flags, old.lock_index, None))

    def delete(self, key: str) -> Effect:
        """DELETE: always true, also for a missing key."""
        if self.kv.pop(key, None) is None:
            return Effect()
        return Effect(changes={key: "delete"})

    def delete_cas(self, key: str, kind: CasKind) -> Effect:
        """DELETE ?cas=: a missing key is true; an existing one needs its ModifyIndex."""
        if key not in self.kv:
            return Effect()
        if kind != "current":
            return Effect(result=False)
        return self.delete(key)

    # -- sessions --------------------------------------------------------------------

    def create_session(self, session: str, behavior: str, lock_delay_ns: int) -> Effect:
        assert behavior in ("release", "delete")
        self.sessions[session] = ModelSession(behavior, lock_delay_ns)  # type: ignore[arg-type]
        return Effect(result=None)

    def invalidate(self, session: str) -> Effect:
        """Destroy or TTL expiry: release or delete the session's keys, set lock-delays.

        Destroying an unknown session is a successful no-op.
        """
        known = self.sessions.pop(session, None)
        if known is None:
            return Effect()
        effect = Effect()
        for key, entry in sorted(self.kv.items()):
            if entry.session != session:
                continue
            if known.behavior == "delete":
                del self.kv[key]
                effect.changes[key] = "delete"
            else:
                self.kv[key] = replace(entry, session=None)
                effect.changes[key] = "modify"
            if known.lock_delay_ns > 0:
                delay = min(known.lock_delay_ns, MAX_LOCK_DELAY_NS)
                self.delay_until[key] = self.now_ns + delay
        return effect
