"""The election recipe: campaign for a leader key, lead while it is ours, notice losing it.

The four steps alone are naive: a node that fails to acquire never tries again, and a
leader never notices it was replaced.  :class:`Election` closes those gaps, in the spirit of
kazoo's ``Election``, Consul's Go ``api.Lock`` and client-go's ``leaderelection``:

* **campaign** - create a session (kept alive by a :class:`~.session.SessionRenewer`), try
  to acquire the key; if someone holds it, block on the key until it changes; if it is free
  but the acquire is refused, that is the previous holder's lock-delay: re-check with a
  growing pause (50 ms up to 250 ms) that a change to the key cuts short, never a hot loop;
* **lead** - hand a :class:`Term` (the fencing token, and an event set the moment the term
  ends for any reason) to ``on_elected``, then block on the key; the term ends when the
  session is invalidated, when the renewer gives up (no good renew for a whole TTL: the
  leader steps down on its own, before Consul can hand the lock to anyone else), or when
  the key stops naming our session; ``on_lost(reason)`` is called and the campaign starts
  again with a new session;
* **step down** - whenever the session may hold the key (an acquire was sent, whatever its
  answer, or the key named the session), release the key *before* destroying the session:
  an explicit release leaves no lock-delay, so a graceful stop never costs one, even when
  it lands between an acquire and the moment the node learns it won.

What a node *believes* (``is_leader``, a term not yet ended) is only its belief: a process
frozen by SIGSTOP keeps believing until it runs again.  What Consul says (the key's
``Session``) is the truth; the fencing token lets a resource tell the two apart.

The recipe is written as a generator of steps (:mod:`.steps`); :meth:`Election.start` and
:meth:`Election.run` send them to Consul over HTTP, and the interleaving tests run the same
generator against the dev agent's state machine, stopping, crashing or pausing it between
any two steps.  An unreachable agent is reported to ``on_error`` and retried with
exponential back-off (0.1 s up to 5 s).  All callbacks run in the election's own thread,
one at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import consul

from .connection import clone_client
from .errors import ElectHelpersError, Interrupted, InvalidArgument, SessionGone, WaitTimeout
from .lock import FencingToken, LeaderInfo, check_key, leader_from_entry, release, try_acquire
from .session import (
    SESSION_GONE,
    SessionRenewer,
    create_session,
    destroy_session,
    session_info,
)
from .settings import ARTICLE, ElectionSettings
from .steps import (
    Acquire,
    CreateSession,
    DestroySession,
    Pause,
    ReadKey,
    Release,
    SessionInfo,
    Step,
    Steps,
    drive,
)
from .watch import MIN_INTERVAL, BlockingReader, CancelEvent, kv_fetch, next_index

log = logging.getLogger(__name__)

WATCH_WAIT = 30.0  # seconds per blocking query on the key (stopping cuts it short anyway)
OPERATION_TIMEOUT = 5.0  # seconds for one non-blocking call (acquire, release, create...)
LOCK_DELAY_RETRY_FIRST = 0.05
LOCK_DELAY_RETRY_MAX = 0.25  # keeps the overshoot past a lock-delay small
ERROR_BACKOFF_FIRST = 0.1
ERROR_BACKOFF_MAX = 5.0
RESIGN_TIMEOUT = 30.0

_UNSEEN = object()


@dataclass(frozen=True, eq=False)
class Term(FencingToken):
    """One term of leadership: the fencing token of the acquisition, and its end.

    A ``Term`` *is* the :class:`~.lock.FencingToken` (``int(term)`` is its sequence);
    ``ended`` is set the moment the term ends, for any reason (stop, lost key, invalidated
    session, renewer gave up), like Go ``api.Lock``'s lost-lock channel or client-go's
    cancelled context.  ``reason`` says why, once ended.  Whether the term has ended is the
    node's knowledge of its own decisions; :meth:`is_current` adds the renewer's clock
    check, which is still only a belief (stale while the process is frozen).
    """

    ended: threading.Event = field(default_factory=threading.Event, repr=False)
    _renewer: SessionRenewer | None = field(default=None, repr=False)
    _reason: list[str] = field(default_factory=list, repr=False)

    @property
    def token(self) -> FencingToken:
        """The plain fencing token (what a fenced resource needs)."""
        return FencingToken(self.key, self.lock_index, self.session, self.sequence)

    @property
    def reason(self) -> str | None:
        """Why the term ended (``None`` while it has not)."""
        return self._reason[0] if self._reason else None

    def is_current(self) -> bool:
        """True while the term has not ended and the last good renew is less than a TTL
        ago: this node's belief that it leads (Consul's key is the truth)."""
        renewer = self._renewer
        return not self.ended.is_set() and renewer is not None and renewer.healthy

    def wait_ended(self, timeout: float | None = None) -> bool:
        """Block until the term ends (True) or ``timeout`` seconds pass (False)."""
        return self.ended.wait(timeout)

    def _end(self, reason: str) -> None:
        if not self._reason:
            self._reason.append(reason)
        self.ended.set()


class _Stopping(Exception):
    """Internal: stop was requested."""


class _SessionLost(Exception):
    """Internal: the renewer reported the session gone."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Election:
    """Campaign for ``key`` as ``node``; lead while Consul says the lock is ours.

    The session is described by ``settings`` (an :class:`~.settings.ElectionSettings`,
    the article's by default); ``ttl``, ``behavior``, ``lock_delay``, ``node_checks`` and
    ``service_checks`` given here override its fields (bad values raise
    :class:`~.errors.InvalidSetting` before anything is sent).  Callbacks (all optional,
    all run in the election thread): ``on_elected(term)`` with the :class:`Term`,
    ``on_lost(reason)``, ``on_leader_observed(LeaderInfo | None)`` whenever the lock holder
    seen on the key changes (ourselves included), ``on_error(exc)`` when the agent fails
    and the election backs off.

    Use :meth:`start` (background thread) or :meth:`run` (blocks the caller), then
    :meth:`resign`.  An Election runs once; create a new one to campaign again.
    """

    def __init__(
        self,
        client: consul.Consul | None,
        key: str,
        node: str,
        *,
        address: str = "",
        settings: ElectionSettings = ARTICLE,
        ttl: str | float | None = None,
        behavior: str | None = None,
        lock_delay: str | float | None = None,
        node_checks: Sequence[str] | None = None,
        service_checks: Sequence[str] | None = None,
        on_elected: Callable[[Term], None] | None = None,
        on_lost: Callable[[str], None] | None = None,
        on_leader_observed: Callable[[LeaderInfo | None], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_key(key)
        if not node:
            raise InvalidArgument("node name must be non-empty")
        given = {
            "ttl": ttl,
            "behavior": behavior,
            "lock_delay": lock_delay,
            "node_checks": node_checks,
            "service_checks": service_checks,
        }
        self.settings = settings.with_changes(**{k: v for k, v in given.items() if v is not None})
        self.key = key
        self.node = node
        self.address = address
        self.on_elected = on_elected
        self.on_lost = on_lost
        self.on_leader_observed = on_leader_observed
        self.on_error = on_error
        self.failure: ElectHelpersError | None = None
        #: What the last step-down did, e.g. "released the key and destroyed the session".
        self.stepped_down: str | None = None
        self.clock = clock

        self._client = client
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = CancelEvent()  # stop requested, or the current session was lost
        self._leader_event = threading.Event()
        self._finished = threading.Event()
        self._used = False
        self._runner: int | None = None
        self._thread: threading.Thread | None = None
        self._term: Term | None = None
        self._session_id: str | None = None
        self._renewer: SessionRenewer | None = None
        self._may_hold = False  # an acquire was sent with this session, or the key named it
        self._session_gone = False  # Consul said the session no longer exists
        self._observed: object = _UNSEEN
        self._last_read = float("-inf")
        # Set by start()/run(): the HTTP clients the steps are sent with.
        self._ops: consul.Consul | None = None
        self._reader: BlockingReader | None = None

    @property
    def ttl(self) -> float:
        return self.settings.ttl

    @property
    def lock_delay(self) -> float:
        return self.settings.lock_delay

    @property
    def behavior(self) -> str:
        return self.settings.behavior

    # ------------------------------------------------------------------ public state

    @property
    def is_leader(self) -> bool:
        """This node's *belief* that it leads: a term is running and the last good renew is
        less than a TTL ago (so it turns False on its own when renewing fails, even before
        the loop notices).  Only a belief: after SIGSTOP it is stale until the process runs
        again, and the key's ``Session`` (what Consul says) is the truth."""
        with self._lock:
            term = self._term
        return term is not None and term.is_current()

    @property
    def term(self) -> Term | None:
        """The current term, or ``None`` when not leading."""
        with self._lock:
            return self._term

    @property
    def token(self) -> Term | None:
        """The fencing token of the current term (the :class:`Term` itself), or ``None``."""
        return self.term

    @property
    def session_id(self) -> str | None:
        """The session currently used for campaigning or leading."""
        with self._lock:
            return self._session_id

    @property
    def leader(self) -> LeaderInfo | None:
        """The lock holder last seen on the key (``None``: nobody, or not read yet); what
        Consul said at that read, perhaps no longer true."""
        observed = self._observed
        return observed if isinstance(observed, LeaderInfo) else None

    def wait_for_leadership(self, timeout: float | None = None) -> Term | None:
        """Block until this node leads and return the :class:`Term`; ``None`` if
        ``timeout`` seconds pass or the election ends first."""
        if not self._leader_event.wait(timeout):
            return None
        term = self.term
        return term if term is not None and term.is_current() else None

    # ------------------------------------------------------------------ running

    def start(self) -> Election:
        """Run the election in a daemon thread; returns self."""
        self._claim()
        self._thread = threading.Thread(
            target=self._run_claimed, name=f"election-{self.node}", daemon=True
        )
        self._thread.start()
        return self

    def run(self, stop: CancelEvent | None = None) -> None:
        """Run the election in the calling thread until :meth:`resign`, or until ``stop``
        (a :class:`~.watch.CancelEvent`: setting it cuts the election's reads at once).

        Returns after stepping down and cleaning up.  Raises the error if the election
        cannot run at all (e.g. :class:`~.errors.InvalidTTL`).
        """
        if stop is not None and not isinstance(stop, CancelEvent):
            raise InvalidArgument(
                "stop must be an elect_helpers.watch.CancelEvent (a threading.Event whose "
                f"set() also cuts the election's reads), got {type(stop).__name__}"
            )
        self._claim()
        unhook = stop.on_set(self._request_stop) if stop is not None else None
        try:
            self._run_claimed()
        finally:
            if unhook is not None:
                unhook()
        if self.failure is not None:
            raise self.failure

    def resign(self, *, timeout: float = RESIGN_TIMEOUT) -> None:
        """Step down and stop: end the term, release the key if the session may hold it,
        then destroy the session.  ``on_lost("resigned")`` is called if this node was
        leading.  Waits (up to ``timeout``) until done, unless called from the election's
        own thread (a callback)."""
        with self._lock:
            used = self._used
            self._used = True  # a resigned election cannot be started any more
        self._request_stop()
        if not used:  # never ran: nothing to step down from
            self._finished.set()
            return
        if threading.get_ident() == self._runner:
            return
        if not self._finished.wait(timeout):
            raise WaitTimeout(
                f"election of {self.node} did not stop within {timeout}s; the agent may be "
                "unresponsive (the session expires on its own after its TTL)"
            )
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Election:
        return self

    def __exit__(self, *exc: object) -> None:
        self.resign()

    def steps(self) -> Steps[None]:
        """The whole election as steps (see :mod:`.steps`), for a driver of one's own.

        :meth:`start` and :meth:`run` drive it over HTTP; the interleaving tests drive it
        against the dev agent's state machine (overriding :meth:`_start_renewer` and
        :meth:`_stop_renewer`, which keep each session alive)."""
        try:
            yield from self._loop()
        except ElectHelpersError as exc:  # bad configuration: retrying cannot help
            self.failure = exc
            self._report(exc)
        yield from self._step_down("resigned")
        self._leader_event.set()  # wake wait_for_leadership(); there is no term

    # ------------------------------------------------------------------ the HTTP driver

    def _claim(self) -> None:
        with self._lock:
            if self._used:
                raise RuntimeError("an Election runs once; create a new one to campaign again")
            self._used = True

    def _request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run_claimed(self) -> None:
        self._runner = threading.get_ident()
        if self._client is None:
            raise InvalidArgument("Election.start()/run() need a Consul client")
        # One client per thread: non-blocking calls here, blocking reads in the reader,
        # renewals in each SessionRenewer's own clone.
        self._ops = clone_client(self._client, timeout=OPERATION_TIMEOUT)
        self._reader = BlockingReader(self._client, cancel=self._wake)
        try:
            drive(self.steps(), self._execute)
        finally:
            self._reader.close()
            self._ops.http.session.close()
            self._finished.set()
            self._leader_event.set()

    def _execute(self, step: Step) -> Any:
        ops = self._ops
        assert ops is not None and self._reader is not None
        if isinstance(step, ReadKey):
            wait = step.wait if step.index else None
            return self._reader.read(
                kv_fetch(step.key), step.index, wait, what=f"reading {step.key}"
            )
        if isinstance(step, Pause):
            self._wake.wait(step.seconds)
            return None
        if isinstance(step, Acquire):
            return try_acquire(ops, step.key, step.session, node=step.node, address=step.address)
        if isinstance(step, Release):
            return release(ops, step.key, step.session)
        if isinstance(step, CreateSession):
            s = step.settings
            return create_session(
                ops,
                name=step.name,
                ttl=s.ttl,
                behavior=s.behavior,
                lock_delay=s.lock_delay,
                node_checks=s.node_checks,
                service_checks=s.service_checks or None,
            )
        if isinstance(step, DestroySession):
            return destroy_session(ops, step.session)
        if isinstance(step, SessionInfo):
            return session_info(ops, step.session)
        raise AssertionError(f"unknown step {step!r}")

    def _start_renewer(self, renewer: SessionRenewer) -> None:
        """Start keeping a new session alive (a thread here; a task in the tests)."""
        renewer.client = self._ops
        renewer.start()

    def _stop_renewer(self, renewer: SessionRenewer) -> None:
        """Stop renewing (waits for the renew in flight, at most one request timeout)."""
        renewer.stop(destroy=False)

    # ------------------------------------------------------------------ the recipe

    def _loop(self) -> Steps[None]:
        backoff = ERROR_BACKOFF_FIRST
        while not self._stop.is_set():
            try:
                yield from self._open_session()
                term = yield from self._campaign()
                self._begin_term(term)
                reason = yield from self._hold()
                yield from self._step_down(reason)
                backoff = ERROR_BACKOFF_FIRST
            except _Stopping:
                return
            except (_SessionLost, SessionGone) as exc:
                if isinstance(exc, SessionGone):
                    self._session_gone = True
                reason = exc.reason if isinstance(exc, _SessionLost) else "invalidated"
                yield from self._step_down(f"session {reason}")
            except InvalidArgument:
                raise
            except ElectHelpersError as exc:
                self._report(exc)
                yield Pause(backoff)
                backoff = min(backoff * 2, ERROR_BACKOFF_MAX)

    def _check(self) -> None:
        if self._stop.is_set():
            raise _Stopping
        renewer = self._renewer
        if renewer is not None and renewer.lost_reason is not None:
            raise _SessionLost(renewer.lost_reason)

    def _session_lost(self, reason: str) -> None:
        # Renewer thread: the flag (renewer.lost_reason) is already set.  The term ends
        # now, not when the loop gets round to it; then wake the loop.
        with self._lock:
            term = self._term
        if term is not None:
            term._end(f"session {reason}")
        self._wake.set()

    def _open_session(self) -> Steps[None]:
        if self._session_id is not None:
            return
        self._wake.clear()
        if self._stop.is_set():
            raise _Stopping
        created_at = self.clock()
        session_id = yield CreateSession(f"leader election: {self.node}", self.settings)
        renewer = SessionRenewer(
            None,
            session_id,
            self.settings.ttl,
            on_lost=self._session_lost,
            created_at=created_at,
            renew_fraction=self.settings.renew_fraction,
            clock=self.clock,
        )
        with self._lock:
            self._session_id = session_id
            self._renewer = renewer
            self._may_hold = self._session_gone = False
        self._start_renewer(renewer)

    def _read(self, index: int, wait: float) -> Steps[tuple[int, dict | None]]:
        """One (blocking, if index > 0) read of the key, paced to MIN_INTERVAL."""
        self._check()
        pause = self._last_read + MIN_INTERVAL - self.clock()
        if pause > 0:
            yield Pause(pause)
            self._check()
        self._last_read = self.clock()
        try:
            return (yield ReadKey(self.key, index, wait))
        except Interrupted:
            self._check()
            raise

    def _note_holder(self, holder: LeaderInfo | None) -> None:
        self._observe(holder)
        if holder is not None and holder.session == self._session_id:
            self._may_hold = True

    def _campaign(self) -> Steps[Term]:
        """Loop until we hold the key; return the new term."""
        index = 0
        wait = WATCH_WAIT
        retry = LOCK_DELAY_RETRY_FIRST
        session_id = self._session_id
        assert session_id is not None
        while True:
            try:
                returned, entry = yield from self._read(index, wait)
            except Interrupted:
                continue
            index = next_index(index, returned)
            holder = leader_from_entry(self.key, entry)
            self._note_holder(holder)
            if holder is not None and holder.session != session_id:
                wait, retry = WATCH_WAIT, LOCK_DELAY_RETRY_FIRST
                continue  # held: block until the key changes
            self._check()
            # From the moment the acquire is sent the session may hold the key, whatever
            # answer (or error) comes back: a step-down must release it.
            self._may_hold = True
            if (yield Acquire(self.key, session_id, self.node, self.address)):
                term = yield from self._read_term(session_id)
                if term is not None:
                    return term
                index = 0
                continue
            # Free but refused: the previous holder's lock-delay.  Re-check after a short,
            # growing pause; a blocking read with that wait ends it early if the key changes.
            wait, retry = retry, min(retry * 2, LOCK_DELAY_RETRY_MAX)

    def _read_term(self, session_id: str) -> Steps[Term | None]:
        """Read the key right after acquiring; its ModifyIndex is the acquire's raft index."""
        while True:
            try:
                _, entry = yield from self._read(0, WATCH_WAIT)
                break
            except Interrupted:
                continue
        holder = leader_from_entry(self.key, entry)
        self._note_holder(holder)
        if holder is None or holder.session != session_id:
            return None
        return Term(
            self.key, holder.lock_index, session_id, holder.modify_index, _renewer=self._renewer
        )

    def _begin_term(self, term: Term) -> None:
        with self._lock:
            self._term = term
        self._leader_event.set()
        log.info("%s elected for %s with token %s", self.node, self.key, term)
        self._call(self.on_elected, term)

    def _hold(self) -> Steps[str]:
        """Block on the key while it names our session; return why it stopped doing so."""
        index = 0
        backoff = ERROR_BACKOFF_FIRST
        session_id = self._session_id
        while True:
            try:
                returned, entry = yield from self._read(index, WATCH_WAIT)
            except Interrupted:
                continue
            except ElectHelpersError as exc:
                # Keep leading while the renewer still succeeds or has time left; it gives
                # up (and ends the term) once a whole TTL passes without a good renew.
                self._report(exc)
                yield Pause(backoff)
                backoff = min(backoff * 2, ERROR_BACKOFF_MAX)
                continue
            backoff = ERROR_BACKOFF_FIRST
            index = next_index(index, returned)
            holder = leader_from_entry(self.key, entry)
            self._observe(holder)
            if holder is None or holder.session != session_id:
                return (yield from self._loss_reason(entry, holder))

    def _loss_reason(self, entry: dict | None, holder: LeaderInfo | None) -> Steps[str]:
        self._check()  # the renewer's reason wins if it has one
        try:
            gone = (yield SessionInfo(self._session_id or "")) is None
        except ElectHelpersError:
            gone = False
        if gone:
            self._session_gone = True
            return "session invalidated"
        if entry is None:
            return "key deleted"
        if holder is None:
            return "lock released outside the election"
        return f"key held by another session ({holder.session})"

    def _step_down(self, reason: str) -> Steps[None]:
        """End the term (belief first), then release the key if the session may hold it,
        then destroy the session: release -> destroy, so no lock-delay is left behind."""
        with self._lock:
            term, self._term = self._term, None
            session_id, renewer = self._session_id, self._renewer
            self._session_id = self._renewer = None
            may_hold, gone = self._may_hold, self._session_gone
        self._leader_event.clear()
        if term is not None:
            term._end(reason)
            level = logging.INFO if reason == "resigned" else logging.WARNING
            log.log(level, "%s lost leadership of %s: %s", self.node, self.key, reason)
            self._call(self.on_lost, reason)
        if session_id is None or renewer is None:
            return
        self._stop_renewer(renewer)
        if gone or renewer.lost_reason == SESSION_GONE:
            self.stepped_down = "found the session already ended by Consul"
            return  # nothing is held, nothing to destroy
        done = []
        if may_hold:
            try:
                released = yield Release(self.key, session_id)
                done.append("released the key" if released else "found the key not held")
            except ElectHelpersError as exc:
                self._report(exc)  # try the destroy anyway: better than waiting for the TTL
                done.append("could not release the key")
        try:
            yield DestroySession(session_id)
            done.append("destroyed the session")
        except ElectHelpersError as exc:
            self._report(exc)  # the session expires on its own after its TTL
            done.append("could not destroy the session (it expires after its TTL)")
        self.stepped_down = " and ".join(done)

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
