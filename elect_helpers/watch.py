"""Blocking reads of Consul, following Consul's client rules: the one primitive for waiting.

A blocking query (``GET /v1/kv/<key>?index=N&wait=30s``) returns as soon as the result's
index passes ``N``, or after ``wait`` with nothing new.  Consul asks clients to reset the
index to 0 if it ever goes backwards, to treat an index below 1 as 1, and to rate-limit
their loops (a return is no proof that anything changed): :func:`next_index` and
:data:`MIN_INTERVAL` are those rules.

:class:`BlockingReader` makes the reads on a private connection.  It is cancelled by the
caller's own :class:`CancelEvent` (a :class:`threading.Event` whose ``set()`` also cuts
the read in flight, as Go cancels a request's context): no thread polls on its behalf.
Every read's request timeout is the same rule: the wait Consul was asked for, plus the
up-to-1/16 jitter Consul may add, plus :data:`NON_BLOCKING_TIMEOUT`.
:meth:`BlockingReader.wait_until` loops those reads until a condition holds, or raises
:class:`~.errors.WaitTimeout`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import consul
import requests
import urllib3
from requests.adapters import HTTPAdapter

from .connection import MAX_BLOCKING_WAIT, clone_client, consul_call
from .durations import seconds_to_go
from .errors import ElectHelpersError, Interrupted, InvalidArgument, WaitTimeout, duration_argument

NON_BLOCKING_TIMEOUT = 5.0  # seconds a read may take on top of the wait Consul was asked for
MIN_INTERVAL = 0.02  # at most one read per 20 ms per loop

T = TypeVar("T")
#: ``fetch(client, index, wait)`` makes one python-consul2 call and returns its
#: ``(X-Consul-Index, data)``; ``index``/``wait`` are ``None`` for a plain read.
Fetch = Callable[[consul.Consul, "int | None", "str | None"], "tuple[Any, Any]"]


def next_index(previous: int, returned: int) -> int:
    """The index to send with the next blocking query, per Consul's rules.

    If the index went backwards (snapshot restore, tombstone reaping...), start again from
    0 (a non-blocking read); an index below 1 is treated as 1 so that a buggy 0 can never
    make every query return at once.
    """
    if returned < previous:
        return 0
    return max(returned, 1)


def request_timeout(wait: float) -> float:
    """The one timeout rule: how long a read asked to wait ``wait`` seconds may take."""
    return wait + wait / 16 + NON_BLOCKING_TIMEOUT


def check_wait(wait: str | float) -> float:
    """A blocking wait in seconds (Consul caps it: so do we, at 60 s here)."""
    seconds = duration_argument("wait", wait)
    if seconds <= 0:
        # Consul reads wait=0s as "the default 5 minutes", never as "do not wait".
        raise InvalidArgument(f"wait must be a positive duration, got {wait!r}")
    return min(seconds, MAX_BLOCKING_WAIT)


class CancelEvent(threading.Event):
    """A :class:`threading.Event` whose :meth:`set` also runs the callbacks registered with
    :meth:`on_set` (at once, in the setting thread): that is how it cuts reads in flight."""

    def __init__(self) -> None:
        super().__init__()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._callbacks_lock = threading.Lock()
        self._next = 0

    def set(self) -> None:
        super().set()
        with self._callbacks_lock:
            callbacks = list(self._callbacks.values())
        for callback in callbacks:
            callback()

    def on_set(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` whenever the event is set (now, if it is set already); returns
        a function that unregisters it."""
        with self._callbacks_lock:
            handle = self._next
            self._next += 1
            self._callbacks[handle] = callback
        if self.is_set():
            callback()

        def remove() -> None:
            with self._callbacks_lock:
                self._callbacks.pop(handle, None)

        return remove


class _CuttableSockets:
    """Remembers every socket one ``requests.Session`` opens so they can be shut down.

    Shutting a socket down from another thread makes a ``recv`` blocked on it return at
    once; that is how a blocking query in flight is cancelled.
    """

    def __init__(self, session: requests.Session) -> None:
        self.lock = threading.Lock()
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
        with self.lock:
            self._sockets.add(sock)
            if self.cutting:
                _shutdown(sock)
        return sock

    def cut(self) -> None:
        """Shut down every socket now, and each new one while ``cutting`` stays True."""
        with self.lock:
            self.cutting = True
            for sock in list(self._sockets):
                _shutdown(sock)


def _shutdown(sock) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class BlockingReader:
    """Blocking reads on a private connection, cancelled by ``cancel``.

    One thread reads at a time.  While ``cancel`` is set, every read raises
    :class:`~.errors.Interrupted` at once, and setting it cuts a read in flight.
    :meth:`close` when done (or use as a context manager).
    """

    def __init__(self, client: consul.Consul, cancel: CancelEvent | None = None) -> None:
        if cancel is not None and not isinstance(cancel, CancelEvent):
            raise InvalidArgument(
                "cancel must be an elect_helpers.watch.CancelEvent (a threading.Event that "
                f"can also cut a read in flight), got {type(cancel).__name__}"
            )
        self._client = clone_client(client)
        self._sockets = _CuttableSockets(self._client.http.session)
        self._cancel = cancel
        self._unhook = cancel.on_set(self._sockets.cut) if cancel is not None else None
        self._last_read = 0.0

    def read(
        self, fetch: Fetch, index: int = 0, wait: str | float | None = None, *, what: str
    ) -> tuple[int, Any]:
        """One read; with ``index`` > 0 and ``wait``, block until the result's index
        passes ``index`` or ``wait`` runs out.  Returns ``(X-Consul-Index, data)``.
        ``what`` ("reading service/web/leader") goes into error messages."""
        seconds = check_wait(wait) if (index > 0 and wait is not None) else 0.0
        cancel = self._cancel
        with self._sockets.lock:
            if cancel is not None and cancel.is_set():
                raise Interrupted(f"{what} was cancelled")
            self._sockets.cutting = False
        self._client.http.timeout = request_timeout(seconds)
        self._last_read = time.monotonic()
        try:
            with consul_call(self._client, what):
                if seconds:
                    raw, data = fetch(self._client, index, seconds_to_go(seconds))
                else:
                    raw, data = fetch(self._client, None, None)
        except ElectHelpersError:
            if cancel is not None and cancel.is_set():
                raise Interrupted(f"{what} was cancelled") from None
            raise
        return int(raw or 0), data

    def wait_until(
        self,
        fetch: Fetch,
        done: Callable[[Any], T | None],
        timeout: float,
        *,
        what: str,
        on_timeout: Callable[[Any], str] | None = None,
    ) -> T:
        """Read until ``done(data)`` returns something other than ``None``; return that.

        Blocking reads (each at most :data:`~.connection.MAX_BLOCKING_WAIT`), paced to
        :data:`MIN_INTERVAL`.  When ``timeout`` seconds pass first, raises
        :class:`~.errors.WaitTimeout` with ``on_timeout(last data)`` as its message (by
        default ``"<what>: not done within <timeout>"``); raises
        :class:`~.errors.Interrupted` when the cancel event is set."""
        deadline = time.monotonic() + timeout
        index = 0
        while True:
            raw_index, data = self.read(
                fetch, index, max(deadline - time.monotonic(), 0.001), what=what
            )
            answer = done(data)
            if answer is not None:
                return answer
            if time.monotonic() >= deadline:
                message = on_timeout(data) if on_timeout else None
                raise WaitTimeout(message or f"{what}: not done within {seconds_to_go(timeout)}")
            index = next_index(index, raw_index)
            self._pace(deadline)

    def _pace(self, deadline: float) -> None:
        pause = min(self._last_read + MIN_INTERVAL, deadline) - time.monotonic()
        if pause > 0:
            if self._cancel is not None:
                self._cancel.wait(pause)
            else:
                time.sleep(pause)

    def close(self) -> None:
        """Close the connections (and stop listening to the cancel event)."""
        if self._unhook is not None:
            self._unhook()
        self._client.http.session.close()

    def __enter__(self) -> BlockingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def kv_fetch(key: str) -> Fetch:
    """A :data:`Fetch` for one KV key: ``data`` is python-consul2's entry dict or None."""

    def fetch(client: consul.Consul, index: int | None, wait: str | None) -> tuple[Any, Any]:
        return client.kv.get(key, index=index, wait=wait)

    return fetch


def health_checks_fetch(service: str) -> Fetch:
    """A :data:`Fetch` for ``/v1/health/checks/<service>``: ``data`` is the check list."""

    def fetch(client: consul.Consul, index: int | None, wait: str | None) -> tuple[Any, Any]:
        return client.health.checks(service, index=index, wait=wait)

    return fetch
