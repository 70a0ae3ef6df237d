"""Monotonic clocks and a timer service, replaceable in tests.

Everything time-based in the agent (session TTL timers, lock-delays, TTL checks, deferred
check-output syncs) reads time from a :class:`Clock` and schedules work on a
:class:`TimerService`.  Production uses :class:`SystemClock` and a background thread; unit
tests use :class:`ManualClock` and call :meth:`TimerService.advance` to move time forward
deterministically.  All times are integer nanoseconds.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("elect_helpers.devagent")

MAX_SLEEP_S = 3600.0  # longer waits are taken in steps (the OS cannot wait for centuries)


class Clock(Protocol):
    """A source of monotonic time in nanoseconds."""

    def monotonic_ns(self) -> int:
        """Return the current monotonic time in nanoseconds."""
        ...


class SystemClock:
    """The process's monotonic clock."""

    def monotonic_ns(self) -> int:
        """Return ``time.monotonic_ns()``."""
        return time.monotonic_ns()


class ManualClock:
    """A clock that only moves when told to (for tests)."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns
        self._lock = threading.Lock()

    def monotonic_ns(self) -> int:
        """Return the current manual time."""
        with self._lock:
            return self._now

    def advance(self, delta_ns: int) -> None:
        """Move time forward by ``delta_ns`` (never backwards)."""
        if delta_ns < 0:
            raise ValueError("a manual clock cannot go backwards")
        with self._lock:
            self._now += delta_ns


class Timer:
    """A handle to one scheduled callback; cancel it with :meth:`TimerService.cancel`."""

    __slots__ = ("callback", "cancelled", "deadline_ns", "name")

    def __init__(self, deadline_ns: int, callback: Callable[[], None], name: str) -> None:
        self.deadline_ns = deadline_ns
        self.callback = callback
        self.cancelled = False
        self.name = name


class TimerService:
    """Runs callbacks when the clock reaches their deadline.

    With :meth:`start` a daemon thread fires them on time.  Without it (tests), nothing fires
    until :meth:`run_due` or :meth:`advance` is called.  Callbacks run outside the service's
    lock, one at a time, and an exception in one is logged without stopping the others.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._heap: list[tuple[int, int, Timer]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def call_later(self, delay_ns: int, callback: Callable[[], None], name: str = "") -> Timer:
        """Schedule ``callback`` to run ``delay_ns`` from now; return its handle."""
        timer = Timer(self.clock.monotonic_ns() + max(0, delay_ns), callback, name)
        with self._cond:
            heapq.heappush(self._heap, (timer.deadline_ns, next(self._seq), timer))
            self._cond.notify()
        return timer

    def cancel(self, timer: Timer | None) -> None:
        """Make sure ``timer`` will not fire (a no-op if it already did or is None)."""
        if timer is not None:
            timer.cancelled = True

    def run_due(self) -> int:
        """Run every callback whose deadline has passed; return how many ran."""
        ran = 0
        while True:
            with self._cond:
                if not self._heap or self._heap[0][0] > self.clock.monotonic_ns():
                    return ran
                _, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            timer.cancelled = True
            ran += 1
            try:
                timer.callback()
            except Exception:
                log.exception("timer callback %s failed", timer.name or timer.callback)

    def advance(self, delta_ns: int) -> int:
        """Move a :class:`ManualClock` forward and run what became due (tests only)."""
        clock = self.clock
        if not isinstance(clock, ManualClock):
            raise TypeError("advance() needs a ManualClock")
        clock.advance(delta_ns)
        return self.run_due()

    def start(self) -> None:
        """Fire timers on time from a daemon thread."""
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="devagent-timers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread; pending timers are dropped."""
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    while self._heap and self._heap[0][2].cancelled:
                        heapq.heappop(self._heap)
                    if self._heap:
                        wait_ns = self._heap[0][0] - self.clock.monotonic_ns()
                        if wait_ns <= 0:
                            break
                        self._cond.wait(min(wait_ns / 1e9, MAX_SLEEP_S))
                    else:
                        self._cond.wait()
                if self._stopping:
                    return
            self.run_due()


class KeyedTimers:
    """At most one pending timer per key, e.g. one TTL timer per session id."""

    def __init__(self, service: TimerService) -> None:
        self._service = service
        self._timers: dict[str, Timer] = {}
        self._lock = threading.Lock()

    def reset(self, key: str, delay_ns: int, callback: Callable[[], None]) -> None:
        """(Re)start the timer for ``key``: it fires ``delay_ns`` from now unless reset again."""
        with self._lock:
            self._service.cancel(self._timers.get(key))

            def fire() -> None:
                with self._lock:
                    if self._timers.get(key) is timer:
                        del self._timers[key]
                callback()

            timer = self._service.call_later(delay_ns, fire, name=f"timer {key}")
            self._timers[key] = timer

    def clear(self, key: str) -> None:
        """Cancel the timer for ``key`` if one is pending."""
        with self._lock:
            self._service.cancel(self._timers.pop(key, None))

    def pending(self, key: str) -> bool:
        """Return whether a timer for ``key`` is pending."""
        with self._lock:
            return key in self._timers
