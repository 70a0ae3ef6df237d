"""The gossip port's wire: one JSON line ping, one JSON line ack, over TCP.

Consul's agents gossip over UDP with a TCP fallback on their serf LAN port (8301).  The dev
datacenter only needs the failure detector's half of it: the server pings each client agent's
gossip port, the agent acks with its node name and ID.  TCP keeps it reachable through the
playground's per-host proxies, and a stopped (SIGSTOP) agent still has its connection accepted
by the kernel but never acks, so it looks exactly as silent as a dead one.
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
READ_TIMEOUT_S = 2.0


class _PingHandler(socketserver.StreamRequestHandler):
    server: PingListener

    def handle(self) -> None:
        self.connection.settimeout(READ_TIMEOUT_S)
        try:
            line = self.rfile.readline(MAX_LINE)
            ping = json.loads(line)
            if not isinstance(ping, dict) or "Ping" not in ping:
                return
            ack = self.server.answer(ping)
            self.wfile.write(json.dumps(ack).encode() + b"\n")
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


def ping(address: tuple[str, int], payload: dict[str, Any], timeout_s: float) -> dict | None:
    """Send one ping and wait up to ``timeout_s`` in total for its ack; None if none came."""
    deadline = time.monotonic() + timeout_s
    try:
        with socket.create_connection(address, timeout=timeout_s) as sock:
            sock.sendall(json.dumps(payload).encode() + b"\n")
            buffer = b""
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                sock.settimeout(remaining)
                piece = sock.recv(MAX_LINE)
                if not piece:
                    return None
                buffer += piece
        with contextlib.suppress(ValueError):
            ack = json.loads(buffer.split(b"\n", 1)[0])
            if isinstance(ack, dict):
                return ack
        return None
    except OSError:
        return None
