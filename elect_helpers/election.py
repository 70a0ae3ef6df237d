"""The election recipe: campaign for a leader key, lead while it is ours, notice losing it.

The four steps alone are naive: a node that fails to acquire never tries again, and a
leader never notices it was replaced.  :class:`Election` closes those gaps, in the spirit of
kazoo's ``Election`` and Consul's Go ``api.Lock``:

* **campaign** - create a session (kept alive by a :class:`~.session.SessionRenewer`), try
  to acquire the key; if someone holds it, block on the key until it changes; if it is free
  but the acquire is refused, that is the previous holder's lock-delay: re-check with a
  growing pause (50 ms up to 250 ms) that a change to the key cuts short, never a hot loop;
* **lead** - call ``on_elected(token)`` with a :class:`~.lock.FencingToken`, then block on
  the key; leadership is lost when the session is invalidated, the renewer gives up (no
  good renew for a whole TTL: the leader steps down on its own, before Consul can hand the
  lock to anyone else), or the key stops naming our session; ``on_lost(reason)`` is called
  and the campaign starts again with a new session;
* **resign** - step down gracefully: release the key (no lock-delay, so another node takes
  over at once), destroy the session, optionally deregister the service.

An unreachable agent is reported to ``on_error`` and retried with exponential back-off
(0.1 s up to 5 s).  All callbacks run in the election's own thread, one at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import consul

from .connection import clone_client
from .errors import ElectHelpersError, InvalidArgument, SessionGone, duration_argument
from .lock import FencingToken, LeaderInfo, check_key, leader_from_entry, release, try_acquire
from .service import deregister_node
from .session import SessionRenewer, create_session, session_info
from .settings import BEHAVIORS, SESSION_TTL_MAX
from .watch import MIN_INTERVAL, Interrupted, KeyReader, next_index

log = logging.getLogger(__name__)

WATCH_WAIT = 30.0  # seconds per blocking query on the key (stop() cuts it short anyway)
OPERATION_TIMEOUT = 5.0  # seconds for one non-blocking call (acquire, release, create...)
LOCK_DELAY_RETRY_FIRST = 0.05
LOCK_DELAY_RETRY_MAX = 0.25  # keeps the overshoot past a lock-delay small
ERROR_BACKOFF_FIRST = 0.1
ERROR_BACKOFF_MAX = 5.0

_UNSEEN = object()


class _Stopping(Exception):
    """Internal: stop was requested."""


class _SessionLost(Exception):
    """Internal: the renewer reported the session gone."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Election:
    """Campaign for ``key`` as ``node``; lead while Consul says the lock is ours.

    ``ttl``, ``behavior``, ``lock_delay``, ``node_checks`` and ``service_checks`` configure
    the session (see :func:`~.session.create_session`).  Callbacks (all optional, all run
    in the election thread): ``on_elected(token)``, ``on_lost(reason)``,
    ``on_leader_observed(LeaderInfo | None)`` whenever the lock holder seen on the key
    changes (ourselves included), ``on_error(exc)`` when the agent fails and the election
    backs off.

    Use :meth:`start` (background thread) or :meth:`run` (blocks the caller), then
    :meth:`resign`.  An Election runs once; create a new one to campaign again.
    """

    def __init__(
        self,
        client: consul.Consul,
        key: str,
        node: str,
        *,
        address: str = "",
        ttl: str | float = "10s",
        behavior: str = "delete",
        lock_delay: str | float = "15s",
        node_checks: Sequence[str] | None = None,
        service_checks: Sequence[str] | None = None,
        on_elected: Callable[[FencingToken], None] | None = None,
        on_lost: Callable[[str], None] | None = None,
        on_leader_observed: Callable[[LeaderInfo | None], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        check_key(key)
        if not node:
            raise InvalidArgument("node name must be non-empty")
        if behavior not in BEHAVIORS:
            raise InvalidArgument(f"behavior must be 'delete' or 'release', got {behavior!r}")
        self.ttl = duration_argument("ttl", ttl)
        self.lock_delay = duration_argument("lock_delay", lock_delay)
        if not 0 < self.ttl <= SESSION_TTL_MAX:
            raise InvalidArgument(f"ttl must be more than 0 and at most 24h, got {ttl!r}")
        if self.lock_delay < 0:
            raise InvalidArgument(f"lock_delay must not be negative, got {lock_delay!r}")
        self.key = key
        self.node = node
        self.address = address
        self.behavior = behavior
        self.node_checks = None if node_checks is None else list(node_checks)
        self.service_checks = None if service_checks is None else list(service_checks)
        self.on_elected = on_elected
        self.on_lost = on_lost
        self.on_leader_observed = on_leader_observed
        self.on_error = on_error
        self.failure: ElectHelpersError | None = None

        # One client per thread: non-blocking calls here, blocking reads in the reader,
        # renewals in each SessionRenewer's own clone.
        self._ops = clone_client(client, timeout=OPERATION_TIMEOUT)
        self._reader = KeyReader(client)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # stop requested, or the current session was lost
        self._leader_event = threading.Event()
        self._finished = threading.Event()
        self._used = False
        self._runner: int | None = None
        self._thread: threading.Thread | None = None
        self._leading = False
        self._token: FencingToken | None = None
        self._session_id: str | None = None
        self._renewer: SessionRenewer | None = None
        self._observed: object = _UNSEEN
        self._last_read = 0.0
        self._deregister: str | None = None

    # ------------------------------------------------------------------ public state

    @property
    def is_leader(self) -> bool:
        """True while this node holds the lock and its last good renew is less than a TTL
        ago (so it turns False on its own when renewing fails, even before the loop
        notices)."""
        with self._lock:
            renewer = self._renewer
            return self._leading and renewer is not None and renewer.healthy

    @property
    def token(self) -> FencingToken | None:
        """The fencing token of the current leadership, or ``None`` when not leading."""
        with self._lock:
            return self._token if self._leading else None

    @property
    def session_id(self) -> str | None:
        """The session currently used for campaigning or leading."""
        with self._lock:
            return self._session_id

    @property
    def leader(self) -> LeaderInfo | None:
        """The lock holder last seen on the key (``None``: nobody, or not read yet)."""
        observed = self._observed
        return observed if isinstance(observed, LeaderInfo) else None

    def wait_for_leadership(self, timeout: float | None = None) -> bool:
        """Block until this node leads (True) or ``timeout`` seconds pass / the election
        ends (False)."""
        return self._leader_event.wait(timeout) and self.is_leader

    # ------------------------------------------------------------------ running

    def start(self) -> Election:
        """Run the election in a daemon thread; returns self."""
        self._claim()
        self._thread = threading.Thread(
            target=self._run_claimed, name=f"election-{self.node}", daemon=True
        )
        self._thread.start()
        return self

    def run(self, stop_event: threading.Event | None = None) -> None:
        """Run the election in the calling thread until :meth:`resign` or ``stop_event``.

        Returns after stepping down and cleaning up.  Raises the error if the election
        cannot run at all (e.g. :class:`~.errors.InvalidTTL`).
        """
        self._claim()
        relay = None
        if stop_event is not None:
            relay = threading.Thread(
                target=self._relay,
                args=(stop_event,),
                name=f"election-stop-{self.node}",
                daemon=True,
            )
            relay.start()
        try:
            self._run_claimed()
        finally:
            if relay is not None:
                relay.join()
        if self.failure is not None:
            raise self.failure

    def resign(self, *, deregister_service: str | None = None, timeout: float = 30.0) -> None:
        """Step down and stop: release the key if leading, destroy the session and, if
        ``deregister_service`` is given, deregister that service.  ``on_lost("resigned")``
        is called if this node was leading.  Waits (up to ``timeout``) until done, unless
        called from the election's own thread (e.g. a callback or a signal handler)."""
        if deregister_service:
            self._deregister = deregister_service
        with self._lock:
            used = self._used
            self._used = True  # a resigned election cannot be started any more
        self._request_stop()
        if not used:  # never ran: nothing to step down from
            self._finished.set()
            try:
                if deregister_service:
                    deregister_node(self._ops, deregister_service)
            finally:
                self._ops.http.session.close()
            return
        if threading.get_ident() == self._runner:
            return
        if not self._finished.wait(timeout):
            raise ElectHelpersError(
                f"election of {self.node} did not stop within {timeout}s; the agent may be "
                "unresponsive (the session expires on its own after its TTL)"
            )
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Election:
        return self

    def __exit__(self, *exc: object) -> None:
        self.resign()

    # ------------------------------------------------------------------ loop

    def _claim(self) -> None:
        with self._lock:
            if self._used:
                raise RuntimeError("an Election runs once; create a new one to campaign again")
            self._used = True

    def _relay(self, stop_event: threading.Event) -> None:
        while not self._finished.is_set():
            if stop_event.wait(0.2):
                self._request_stop()
                return

    def _request_stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._reader.close()

    def _run_claimed(self) -> None:
        self._runner = threading.get_ident()
        try:
            self._loop()
        except ElectHelpersError as exc:  # bad configuration: retrying cannot help
            self.failure = exc
            self._report(exc)
        finally:
            try:
                self._cleanup()
            finally:
                self._finished.set()
                self._leader_event.set()  # wake wait_for_leadership(); is_leader is False

    def _loop(self) -> None:
        backoff = ERROR_BACKOFF_FIRST
        while not self._stop.is_set():
            try:
                self._ensure_session()
                token = self._campaign()
                self._become_leader(token)
                self._step_down(self._hold())
                backoff = ERROR_BACKOFF_FIRST
            except _Stopping:
                return
            except (_SessionLost, SessionGone) as exc:
                reason = exc.reason if isinstance(exc, _SessionLost) else "invalidated"
                self._step_down(f"session {reason}")
            except InvalidArgument:
                raise
            except ElectHelpersError as exc:
                self._report(exc)
                self._wake.wait(backoff)
                backoff = min(backoff * 2, ERROR_BACKOFF_MAX)

    def _check(self) -> None:
        if self._stop.is_set():
            raise _Stopping
        renewer = self._renewer
        if renewer is not None and renewer.lost_reason is not None:
            raise _SessionLost(renewer.lost_reason)

    def _session_lost(self, reason: str) -> None:
        # Renewer thread: the flag (renewer.lost_reason) is already set; wake the loop.
        self._wake.set()
        self._reader.wake()

    def _ensure_session(self) -> None:
        if self._session_id is not None:
            return
        self._wake.clear()
        if self._stop.is_set():
            raise _Stopping
        created_at = time.monotonic()
        session_id = create_session(
            self._ops,
            name=f"leader election: {self.node}",
            ttl=self.ttl,
            behavior=self.behavior,
            lock_delay=self.lock_delay,
            node_checks=self.node_checks,
            service_checks=self.service_checks,
        )
        renewer = SessionRenewer(
            self._ops, session_id, self.ttl, on_lost=self._session_lost, created_at=created_at
        )
        with self._lock:
            self._session_id = session_id
            self._renewer = renewer
        renewer.start()

    def _read(self, index: int, wait: float) -> tuple[int, dict | None]:
        """One (blocking, if index > 0) read of the key, paced to MIN_INTERVAL."""
        self._check()
        pause = self._last_read + MIN_INTERVAL - time.monotonic()
        if pause > 0:
            self._wake.wait(pause)
            self._check()
        self._last_read = time.monotonic()
        try:
            return self._reader.read(self.key, index, wait if index else None)
        except Interrupted:
            self._check()
            raise

    def _campaign(self) -> FencingToken:
        """Loop until we hold the key; return our token."""
        index = 0
        wait = WATCH_WAIT
        retry = LOCK_DELAY_RETRY_FIRST
        session_id = self._session_id
        assert session_id is not None
        while True:
            try:
                returned, entry = self._read(index, wait)
            except Interrupted:
                continue
            index = next_index(index, returned)
            holder = leader_from_entry(self.key, entry)
            self._observe(holder)
            if holder is not None and holder.session != session_id:
                wait, retry = WATCH_WAIT, LOCK_DELAY_RETRY_FIRST
                continue  # held: block until the key changes
            self._check()
            if try_acquire(self._ops, self.key, session_id, node=self.node, address=self.address):
                token = self._read_token(session_id)
                if token is not None:
                    return token
                index = 0
                continue
            # Free but refused: the previous holder's lock-delay.  Re-check after a short,
            # growing pause; a blocking read with that wait ends it early if the key changes.
            wait, retry = retry, min(retry * 2, LOCK_DELAY_RETRY_MAX)

    def _read_token(self, session_id: str) -> FencingToken | None:
        """Read the key right after acquiring; its ModifyIndex is the acquire's raft index."""
        while True:
            try:
                _, entry = self._read(0, WATCH_WAIT)
                break
            except Interrupted:
                continue
        holder = leader_from_entry(self.key, entry)
        self._observe(holder)
        if holder is None or holder.session != session_id:
            return None
        return FencingToken(self.key, holder.lock_index, session_id, holder.modify_index)

    def _become_leader(self, token: FencingToken) -> None:
        with self._lock:
            self._leading = True
            self._token = token
        self._leader_event.set()
        log.info("%s elected for %s with token %s", self.node, self.key, token)
        self._call(self.on_elected, token)

    def _hold(self) -> str:
        """Block on the key while it names our session; return why it stopped doing so."""
        index = 0
        backoff = ERROR_BACKOFF_FIRST
        session_id = self._session_id
        while True:
            try:
                returned, entry = self._read(index, WATCH_WAIT)
            except Interrupted:
                continue
            except ElectHelpersError as exc:
                # Keep leading while the renewer still succeeds or has time left; it gives
                # up (and wakes us) once a whole TTL passes without a good renew.
                self._report(exc)
                self._wake.wait(backoff)
                backoff = min(backoff * 2, ERROR_BACKOFF_MAX)
                continue
            backoff = ERROR_BACKOFF_FIRST
            index = next_index(index, returned)
            holder = leader_from_entry(self.key, entry)
            self._observe(holder)
            if holder is None or holder.session != session_id:
                return self._loss_reason(entry, holder)

    def _loss_reason(self, entry: dict | None, holder: LeaderInfo | None) -> str:
        self._check()  # the renewer's reason wins if it has one
        try:
            gone = session_info(self._ops, self._session_id or "") is None
        except ElectHelpersError:
            gone = False
        if gone:
            return "session invalidated"
        if entry is None:
            return "key deleted"
        if holder is None:
            return "lock released outside the election"
        return f"key held by another session ({holder.session})"

    def _step_down(self, reason: str) -> None:
        with self._lock:
            was_leading = self._leading
            self._leading = False
            self._token = None
        self._leader_event.clear()
        if was_leading:
            level = logging.INFO if reason == "resigned" else logging.WARNING
            log.log(level, "%s lost leadership of %s: %s", self.node, self.key, reason)
            self._call(self.on_lost, reason)
        self._drop_session(release_key=was_leading)

    def _drop_session(self, *, release_key: bool) -> None:
        with self._lock:
            session_id, renewer = self._session_id, self._renewer
            self._session_id = self._renewer = None
        if session_id is None or renewer is None:
            return
        try:
            if release_key:
                release(self._ops, self.key, session_id)
            renewer.stop(destroy=renewer.lost_reason != "expired")
        except ElectHelpersError as exc:
            self._report(exc)  # the session expires on its own after its TTL
            renewer.stop(destroy=False)

    def _cleanup(self) -> None:
        self._step_down("resigned")
        if self._deregister:
            try:
                deregister_node(self._ops, self._deregister)
            except ElectHelpersError as exc:
                self._report(exc)
        self._reader.close()
        self._ops.http.session.close()

    # ------------------------------------------------------------------ callbacks

    def _observe(self, holder: LeaderInfo | None) -> None:
        previous = self._observed
        same = (
            holder is None
            if not isinstance(previous, LeaderInfo)
            else holder is not None and holder.session == previous.session
        )
        self._observed = holder
        if previous is _UNSEEN or not same:
            self._call(self.on_leader_observed, holder)

    def _report(self, exc: Exception) -> None:
        # Without an on_error callback, the log is the only place the error shows up.
        level = logging.DEBUG if self.on_error else logging.WARNING
        log.log(level, "election of %s: %s", self.node, exc)
        self._call(self.on_error, exc)

    def _call(self, callback: Callable | None, *args: object) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("election callback %r of %s failed", callback, self.node)
