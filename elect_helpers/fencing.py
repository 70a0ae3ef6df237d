"""A fenced resource: the thing a leader protects, and why a fencing token matters.

A leader that was paused (GC pause, VM freeze, SIGSTOP) can wake up still believing it
leads and write with its old token after a newer leader has already written.
:class:`FencedStore` rejects such a write because it remembers the highest token it has
seen; its unfenced twin accepts everything and so shows the stale write going through.
:class:`ResourceServer` puts one store of each kind behind a small loopback HTTP server
that node processes write to, and :func:`write_resource` is the client they use.

Wire format: ``POST <url>`` with JSON ``{"token": int, "writer": str, "value": any}``
answers 200 ``{"accepted": true, ...}`` or 409 ``{"accepted": false, ...}``; ``GET <url>``
returns the store's history as a JSON list.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import ResourceError


@dataclass(frozen=True)
class WriteRecord:
    """One write attempt as the store saw it.

    ``highest_before`` is the highest token seen before this write (``None`` for the
    first write); ``stale`` says the token was lower than that, whether or not the store
    accepted it (an unfenced store accepts stale writes).
    """

    time: float
    writer: str
    token: int
    value: Any
    accepted: bool
    stale: bool
    highest_before: int | None


class FencedStore:
    """A value guarded by fencing tokens; thread-safe.

    With ``fenced=True`` a write is accepted only when its token is >= the highest token
    seen so far (equal is fine: the current leader writes many times with one token).
    With ``fenced=False`` every write is accepted, but stale ones are still marked.
    """

    def __init__(self, fenced: bool = True) -> None:
        self.fenced = fenced
        self._lock = threading.Condition()
        self._highest: int | None = None
        self._value: Any = None
        self._history: list[WriteRecord] = []

    def write(self, token: int, value: Any, writer: str = "") -> WriteRecord:
        """Try to write ``value`` under ``token``; return the record of what happened."""
        if isinstance(token, bool) or not isinstance(token, int):
            raise TypeError(f"fencing token must be an int, got {token!r}")
        with self._lock:
            highest = self._highest
            stale = highest is not None and token < highest
            accepted = not (self.fenced and stale)
            if accepted:
                self._value = value
            if highest is None or token > highest:
                self._highest = token
            record = WriteRecord(time.time(), writer, token, value, accepted, stale, highest)
            self._history.append(record)
            self._lock.notify_all()
            return record

    def wait_for(
        self, predicate: Callable[[WriteRecord], bool], timeout: float = 10.0
    ) -> WriteRecord:
        """Block until some write (past or future) satisfies ``predicate``; return the first.

        Raises :class:`TimeoutError` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for record in self._history:
                    if predicate(record):
                        return record
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching write within {timeout:g}s")
                self._lock.wait(remaining)

    @property
    def highest_token(self) -> int | None:
        """The highest token any write has carried, accepted or not."""
        with self._lock:
            return self._highest

    @property
    def value(self) -> Any:
        """The last accepted value."""
        with self._lock:
            return self._value

    def history(self) -> list[WriteRecord]:
        """A copy of every write attempt, oldest first."""
        with self._lock:
            return list(self._history)

    def rejected(self) -> list[WriteRecord]:
        """The write attempts this store refused."""
        return [r for r in self.history() if not r.accepted]

    def stale_accepted(self) -> list[WriteRecord]:
        """Stale writes that went through (only an unfenced store has any)."""
        return [r for r in self.history() if r.accepted and r.stale]


class _Handler(BaseHTTPRequestHandler):
    server: _ResourceHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the stores' histories are the log."""

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _store(self) -> FencedStore | None:
        return self.server.stores.get(self.path.rstrip("/"))

    def do_GET(self) -> None:
        store = self._store()
        if store is None:
            self._reply(404, {"error": f"no store at {self.path}; use /fenced or /unfenced"})
            return
        self._reply(200, [asdict(r) for r in store.history()])

    def do_POST(self) -> None:
        store = self._store()
        if store is None:
            self._reply(404, {"error": f"no store at {self.path}; use /fenced or /unfenced"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            record = store.write(body["token"], body.get("value"), str(body.get("writer", "")))
        except (ValueError, TypeError, KeyError) as exc:
            self._reply(400, {"error": f"bad write: {exc}; send JSON with an int 'token'"})
            return
        self._reply(200 if record.accepted else 409, asdict(record))


class _ResourceHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    stores: dict[str, FencedStore]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A writer killed mid-request is part of the show, not a server error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ResourceServer:
    """A loopback HTTP server holding a fenced and an unfenced store, on its own thread.

    ``fenced_url`` and ``unfenced_url`` are what nodes get as ``--resource`` and
    ``--unfenced-resource``; ``fenced`` and ``unfenced`` are the stores themselves.
    Use as a context manager, or call :meth:`stop`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fenced = FencedStore(fenced=True)
        self.unfenced = FencedStore(fenced=False)
        self._httpd = _ResourceHTTPServer((host, port), _Handler)
        self._httpd.stores = {"/fenced": self.fenced, "/unfenced": self.unfenced}
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="resource-server", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def fenced_url(self) -> str:
        """Where the fenced store takes writes (a node's ``--resource``)."""
        return self.url + "/fenced"

    @property
    def unfenced_url(self) -> str:
        """Where the unfenced store takes writes (a node's ``--unfenced-resource``)."""
        return self.url + "/unfenced"

    def stop(self) -> None:
        """Stop serving and close the socket; idempotent."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()

    def __enter__(self) -> ResourceServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class WriteOutcome:
    """What a node learns from one write: accepted or not, and the store's verdict."""

    accepted: bool
    stale: bool
    highest_before: int | None


def write_resource(
    url: str, token: int, writer: str, value: Any = None, timeout: float = 2.0
) -> WriteOutcome:
    """POST one write to a resource URL; raise :class:`ResourceError` if it cannot answer."""
    data = json.dumps({"token": token, "writer": writer, "value": value}).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code != 409:
            raise ResourceError(f"{url} answered {exc.code}: {exc.read()[:200]!r}") from exc
        body = json.loads(exc.read())
    except (OSError, ValueError) as exc:
        raise ResourceError(f"cannot write to {url}: {exc}") from exc
    return WriteOutcome(bool(body["accepted"]), bool(body["stale"]), body["highest_before"])
