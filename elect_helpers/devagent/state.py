"""The dev agent's state machine: everything Consul's server and agent would do, minus HTTP.

:class:`DevState` wires the store, KV table, sessions, catalog and local agent together,
registers the node (with ``serfHealth``) and the built-in ``consul`` service, and offers the
operations the HTTP endpoints need, with Consul's validation order and error texts (including
the ``raft apply failed:`` / ``apply failed:`` prefixes of its RPC layer).
"""

from __future__ import annotations

import logging
import random
import socket
import uuid
from typing import TypeVar

from ..durations import DurationError, format_duration, parse_duration
from ..settings import SESSION_TTL_MAX_NS, SESSION_TTL_MIN_DEFAULT_NS
from .catalog import (
    Catalog,
)
from .errors import Failure, go_quote
from .gossip import DEV_GOSSIP, GossipConfig
from .kv import KVTable
from .local import CHECK_UPDATE_INTERVAL_NS, LocalAgent
from .sessions import DELETE, RELEASE, Session, SessionTable
from .startup import AgentIdentity, bootstrap
from .store import Store
from .timers import KeyedTimers, TimerService

T = TypeVar("T")
log = logging.getLogger("elect_helpers.devagent")

CONSUL_VERSION = "1.20.0"
SERF_LAN_PORT = 8301
DEFAULT_QUERY_TIME_NS = 300 * 1_000_000_000
MAX_QUERY_TIME_NS = 600 * 1_000_000_000
JITTER_FRACTION = 16


def default_node_name() -> str:
    """The host name, as ``consul agent`` uses by default."""
    return socket.gethostname().strip() or "localhost"


class DevState:
    """A single-node Consul dev cluster's state and behaviour, in memory."""

    def __init__(
        self,
        node_name: str | None = None,
        datacenter: str = "dc1",
        session_ttl_min_ns: int = SESSION_TTL_MIN_DEFAULT_NS,
        timers: TimerService | None = None,
        rng: random.Random | None = None,
        check_update_interval_ns: int = CHECK_UPDATE_INTERVAL_NS,
        start_check_runners: bool = True,
        gossip: GossipConfig = DEV_GOSSIP,
        enable_script_checks: bool = False,
        node_id: str | None = None,
    ) -> None:
        self.node_name = node_name or default_node_name()
        self.gossip = gossip
        self.datacenter = datacenter
        self.session_ttl_min_ns = session_ttl_min_ns
        self.node_id = node_id or str(uuid.uuid4())
        self.timers = timers or TimerService()
        self.clock = self.timers.clock
        self._rng = rng or random.Random()
        self.store = Store()
        self.kv = KVTable(self.store, self.clock)
        self.catalog = Catalog(self.store)
        self.sessions = SessionTable(self.store, self.kv, self.catalog, KeyedTimers(self.timers))
        self.catalog.on_check_lost = self.sessions.destroy_bound_to_check
        self.catalog.on_node_lost = self.sessions.destroy_on_node
        self.sessions.on_expired = self._expire_session
        self.local = LocalAgent(
            self.node_name,
            self.store,
            self.catalog,
            self.timers,
            check_update_interval_ns=check_update_interval_ns,
            rng=self._rng,
            start_runners=start_check_runners,
            enable_script_checks=enable_script_checks,
        )
        self._register_self()

    def _register_self(self) -> None:
        """A fresh dev agent's start-up writes (leader entries, reconcile, node sync)."""
        bootstrap(
            self.store,
            self.catalog,
            AgentIdentity(self.node_id, self.node_name, self.datacenter, CONSUL_VERSION),
        )

    # ----- reads ------------------------------------------------------------------------

    def query_timeout_s(self, wait_ns: int) -> float:
        """Consul's ``RPCQueryTimeout``: default 5 min, cap 10 min, plus up to 1/16 jitter."""
        if wait_ns <= 0:
            wait_ns = DEFAULT_QUERY_TIME_NS
        wait_ns = min(wait_ns, MAX_QUERY_TIME_NS)
        wait_ns += int(self._rng.random() * (wait_ns // JITTER_FRACTION))
        return wait_ns / 1e9

    # ----- KV writes -------------------------------------------------------------------

    def kv_set(self, key: str, value: bytes | None, flags: int) -> bool:
        """Plain PUT."""
        with self.store.write() as txn:
            return self.kv.set(txn, key, value, flags)

    def kv_cas(self, key: str, value: bytes | None, flags: int, index: int) -> bool:
        """PUT ?cas=index."""
        with self.store.write() as txn:
            return self.kv.cas(txn, key, value, flags, index)

    def kv_acquire(self, key: str, value: bytes | None, flags: int, session: str) -> bool:
        """PUT ?acquire=session: lock-delay first (false), then session checks (errors)."""
        with self.store.write() as txn:
            if self.kv.lock_delay_active(key):
                log.warning("rejecting lock of %r due to lock-delay", key)
                return False
            if not session:
                raise Failure("raft apply failed: missing session")
            found = self.sessions.lookup(session)
            if found is None:
                raise Failure(f"raft apply failed: invalid session {go_quote(session)}")
            return self.kv.lock(txn, key, value, flags, session)

    def kv_release(self, key: str, value: bytes | None, flags: int, session: str) -> bool:
        """PUT ?release=session."""
        with self.store.write() as txn:
            if not session:
                raise Failure("raft apply failed: missing session")
            return self.kv.unlock(txn, key, value, flags, session)

    def kv_delete(self, key: str) -> bool:
        """DELETE one key."""
        with self.store.write() as txn:
            return self.kv.delete(txn, key)

    def kv_delete_cas(self, key: str, index: int) -> bool:
        """DELETE ?cas=index."""
        with self.store.write() as txn:
            return self.kv.delete_cas(txn, key, index)

    def kv_delete_tree(self, prefix: str) -> bool:
        """DELETE ?recurse."""
        with self.store.write() as txn:
            return self.kv.delete_tree(txn, prefix)

    # ----- sessions ----------------------------------------------------------------------

    def session_create(self, session: Session) -> str:
        """``Session.Apply`` (create): validate, assign an ID, store, arm the TTL timer."""
        if not session.node:
            raise Failure("Must provide Node")
        if session.behavior == "":
            session.behavior = RELEASE
        elif session.behavior not in (RELEASE, DELETE):
            raise Failure(f"Invalid Behavior setting '{session.behavior}'")
        if session.ttl != "":
            try:
                ttl_ns = parse_duration(session.ttl)
            except DurationError as error:
                raise Failure(f"Session TTL '{session.ttl}' invalid: {error}") from None
            if ttl_ns != 0 and not self.session_ttl_min_ns <= ttl_ns <= SESSION_TTL_MAX_NS:
                raise Failure(
                    f"Invalid Session TTL '{ttl_ns}', must be between "
                    f"[{format_duration(self.session_ttl_min_ns)}="
                    f"{format_duration(SESSION_TTL_MAX_NS)}]"
                )
            session.ttl_ns = max(ttl_ns, 0)
        with self.store.write() as txn:
            session.id = self._new_session_id()
            try:
                self.sessions.create(txn, session)
            except Failure as error:
                raise Failure(f"apply failed: {error.message}") from None
        return session.id

    def _new_session_id(self) -> str:
        while True:
            candidate = str(uuid.uuid4())
            if self.sessions.lookup(candidate) is None:
                return candidate

    def session_destroy(self, session_id: str) -> bool:
        """Destroy a session (idempotent): its locks are released or deleted with lock-delay."""
        with self.store.write() as txn:
            self.sessions.destroy(txn, session_id)
        return True

    def session_renew(self, session_id: str) -> list[Session]:
        """Reset a session's TTL timer; ``[]`` when there is no such session."""
        with self.store.lock:
            session = self.sessions.lookup(session_id)
            if session is None:
                return []
            self.sessions.reset_timer(session)
            return self.sessions.get(session_id).value

    def _expire_session(self, session_id: str) -> None:
        log.info("session %s expired (TTL x 2 without renew), invalidating it", session_id)
        with self.store.write() as txn:
            self.sessions.destroy(txn, session_id)

    # ----- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start firing timers (session TTLs, TTL checks, deferred syncs) on time."""
        self.timers.start()

    def close(self) -> None:
        """Stop check runners and timers, and release every waiting blocking query."""
        self.local.close()
        self.timers.stop()
        self.store.close()
