"""Shared helpers for the tests of binder/postBuild, binder/start and start-tutorial.sh."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def live_members(pgid: int) -> list[int]:
    """Return the pids of the processes in group ``pgid`` that are alive (not zombies)."""
    members = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text()
        except OSError:
            continue
        # Fields after the ")" closing the command name: state, ppid, pgrp, ...
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(int(stat_file.parent.name))
    return members


def stop_group(pgid: int, timeout: float = 10.0) -> None:
    """SIGTERM every process of group ``pgid``, SIGKILL what is left after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while live_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not live_members(pgid):
            return


def port_open(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
