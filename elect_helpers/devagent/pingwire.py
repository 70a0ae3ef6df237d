"""The gossip port's wire: JSON-line pings and acks over one TCP connection per member.

Consul's agents gossip over UDP with a TCP fallback on their serf LAN port (8301).  The dev
datacenter only needs the failure detector's half of it: the server pings each client agent's
gossip port, the agent acks with its node name and ID.  TCP keeps it reachable through the
playground's per-host proxies, and a stopped (SIGSTOP) agent still has its connection accepted
by the kernel but never acks, so it looks exactly as silent as a dead one.  The prober keeps
its connection open between rounds (a connection per ping cost a thread and a handshake on
both sides, ten times a second per member) and drops it after any missed ack, so a late ack
can never answer a later ping.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("elect_helpers.devagent")

MAX_LINE = 4096
IDLE_TIMEOUT_S = 60.0  # a prober silent this long is gone; its connection is closed


class _PingHandler(socketserver.StreamRequestHandler):
    server: PingListener

    def handle(self) -> None:
        self.connection.settimeout(IDLE_TIMEOUT_S)
        try:
            while line := self.rfile.readline(MAX_LINE):
                ping = json.loads(line)
                if not isinstance(ping, dict) or "Ping" not in ping:
                    return
                ack = self.server.answer(ping)
                self.wfile.write(json.dumps(ack).encode() + b"\n")
                self.wfile.flush()
        except (OSError, ValueError):
            return


class PingListener(socketserver.ThreadingTCPServer):
    """A client agent's gossip port: answers pings with ``answer(ping)``'s ack."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], answer: Callable[[dict[str, Any]], dict]) -> None:
        super().__init__(address, _PingHandler)
        self.answer = answer
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port actually listened on."""
        return self.server_address[1]

    def start(self) -> PingListener:
        """Serve on a daemon thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.5}, name="gossip", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port."""
        self.shutdown()
        self.server_close()


class Pinger:
    """The prober's side of one member's gossip port: one ping at a time, one connection."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self._sock: socket.socket | None = None
        self._buffer = b""

    def ping(self, payload: dict[str, Any], timeout_s: float) -> dict | None:
        """Send one ping and wait up to ``timeout_s`` in total for its ack; None if none came
        (the connection is then dropped)."""
        deadline = time.monotonic() + timeout_s
        try:
            if self._sock is None:
                self._sock = socket.create_connection(self.address, timeout=timeout_s)
                self._buffer = b""
            self._sock.settimeout(max(deadline - time.monotonic(), 0.001))
            self._sock.sendall(json.dumps(payload).encode() + b"\n")
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                self._sock.settimeout(remaining)
                piece = self._sock.recv(MAX_LINE)
                if not piece:
                    raise ConnectionResetError
                self._buffer += piece
            line, self._buffer = self._buffer.split(b"\n", 1)
            with contextlib.suppress(ValueError):
                ack = json.loads(line)
                if isinstance(ack, dict):
                    return ack
            self.close()
            return None
        except OSError:
            self.close()
            return None

    def close(self) -> None:
        """Drop the connection (the next ping opens a new one)."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._buffer = b""
