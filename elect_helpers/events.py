"""The event log: what each simulated node did, as JSON lines, and the merged timeline.

Every event is one JSON object on one line::

    {"time": 1767000000.123456, "node": "node01", "event": "elected",
     "token": 42, "session": "5c0e...", "detail": "..."}

``time`` is wall-clock seconds (``time.time()``) so that lines written by different
processes on this machine can be merged; ``token`` and ``session`` are ``null`` when they
do not apply.  A line is written with a single ``write()`` on a file opened with
``O_APPEND``, so several processes may share one file without tearing lines, and a
crash (SIGKILL) loses at most the event it was about to write.

Events a node writes (see ``elect_helpers.node``): ``started``, ``registered``,
``check-passing``, ``campaigning``, ``elected``, ``leader-observed``, ``lost``,
``write-accepted``, ``write-rejected``, ``write-error``, ``woke``, ``resigned``,
``deregistered``, ``stopped``, ``error``.  The controller (``elect_helpers.cluster``)
adds ``signal`` events saying which signal it sent to which node, and ``partition`` /
``heal`` when it cuts a node off from its agent and restores the link.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class EventLog:
    """Appends one node's events to a JSON-lines file; safe to share between processes.

    ``path=None`` writes to this process's standard output instead (through a duplicate
    of file descriptor 1, so lines land where the caller redirected stdout).
    """

    def __init__(self, path: str | os.PathLike[str] | None, node: str) -> None:
        self.path = None if path is None else Path(path)
        self.node = node
        self._lock = threading.Lock()
        if self.path is None:
            self._fd = os.dup(1)
        else:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def emit(
        self,
        event: str,
        *,
        token: int | None = None,
        session: str | None = None,
        detail: str = "",
    ) -> dict[str, Any]:
        """Append one event, stamped with the current time; return it as written."""
        record = {
            "time": round(time.time(), 6),
            "node": self.node,
            "event": event,
            "token": token,
            "session": session,
            "detail": detail,
        }
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._fd >= 0:
                os.write(self._fd, line)
        return record

    def close(self) -> None:
        """Close the file; later :meth:`emit` calls are dropped silently."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_events(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read one event file, skipping a torn or foreign line instead of failing.

    A missing file reads as no events.
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    events = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("time"), (int, float)):
            events.append(record)
    return events


def merge_timeline(paths: Iterable[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """All events of all files, ordered by time (ties keep file order)."""
    events = [event for path in paths for event in read_events(path)]
    events.sort(key=lambda event: event["time"])
    return events


def format_event(event: dict[str, Any], start: float | None = None) -> str:
    """One readable line: ``+1.234s node02  elected  token=7  <detail>``.

    With ``start`` the time is printed relative to it, else as a wall-clock time.
    """
    if start is None:
        stamp = time.strftime("%H:%M:%S", time.localtime(event["time"]))
        stamp += f".{int(event['time'] * 1000) % 1000:03d}"
    else:
        stamp = f"{event['time'] - start:+8.3f}s"
    parts = [stamp, f"{event.get('node', '?'):<8}", f"{event.get('event', '?'):<15}"]
    if event.get("token") is not None:
        parts.append(f"token={event['token']}")
    if event.get("detail"):
        parts.append(str(event["detail"]))
    return "  ".join(parts)
