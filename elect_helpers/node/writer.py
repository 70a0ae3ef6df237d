"""The leader's work: write to the resource(s) with the fencing token, periodically.

The writer is handed each :class:`~elect_helpers.election.Term` the node wins and writes
while that term has not ended; it needs no lead/follow signals of its own.  The loop
deliberately has the shape that makes fencing necessary: it decides "I lead, with token T"
(the term has not ended), waits for the next tick, then writes with T.  A process frozen during that
wait (SIGSTOP, a long GC pause) wakes up and writes with T before any other thread has a
chance to tell it that it lost the lock meanwhile; only the fenced resource saves the day.
A freeze can also hit in the middle of a round of writes (a request already sent, its
answer read only after waking); then the round is written once more with T, so that after
any freeze every resource sees the woken node's old token first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from elect_helpers.election import Term
from elect_helpers.errors import ResourceError
from elect_helpers.events import EventLog
from elect_helpers.fencing import WriteOutcome, write_resource

WOKE_SLACK = 0.5  # a tick this much longer than planned means the process was frozen


class LeaderWriter:
    """Writes ``<node> #<n>`` to each resource URL every ``interval`` seconds while leading.

    ``lead(term)`` writes with that term's token until the term ends (its ``ended`` event:
    no tick starts after that), ``stop()`` ends the thread without writing again.  To keep the event
    log readable, an accepted write is logged only when it differs from the previous one
    at that resource (new token, or after being rejected); rejected writes, errors and the
    first write after a freeze are always logged.  The stores keep the full history.
    """

    def __init__(
        self,
        node: str,
        urls: dict[str, str],
        interval: float,
        log: EventLog,
        session: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._node = node
        self._urls = urls
        self._interval = interval
        self._log = log
        self._session = session
        self._cond = threading.Condition()
        self._term: Term | None = None
        self._stopping = False
        self._seq = 0
        self._last: dict[str, tuple[bool, int] | str] = {}
        self._thread = threading.Thread(target=self._run, name="leader-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def lead(self, term: Term) -> None:
        """Write with ``term``'s token from now on, until the term ends."""
        with self._cond:
            self._term = term
            self._cond.notify_all()

    def _leading(self) -> Term | None:
        term = self._term
        return term if term is not None and not term.ended.is_set() else None

    def stop(self, timeout: float = 2.0) -> None:
        """End the loop without another write and wait for the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._leading() is None and not self._stopping:
                    self._cond.wait()  # lead() and stop() notify; an ended term needs not
                if self._stopping:
                    return
                term = self._leading()
                assert term is not None
                token = int(term)  # the decision: "I lead with this token"
                planned = time.monotonic() + self._interval
                self._cond.wait(self._interval)
                if self._stopping:
                    return
            late = time.monotonic() - planned
            if late > WOKE_SLACK:
                self._woke(token, f"was frozen for about {late + self._interval:.1f}s")
                self._write_all(token, force_log=True)
            elif self._write_all(token, force_log=False):
                self._woke(token, "was frozen in the middle of its writes")
                self._write_all(token, force_log=True)

    def _woke(self, token: int, how: str) -> None:
        self._log.emit(
            "woke",
            token=token,
            session=self._session(),
            detail=f"{how}; still believes it leads and writes with token {token}",
        )

    def _write_all(self, token: int, force_log: bool) -> bool:
        """One write per resource; True if some step took so long the process was frozen."""
        self._seq += 1
        value = f"{self._node} #{self._seq}"
        frozen = False
        for kind, url in self._urls.items():
            began = time.monotonic()
            try:
                outcome = write_resource(url, token, self._node, value)
            except ResourceError as exc:
                if force_log or self._last.get(kind) != str(exc):
                    self._log.emit("write-error", token=token, detail=f"{kind}: {exc}")
                self._last[kind] = str(exc)
            else:
                self._log_outcome(kind, token, outcome, force_log)
            frozen = frozen or time.monotonic() - began > WOKE_SLACK
        return frozen

    def _log_outcome(self, kind: str, token: int, outcome: WriteOutcome, force: bool) -> None:
        state = (outcome.accepted, token)
        if outcome.accepted and not force and self._last.get(kind) == state:
            return
        self._last[kind] = state
        if outcome.accepted:
            note = " (stale: a newer token was seen)" if outcome.stale else ""
            detail = f"{kind} resource accepted the write{note}"
        else:
            detail = (
                f"{kind} resource rejected the write: it has seen token {outcome.highest_before}"
            )
        self._log.emit(
            "write-accepted" if outcome.accepted else "write-rejected",
            token=token,
            session=self._session(),
            detail=detail,
        )
