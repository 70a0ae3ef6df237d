"""Watching a key with Consul blocking queries, following Consul's client rules.

A blocking query (``GET /v1/kv/<key>?index=N&wait=30s``) returns as soon as the key's index
passes ``N``, or after ``wait`` with nothing new.  Consul asks clients to: reset the index
to 0 if it ever goes backwards, treat an index below 1 as 1, and rate-limit their loops
(a return is no proof that anything changed).  :func:`next_index` is those rules;
:class:`KeyWatcher` is a loop that applies them, backs off after errors, yields only real
changes, and can be stopped from another thread at once, even in the middle of a query.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator

import consul
import requests
import urllib3
from requests.adapters import HTTPAdapter

from .connection import MAX_BLOCKING_WAIT, clone_client, consul_call
from .durations import seconds_to_go
from .errors import ElectHelpersError, InvalidArgument, duration_argument
from .lock import check_key

NON_BLOCKING_TIMEOUT = 5.0  # seconds a plain (non-blocking) read may take
MIN_INTERVAL = 0.02  # at most one query per 20 ms per watcher
INITIAL_BACKOFF = 0.1
MAX_BACKOFF = 5.0


class Interrupted(ElectHelpersError):
    """A read was cut short by :meth:`KeyReader.wake` or :meth:`KeyReader.close`."""


def next_index(previous: int, returned: int) -> int:
    """The index to send with the next blocking query, per Consul's rules.

    If the index went backwards (snapshot restore, tombstone reaping...), start again from
    0 (a non-blocking read); an index below 1 is treated as 1 so that a buggy 0 can never
    make every query return at once.
    """
    if returned < previous:
        return 0
    return max(returned, 1)


def _check_wait(wait: str | float) -> float:
    seconds = duration_argument("wait", wait)
    if seconds <= 0:
        # Consul reads wait=0s as "the default 5 minutes", never as "do not wait".
        raise InvalidArgument(f"wait must be a positive duration, got {wait!r}")
    return min(seconds, MAX_BLOCKING_WAIT)


class _CuttableSockets:
    """Remembers every socket one ``requests.Session`` opens so they can be shut down.

    Shutting a socket down from another thread makes a ``recv`` blocked on it return at
    once; that is how a blocking query in flight is cancelled (Go cancels its context).
    """

    def __init__(self, session: requests.Session) -> None:
        self._lock = threading.Lock()
        self._sockets: weakref.WeakSet = weakref.WeakSet()
        self.cutting = False
        tracker = self

        class Conn(urllib3.connection.HTTPConnection):
            def _new_conn(self):  # type: ignore[no-untyped-def]
                return tracker._track(super()._new_conn())

        class TLSConn(urllib3.connection.HTTPSConnection):
            def _new_conn(self):  # type: ignore[no-untyped-def]
                return tracker._track(super()._new_conn())

        class Pool(urllib3.HTTPConnectionPool):
            ConnectionCls = Conn

        class TLSPool(urllib3.HTTPSConnectionPool):
            ConnectionCls = TLSConn

        adapter = HTTPAdapter()
        adapter.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}
        session.trust_env = False  # no proxy: the sockets must be the agent's own
        session.mount("http://", adapter)
        session.mount("https://", adapter)

    def _track(self, sock):  # type: ignore[no-untyped-def]
        with self._lock:
            self._sockets.add(sock)
            if self.cutting:
                _shutdown(sock)
        return sock

    def cut(self) -> None:
        """Shut down every socket now, and each new one while ``cutting`` stays True."""
        with self._lock:
            self.cutting = True
            for sock in list(self._sockets):
                _shutdown(sock)


def _shutdown(sock) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class KeyReader:
    """Reads of KV keys (plain or blocking) on a private connection another thread can cut.

    One thread reads; any thread may call :meth:`wake` (abort the read in flight, or the
    next one if none is in flight) or :meth:`close` (abort this and every later read).
    An aborted read raises :class:`Interrupted`.
    """

    def __init__(self, client: consul.Consul) -> None:
        self._client = clone_client(client)
        self._sockets = _CuttableSockets(self._client.http.session)
        self._lock = threading.Lock()
        self._inflight = False
        self._pending_wake = False
        self.closed = False

    def read(
        self, key: str, index: int = 0, wait: str | float | None = None
    ) -> tuple[int, dict | None]:
        """GET ``key``; with ``index`` > 0 and ``wait``, block until its index passes
        ``index`` or ``wait`` runs out.  Returns ``(X-Consul-Index, entry or None)``."""
        seconds = _check_wait(wait) if (index > 0 and wait is not None) else 0.0
        with self._lock:
            if self.closed or self._pending_wake:
                self._pending_wake = False
                raise Interrupted(f"reading {key} was interrupted")
            self._inflight = True
            self._sockets.cutting = False
        # Consul may add up to wait/16 of jitter before answering.
        self._client.http.timeout = seconds + seconds / 16 + NON_BLOCKING_TIMEOUT
        try:
            with consul_call(self._client, f"reading {key}"):
                if seconds:
                    raw_index, entry = self._client.kv.get(
                        key, index=index, wait=seconds_to_go(seconds)
                    )
                else:
                    raw_index, entry = self._client.kv.get(key)
        except ElectHelpersError:
            with self._lock:
                if self._sockets.cutting:
                    raise Interrupted(f"reading {key} was interrupted") from None
            raise
        finally:
            with self._lock:
                self._inflight = False
                if self.closed:
                    self._client.http.session.close()
        return int(raw_index or 0), entry

    def wake(self) -> None:
        """Abort the read in flight now (or make the next read return at once)."""
        with self._lock:
            if self._inflight:
                self._sockets.cut()
            else:
                self._pending_wake = True

    def close(self) -> None:
        """Abort the read in flight, refuse every later one, and close the connections."""
        with self._lock:
            self.closed = True
            self._sockets.cut()
            if not self._inflight:  # else the reading thread closes them when it returns
                self._client.http.session.close()


def _fingerprint(entry: dict | None) -> tuple[int, int] | None:
    if entry is None:
        return None
    return (int(entry.get("CreateIndex", 0)), int(entry.get("ModifyIndex", 0)))


class KeyWatcher:
    """Iterate over the states of one key: ``(index, entry or None)``, first the current
    state, then one item per change (a spurious wake-up or a timeout yields nothing).

    Errors (agent unreachable, error answers) are raised unless ``on_error`` is given; then
    ``on_error(exc)`` is called and the watcher retries with exponential back-off (0.1 s up
    to 5 s).  ``on_error`` may raise to end the watch.  :meth:`stop` ends the iteration
    promptly from any thread, even during a query.
    """

    def __init__(
        self,
        client: consul.Consul,
        key: str,
        *,
        wait: str | float = "30s",
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        check_key(key)
        self.key = key
        self.wait = _check_wait(wait)
        self.on_error = on_error
        self._reader = KeyReader(client)
        self._stopped = threading.Event()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def stop(self) -> None:
        """End the iteration (thread-safe; cancels a query in flight)."""
        self._stopped.set()
        self._reader.close()

    def __iter__(self) -> Iterator[tuple[int, dict | None]]:
        index = 0
        seen: object = object()  # matches no fingerprint, so the first state is yielded
        backoff = INITIAL_BACKOFF
        last_start = 0.0
        while not self._stopped.is_set():
            pause = last_start + MIN_INTERVAL - time.monotonic()
            if pause > 0 and self._stopped.wait(pause):
                return
            last_start = time.monotonic()
            try:
                returned, entry = self._reader.read(self.key, index, self.wait)
            except Interrupted:
                return
            except ElectHelpersError as exc:
                if self.on_error is None:
                    raise
                self.on_error(exc)
                if self._stopped.wait(backoff):
                    return
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = INITIAL_BACKOFF
            index = next_index(index, returned)
            if _fingerprint(entry) != seen:
                seen = _fingerprint(entry)
                yield max(returned, 1), entry


def _relay(stop: threading.Event, watcher: KeyWatcher) -> None:
    while not watcher.stopped:
        if stop.wait(0.2):
            watcher.stop()


def watch_key(
    client: consul.Consul,
    key: str,
    *,
    wait: str | float = "30s",
    stop: threading.Event | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> Iterator[tuple[int, dict | None]]:
    """Yield ``(index, entry or None)`` for ``key``: its current state, then each change.

    ``entry`` is python-consul2's dict (``Value`` as bytes, ``Session``, ``LockIndex``,
    ``ModifyIndex``...).  Each blocking query waits at most ``wait`` (capped at 60 s).
    Setting ``stop`` ends the watch within a fraction of a second, even mid-query; so does
    breaking out of the loop.  See :class:`KeyWatcher` for errors and ``on_error``.
    """
    watcher = KeyWatcher(client, key, wait=wait, on_error=on_error)
    relay = None
    if stop is not None:
        relay = threading.Thread(target=_relay, args=(stop, watcher), daemon=True)
        relay.start()
    try:
        yield from watcher
    finally:
        watcher.stop()
        if relay is not None:
            relay.join()
