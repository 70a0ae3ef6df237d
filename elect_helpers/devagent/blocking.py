"""The parking lot for blocking queries: one thread answers every woken watcher.

A blocking request whose index has not moved is *parked*: its connection thread sleeps while
the :class:`Parker` watches the store for it.  When a change (or the deadline) comes, the
parker's single thread re-runs the read, renders the answer (once per identical request and
index) and writes it to the socket itself.  A herd of 100 watchers is thus answered in one
tight loop instead of 100 threads fighting over the interpreter lock.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from .httpcore import Deferred, Response
from .store import QueryResult, Store, Watch

log = logging.getLogger("elect_helpers.devagent.http")


class Wire:
    """How a parked request's answer reaches its client: encoding, variant, socket send."""

    __slots__ = ("encode", "send", "variant")

    def __init__(
        self,
        encode: Callable[[Response], bytes],
        send: Callable[[bytes], None],
        variant: tuple[object, ...],
    ) -> None:
        self.encode = encode
        self.send = send
        self.variant = variant


class _Parked:
    __slots__ = ("deadline", "deferred", "done", "watch", "wire")

    def __init__(self, deferred: Deferred, wire: Wire, deadline: float) -> None:
        self.deferred = deferred
        self.wire = wire
        self.deadline = deadline
        self.done = threading.Event()
        self.watch: Watch | None = None


class Parker:
    """Holds parked blocking reads and answers them on change or timeout."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._fired: queue.SimpleQueue[_Parked | None] = queue.SimpleQueue()
        self._deadlines: list[tuple[float, int, _Parked]] = []
        self._deadlines_lock = threading.Lock()
        self._seq = itertools.count()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="devagent-parker", daemon=True)
        self._thread.start()

    def park(self, deferred: Deferred, wire: Wire) -> None:
        """Answer ``deferred`` through ``wire`` once ready; return after it was sent."""
        entry = _Parked(deferred, wire, time.monotonic() + deferred.timeout_s)
        with self._deadlines_lock:
            heapq.heappush(self._deadlines, (entry.deadline, next(self._seq), entry))
        self._arm(entry)
        self._fired.put(None)  # re-evaluate the nearest deadline
        entry.done.wait()

    def _arm(self, entry: _Parked) -> None:
        """Watch the read's topics; fire at once if it is already ready."""
        with self._store.lock:
            result = entry.deferred.run()
            if result.index > entry.deferred.min_index or self._store.closed or self._stopping:
                self._fired.put(entry)
                return
            entry.watch = self._store.watch(result.topics, lambda: self._fired.put(entry))

    def stop(self) -> None:
        """Answer everything parked now and stop the thread."""
        self._stopping = True
        self._fired.put(None)
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            expired = self._expired()
            if self._stopping:
                with self._deadlines_lock:
                    expired += [e for _, _, e in self._deadlines]
                    self._deadlines.clear()
            try:
                self._answer(batch, expired)
            except Exception:  # never let one bad read take the parking lot down
                log.exception("answering blocking queries failed")
                for entry in batch + expired:
                    self._fail(entry)
            if self._stopping:
                return

    def _next_batch(self) -> list[_Parked]:
        with self._deadlines_lock:
            nearest = self._deadlines[0][0] if self._deadlines else None
        timeout = None if nearest is None else max(0.0, nearest - time.monotonic())
        batch: list[_Parked] = []
        try:
            first = self._fired.get(timeout=timeout)
        except queue.Empty:
            return batch
        if first is not None:
            batch.append(first)
        with self._store.lock:
            pass  # let the write that fired this finish notifying its whole herd
        while True:
            try:
                more = self._fired.get_nowait()
            except queue.Empty:
                return batch
            if more is not None:
                batch.append(more)

    def _expired(self) -> list[_Parked]:
        now = time.monotonic()
        out = []
        with self._deadlines_lock:
            while self._deadlines and self._deadlines[0][0] <= now:
                out.append(heapq.heappop(self._deadlines)[2])
        return out

    def _fail(self, entry: _Parked) -> None:
        """Answer a parked request with a 500 (a bug in the dev agent, not the client)."""
        if entry.done.is_set():
            return
        text = b"Internal error in the embedded dev agent while answering a blocking query"
        with contextlib.suppress(OSError):
            entry.wire.send(entry.wire.encode(Response(500, text)))
        entry.done.set()

    def _answer(self, fired: list[_Parked], expired: list[_Parked]) -> None:
        """Re-run the reads (once per distinct request), re-park the unchanged ones, and send
        every ready answer (rendered and encoded once per identical request, index and wire
        variant) before waking the connection threads."""
        ready: list[tuple[_Parked, QueryResult[Any]]] = []
        with self._store.lock:
            results: dict[tuple[str, str], QueryResult[Any]] = {}
            seen: set[int] = set()
            # Expired first: an entry both fired and expired must be answered, not re-parked.
            for entry, timed_out in [(e, True) for e in expired] + [(e, False) for e in fired]:
                if entry.done.is_set() or id(entry) in seen:
                    continue
                seen.add(id(entry))
                deferred = entry.deferred
                if entry.watch is not None:
                    self._store.unwatch(entry.watch)
                    entry.watch = None
                result = results.get(deferred.cache_key)
                if result is None:
                    try:
                        result = results[deferred.cache_key] = deferred.run()
                    except Exception:
                        log.exception("a blocking read failed")
                        self._fail(entry)
                        continue
                    result.index = max(result.index, 1)
                final = timed_out or self._stopping or self._store.closed
                if result.index <= deferred.min_index and not final:
                    entry.watch = self._store.watch(
                        result.topics, lambda e=entry: self._fired.put(e)
                    )
                    continue
                ready.append((entry, result))
        rendered: dict[tuple[object, ...], Response] = {}
        encoded: dict[tuple[object, ...], bytes] = {}
        for entry, result in ready:
            key = (entry.deferred.cache_key, result.index)
            response = rendered.get(key)
            if response is None:
                response = rendered[key] = entry.deferred.render(result)
            wire_key = (*key, entry.wire.variant)
            payload = encoded.get(wire_key)
            if payload is None:
                payload = encoded[wire_key] = entry.wire.encode(response)
            try:
                entry.wire.send(payload)
            except OSError:
                log.debug("a blocking query's client went away before its answer")
        # Wake the connection threads only now: waking them one by one would make them fight
        # this thread for the interpreter lock in the middle of the batch.
        for entry, _ in ready:
            entry.done.set()
