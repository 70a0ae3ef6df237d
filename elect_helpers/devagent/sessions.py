"""The sessions table: creation checks, invalidation (releasing or deleting locks with a
lock-delay) and the TTL timers, following ``agent/consul/state/session.go`` and
``agent/consul/session_ttl.go``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..settings import LOCK_DELAY_MAX_NS
from .catalog import Catalog
from .errors import Failure
from .kv import KVTable
from .store import QueryResult, Store, Topic, WriteTxn
from .timers import KeyedTimers

SESSIONS = "sessions"
RELEASE = "release"
DELETE = "delete"
TTL_MULTIPLIER = 2

log = logging.getLogger("elect_helpers.devagent")


@dataclass
class Session:
    """One session (``structs.Session``); ``lock_delay`` in nanoseconds, ``ttl`` as given."""

    id: str
    name: str = ""
    node: str = ""
    lock_delay: int = 15 * 1_000_000_000
    behavior: str = RELEASE
    ttl: str = ""
    node_checks: list[str] | None = None
    service_checks: list[dict[str, str]] | None = None
    checks: list[str] | None = None
    create_index: int = 0
    modify_index: int = 0
    ttl_ns: int = field(default=0, compare=False)

    def check_ids(self) -> list[str]:
        """Every check the session is bound to, in ``Session.CheckIDs`` order.

        That order (deprecated ``Checks``, then ``NodeChecks``, then ``ServiceChecks``) decides
        which missing or critical check a failed create names.  Duplicates are dropped.
        """
        ids: list[str] = []
        for check in (
            list(self.checks or [])
            + list(self.node_checks or [])
            + [c.get("ID", "") for c in self.service_checks or []]
        ):
            if check not in ids:
                ids.append(check)
        return ids

    def bound_to(self, check_id: str) -> bool:
        """Whether the session is bound to ``check_id`` (case-insensitive, as Consul's
        ``session_checks`` index lower-cases check IDs)."""
        wanted = check_id.lower()
        return any(check.lower() == wanted for check in self.check_ids())


class SessionTable:
    """Sessions, their lock side effects on the KV table and their TTL timers."""

    def __init__(self, store: Store, kv: KVTable, catalog: Catalog, timers: KeyedTimers) -> None:
        self._store = store
        self._kv = kv
        self._catalog = catalog
        self._timers = timers
        self._sessions: dict[str, Session] = {}
        self.on_expired: Callable[[str], None] = lambda session_id: None

    # ----- reads (under the store lock) -----------------------------------------------

    def _index(self) -> int:
        return self._store.table_index(SESSIONS)

    def lookup(self, session_id: str) -> Session | None:
        """The session with this id (ids match case-insensitively, as in Consul's index)."""
        return self._sessions.get(session_id.lower())

    def get(self, session_id: str) -> QueryResult[list[Session]]:
        """``[session]`` or ``[]``; the index is the sessions table index."""
        found = self.lookup(session_id)
        value = [replace(found)] if found else []
        return QueryResult(self._index(), value, (Topic(SESSIONS),))

    def list(self) -> QueryResult[list[Session]]:
        """All sessions, ordered by id."""
        value = [replace(s) for _, s in sorted(self._sessions.items())]
        return QueryResult(self._index(), value, (Topic(SESSIONS),))

    def for_node(self, node: str) -> QueryResult[list[Session]]:
        """Sessions belonging to ``node`` (compared case-insensitively)."""
        value = [
            replace(s) for _, s in sorted(self._sessions.items()) if s.node.lower() == node.lower()
        ]
        return QueryResult(self._index(), value, (Topic(SESSIONS),))

    def bound_to_check(self, node: str, check_id: str) -> list[str]:
        """Ids of sessions on ``node`` bound to ``check_id`` (both compared case-insensitively)."""
        return [
            s.id
            for s in self._sessions.values()
            if s.node.lower() == node.lower() and s.bound_to(check_id)
        ]

    # ----- writes ---------------------------------------------------------------------

    def create(self, txn: WriteTxn, session: Session) -> None:
        """``sessionCreateTxn``: the node and every bound check must exist and not be critical.

        Node and check IDs match case-insensitively (Consul's catalog indexes lower-case them);
        the session keeps ``Node`` as the request spelled it.  Raises :class:`Failure` with
        Consul's FSM text; the caller adds the RPC prefix.
        """
        if self._catalog.node_named(session.node) is None:
            raise Failure("Missing node registration")
        for check_id in session.check_ids():
            check = self._catalog.check(session.node, check_id)
            if check is None:
                raise Failure(f"Missing check '{check_id}' registration")
            if check.status == "critical":
                raise Failure(f"Check '{check_id}' is in critical state")
        session.create_index = session.modify_index = txn.index
        self._sessions[session.id] = session
        txn.touch(SESSIONS, session.id)
        if session.ttl_ns > 0:
            txn.after_commit.append(lambda: self.reset_timer(session))

    def destroy(self, txn: WriteTxn, session_id: str) -> bool:
        """``deleteSessionTxn``: drop the session and release or delete its locks.

        Each affected key gets a lock-delay of ``min(LockDelay, 60s)`` when LockDelay > 0.
        Returns False if there was no such session.
        """
        session = self._sessions.pop(session_id.lower(), None)
        if session is None:
            return False
        txn.touch(SESSIONS, session.id)
        delay = min(session.lock_delay, LOCK_DELAY_MAX_NS)
        for entry in self._kv.held_by(session.id):
            if session.behavior == DELETE:
                self._kv.delete(txn, entry.key)
            else:
                self._kv.clear_session(txn, entry.key)
            if delay > 0:
                self._kv.set_lock_delay(entry.key, delay)
        self._timers.clear(session.id)
        return True

    def destroy_bound_to_check(self, txn: WriteTxn, node: str, check_id: str) -> None:
        """Invalidate every session bound to a check that went critical or was removed."""
        for session_id in self.bound_to_check(node, check_id):
            log.info("invalidating session %s bound to check %r", session_id, check_id)
            self.destroy(txn, session_id)

    def destroy_on_node(self, txn: WriteTxn, node: str) -> None:
        """Invalidate every session on a node that left the catalog (``deleteNodeTxn``)."""
        for session in self.for_node(node).value:
            log.info("invalidating session %s of deregistered node %r", session.id, node)
            self.destroy(txn, session.id)

    # ----- TTL timers -------------------------------------------------------------------

    def reset_timer(self, session: Session) -> None:
        """(Re)arm the invalidation timer at ``TTL x 2`` (no-op for sessions without TTL)."""
        if session.ttl_ns <= 0:
            return
        session_id = session.id
        self._timers.reset(
            session_id, session.ttl_ns * TTL_MULTIPLIER, lambda: self.on_expired(session_id)
        )

    def timer_pending(self, session_id: str) -> bool:
        """Whether a TTL timer is armed for ``session_id``."""
        return self._timers.pending(session_id.lower())
