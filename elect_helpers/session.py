"""Step 2 and 4 of the recipe: create a session, and keep it alive in the background.

A session is Consul's handle on "this node is alive".  It has a TTL (Consul invalidates it
if it is not renewed in time; in practice up to twice the TTL later), a behaviour
(``delete`` or ``release``: what happens to the keys it locks when it is invalidated), a
lock-delay (how long nobody may take those locks afterwards) and optionally health checks
it is bound to (a check going critical invalidates it at once).

:class:`SessionRenewer` renews the way Consul's Go client (``api.Session.RenewPeriodic``)
does: every TTL/2; after an error, retry every second; give up once a whole TTL has passed
since the last good renew; a 404 means the session is gone (expired, destroyed or
invalidated: Consul's answer does not say which) and is reported as ``SESSION_GONE``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence

import consul
from consul.base import CB

from .connection import agent_session_ttl_min, clone_client, consul_call
from .durations import seconds_to_go, to_seconds
from .errors import ConsulError, ElectHelpersError, InvalidArgument, InvalidTTL, duration_argument
from .settings import ARTICLE, BEHAVIORS, SESSION_TTL_MAX
from .steps import Pause, RenewSession, Step, Steps, drive

log = logging.getLogger(__name__)

# python-consul2's session.create() asserts 10 <= ttl <= 86400 on the client side.
LIBRARY_MIN_TTL = 10.0
RETRY_INTERVAL = 1.0  # the Go client's retry interval after a failed renew
MAX_RENEW_WAIT = 10.0  # seconds one renew request may take, however long the TTL
#: The renewer's reason when Consul answers 404: the session is gone, whether it expired, was
#: destroyed or was invalidated (Consul's answer does not say which).
SESSION_GONE = "gone"


def _ttl_error(ttl: str | float | None, detail: str, agent_min: float | None) -> InvalidTTL:
    """``agent_min`` given: the TTL was too short for this agent, so say how to lower it."""
    if agent_min is None:
        return InvalidTTL(
            f"session TTL {ttl!r} {detail}: Consul accepts TTLs from the agent's "
            "session_ttl_min (10s unless lowered) to 24h"
        )
    return InvalidTTL(
        f"session TTL {ttl!r} {detail}: Consul accepts TTLs from session_ttl_min "
        f"({seconds_to_go(agent_min)} on this agent) to 24h; use a longer TTL, or an agent "
        f"started with -hcl 'session_ttl_min = \"{seconds_to_go(to_seconds(ttl))}\"' "
        "(ensure_agent(session_ttl_min=...))"
    )


def _check_ttl(client: consul.Consul, ttl: str | float) -> float:
    """Validate a TTL against Consul's limits; return it in seconds."""
    try:
        seconds = to_seconds(ttl)
    except ValueError as exc:
        raise _ttl_error(ttl, f"is not a duration ({exc})", None) from None
    if seconds <= 0:
        raise _ttl_error(ttl, "must be positive", None)
    if seconds > SESSION_TTL_MAX:
        raise _ttl_error(ttl, "is longer than 24h", None)
    if seconds < LIBRARY_MIN_TTL:
        try:
            agent_min = agent_session_ttl_min(client)
        except ConsulError:
            return seconds  # the agent does not say; let it validate the TTL itself
        if seconds < agent_min:
            raise _ttl_error(ttl, "is too short", agent_min)
    return seconds


def _whole(seconds: float | None) -> float | int | None:
    """python-consul2 sends ``"%ss" % value``: pass 10, not 10.0, so Consul stores "10s"."""
    return int(seconds) if seconds is not None and seconds.is_integer() else seconds


def create_session(
    client: consul.Consul,
    *,
    name: str,
    ttl: str | float | None = ARTICLE.ttl,
    behavior: str = ARTICLE.behavior,
    lock_delay: str | float = ARTICLE.lock_delay,
    node_checks: Sequence[str] | None = None,
    service_checks: Sequence[str] | None = None,
) -> str:
    """Create a session on the client's agent and return its ID.

    ``ttl`` (``None`` = no TTL) must lie between the agent's ``session_ttl_min`` and 24h,
    else :class:`InvalidTTL`.  ``behavior`` is ``"delete"`` or ``"release"``.
    ``lock_delay`` ("15s", 0...) keeps a lock free that long after the session is
    invalidated.  ``node_checks`` (default: Consul's ``["serfHealth"]``) and
    ``service_checks`` (check IDs such as ``"service:node01"``) bind the session: when one
    of them goes critical, Consul invalidates the session.  Consul refuses to bind a check
    that is critical right now (:class:`ConsulError` says so).
    """
    if behavior not in BEHAVIORS:
        raise InvalidArgument(f"behavior must be 'delete' or 'release', got {behavior!r}")
    delay = duration_argument("lock_delay", lock_delay)
    if delay < 0:
        raise InvalidArgument(f"lock_delay must not be negative, got {lock_delay!r}")
    ttl_s = None if ttl is None else _check_ttl(client, ttl)
    action = f"creating session {name!r}"
    try:
        if (ttl_s is None or ttl_s >= LIBRARY_MIN_TTL) and not node_checks and not service_checks:
            with consul_call(client, action):
                return client.session.create(
                    name=name, behavior=behavior, ttl=_whole(ttl_s), lock_delay=_whole(delay)
                )
        # python-consul2's session.create() cannot send this request: it asserts
        # 10 <= ttl <= 86400 even when the agent's session_ttl_min allows shorter TTLs, and
        # it has no NodeChecks/ServiceChecks fields.  So this one call goes through the
        # library's own HTTP transport (same address, token, TLS and timeout) with the body
        # Consul's API documents.
        body: dict[str, object] = {
            "Name": name,
            "Behavior": behavior,
            "LockDelay": seconds_to_go(delay),
        }
        if ttl_s is not None:
            body["TTL"] = seconds_to_go(ttl_s)
        if node_checks is not None:
            body["NodeChecks"] = list(node_checks)
        if service_checks:
            body["ServiceChecks"] = [{"ID": check_id} for check_id in service_checks]
        headers = {"X-Consul-Token": client.token} if client.token else {}
        params = [("dc", client.dc)] if client.dc else []
        with consul_call(client, action):
            return client.http.put(
                CB.json(is_id=True),
                "/v1/session/create",
                params=params,
                headers=headers,
                data=json.dumps(body),
            )
    except ConsulError as exc:
        if "Invalid Session TTL" in exc.body:
            raise _ttl_error(ttl, f"was refused by the agent ({exc.body.strip()})", None) from None
        if "critical state" in exc.body:
            raise ConsulError(
                f"{exc}; Consul binds a session only to passing checks: wait for the check "
                "first (elect_helpers.service.wait_for_check)",
                exc.status,
                exc.body,
            ) from None
        raise


def destroy_session(client: consul.Consul, session_id: str) -> None:
    """Destroy a session (idempotent: an unknown ID is fine, as in Consul).

    Locks it holds are released or deleted per its behaviour, and its lock-delay starts.
    """
    if not session_id:
        raise InvalidArgument("destroy_session needs a session ID, got an empty one")
    with consul_call(client, f"destroying session {session_id}"):
        client.session.destroy(session_id)


def renew_session(client: consul.Consul, session_id: str) -> float | None:
    """Renew a session once; the TTL the agent reports (seconds), or ``None`` if the
    session is gone (Consul answers 404)."""
    try:
        with consul_call(client, f"renewing session {session_id}"):
            entry = client.session.renew(session_id)
    except ConsulError as exc:
        if exc.status == 404:  # "Session id '...' not found": it is gone
            return None
        raise
    ttl = entry.get("TTL") if entry else None
    return to_seconds(ttl) if ttl else 0.0


def session_info(client: consul.Consul, session_id: str) -> dict | None:
    """The session as Consul stores it (``ID``, ``TTL``, ``Behavior``...), or ``None`` if gone."""
    if not session_id:
        raise InvalidArgument("session_info needs a session ID, got an empty one")
    with consul_call(client, f"reading session {session_id}"):
        _, info = client.session.info(session_id)
    return info


class SessionRenewer:
    """Renew a session in a background thread, as Consul's Go ``RenewPeriodic`` does.

    Renews every TTL x ``renew_fraction`` (TTL/2 by default, using the TTL the agent
    returns).  After an error it retries every ``retry_interval`` seconds, or sooner if the
    TTL would run out first, and gives up once a whole TTL has passed since the last good
    renew.  ``on_lost(reason)`` is called once, from the renewer's thread, when it stops on
    its own: reason :data:`SESSION_GONE` when Consul answers 404 (the session is gone),
    ``"gave-up: <last error>"`` when renewing kept failing.  ``stop(destroy=True)`` stops it
    and destroys the session.  Pass ``created_at`` (the clock reading taken just before
    creating the session) so that :attr:`deadline` is counted from when Consul's own timer
    started.  ``clock`` is ``time.monotonic`` unless a test drives the renewer itself
    through :meth:`steps`.
    """

    def __init__(
        self,
        client: consul.Consul | None,
        session_id: str,
        ttl: str | float,
        on_lost: Callable[[str], None] | None = None,
        *,
        retry_interval: float = RETRY_INTERVAL,
        created_at: float | None = None,
        renew_fraction: float = ARTICLE.renew_fraction,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not session_id:
            raise InvalidArgument("SessionRenewer needs a session ID, got an empty one")
        self.client = client
        self.session_id = session_id
        try:
            self.ttl = to_seconds(ttl)
        except ValueError as exc:
            raise InvalidTTL(f"session TTL {ttl!r} is not a duration ({exc})") from None
        if self.ttl <= 0:
            raise InvalidTTL(f"SessionRenewer needs a positive TTL, got {ttl!r}")
        self.on_lost = on_lost
        self.retry_interval = retry_interval
        self.renew_fraction = renew_fraction
        self.lost_reason: str | None = None
        self.renewals = 0
        self._clock = clock
        # Consul's timer starts when it creates the session: count from just before the
        # create call (``created_at``) so the deadline is never late.
        self._last_ok = clock() if created_at is None else created_at
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._renew_client: consul.Consul | None = None

    @property
    def deadline(self) -> float:
        """Clock reading after which the session may be gone (last good renew + TTL).
        Consul never invalidates a session on its TTL before this (it waits 2 x TTL), though
        a destroy or a failing bound check may end it at any moment."""
        return self._last_ok + self.ttl

    @property
    def healthy(self) -> bool:
        """True while running and the last good renew is less than a TTL ago.  This is
        the renewer's belief, from its own clock; only Consul knows for sure."""
        return self.lost_reason is None and self._clock() < self.deadline

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` (or :meth:`request_stop`) was called."""
        return self._stop.is_set()

    def start(self) -> SessionRenewer:
        """Start renewing in a daemon thread; returns self."""
        if self.client is None:
            raise InvalidArgument("SessionRenewer.start() needs a Consul client")
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("this SessionRenewer was already started")
            # Its own client: a renew must not queue behind another thread's blocking query.
            self._renew_client = clone_client(self.client, timeout=MAX_RENEW_WAIT)
            self._thread = threading.Thread(
                target=self._run, name=f"renew-{self.session_id[:8]}", daemon=True
            )
            self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the renewer to stop (it ends at its next step); does not wait."""
        self._stop.set()

    def stop(self, destroy: bool = True, timeout: float | None = None) -> None:
        """Stop renewing and, with ``destroy=True``, destroy the session.

        Waits for the thread (at most ``timeout`` seconds; by default as long as one renew
        request may take, plus a second).
        Destroying raises :class:`AgentUnreachable` if the agent cannot be reached; the
        session then expires on its own after its TTL.
        """
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(min(self.ttl, MAX_RENEW_WAIT) + 1.0 if timeout is None else timeout)
        if destroy:
            if self.client is None:
                raise InvalidArgument("SessionRenewer.stop(destroy=True) needs a Consul client")
            destroy_session(self.client, self.session_id)

    def steps(self) -> Steps[None]:
        """The renewer's life as steps (see :mod:`.steps`): pause, renew, repeat.

        Each renewal is due ``ttl x renew_fraction`` after the last good one (or after
        ``created_at``), not after the renewer got round to starting: a process frozen
        between creating the session and starting its renewer renews at once on waking,
        instead of doubting a healthy session for half a TTL."""
        wait = self._next_renewal()
        while True:
            yield Pause(wait)
            if self._stop.is_set():
                return
            sent = self._clock()
            try:
                ttl = yield RenewSession(self.session_id)
            except ElectHelpersError as exc:
                if self._stop.is_set():
                    return
                now = self._clock()
                if now >= self.deadline:
                    self._give_up(f"gave-up: {exc}")
                    return
                wait = min(self.retry_interval, self.deadline - now)
                continue
            if ttl is None:
                if not self._stop.is_set():
                    self._give_up(SESSION_GONE)
                return
            self._last_ok = sent
            self.renewals += 1
            self.ttl = ttl or self.ttl
            wait = self._next_renewal()

    def _next_renewal(self) -> float:
        return max(0.0, self._last_ok + self.ttl * self.renew_fraction - self._clock())

    def _execute(self, step: Step) -> float | None:
        if isinstance(step, Pause):
            self._stop.wait(step.seconds)
            return None
        assert isinstance(step, RenewSession) and self._renew_client is not None
        remaining = self.deadline - self._clock()
        self._renew_client.http.timeout = min(max(remaining, 0.2), MAX_RENEW_WAIT)
        return renew_session(self._renew_client, step.session)

    def _give_up(self, reason: str) -> None:
        self.lost_reason = reason
        log.warning("session %s lost: %s", self.session_id, reason)
        if self.on_lost is not None:
            try:
                self.on_lost(reason)
            except Exception:
                log.exception("on_lost callback of session %s failed", self.session_id)

    def _run(self) -> None:
        try:
            drive(self.steps(), self._execute)
        finally:
            assert self._renew_client is not None
            self._renew_client.http.session.close()
