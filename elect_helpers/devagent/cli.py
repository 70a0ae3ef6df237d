"""The command line: ``python -m elect_helpers.devagent``, flags mirroring ``consul agent``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence

from ..durations import DurationError, parse_duration
from .server import DEFAULT_PORT, DevAgent
from .state import CONSUL_VERSION

LOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "err": logging.ERROR,
    "error": logging.ERROR,
}

DESCRIPTION = """\
Embedded Consul-compatible dev agent: a Python stand-in for `consul agent -dev` that serves
Consul's HTTP API (KV, sessions, agent services and checks, health, catalog, status) for this
tutorial. Like `consul agent -dev`, all state lives in memory only: nothing is written to
disk and everything is gone when the agent stops.
"""


class _ConsulFormatter(logging.Formatter):
    """Consul-style log lines: ``2024-01-02T03:04:05.678Z [INFO]  agent: message``."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
        level = {"WARNING": "WARN"}.get(record.levelname, record.levelname)
        line = f"{stamp}.{int(record.msecs):03d}Z [{level}]  agent: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _duration(text: str) -> str:
    try:
        if parse_duration(text) <= 0:
            raise argparse.ArgumentTypeError(f"must be a positive duration, got {text!r}")
    except DurationError as error:
        raise argparse.ArgumentTypeError(
            f"{error} (use a Go duration such as 10s or 250ms)"
        ) from None
    return text


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    """Flags as ``consul agent`` spells them (single dash); double dashes work too."""
    parser = argparse.ArgumentParser(
        prog="python -m elect_helpers.devagent",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-http-port",
        "--http-port",
        dest="http_port",
        type=_port,
        default=DEFAULT_PORT,
        help="HTTP API port (default 8500; 0 picks a free port and prints it)",
    )
    parser.add_argument(
        "-client",
        "--client",
        dest="client",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; anything else is reachable by others)",
    )
    parser.add_argument(
        "-node",
        "--node",
        dest="node",
        default=None,
        help="node name (default: this machine's host name)",
    )
    parser.add_argument(
        "-datacenter",
        "--datacenter",
        dest="datacenter",
        default="dc1",
        help="datacenter name (default dc1)",
    )
    parser.add_argument(
        "-session-ttl-min",
        "--session-ttl-min",
        dest="session_ttl_min",
        type=_duration,
        default="10s",
        help="smallest session TTL accepted, like Consul's session_ttl_min (default 10s)",
    )
    parser.add_argument(
        "-log-level",
        "--log-level",
        dest="log_level",
        default="info",
        choices=sorted(LOG_LEVELS),
        help="log level (default info)",
    )
    return parser


def banner(agent: DevAgent) -> str:
    """The start-up banner, including the ``HTTP address:`` line tools look for."""
    rows = [
        ("Version", f"'{CONSUL_VERSION}' (embedded Python stand-in)"),
        ("Node name", f"'{agent.node_name}'"),
        ("Datacenter", f"'{agent.datacenter}'"),
        ("Server", "true (Bootstrap: false)"),
        ("Client Addr", f"[{agent.host}] (HTTP: {agent.port}, HTTPS: -1, gRPC: -1, DNS: -1)"),
        ("HTTP address", agent.url),
    ]
    lines = ["==> Starting embedded Consul dev agent (in memory only, like `consul agent -dev`)..."]
    lines += [f"{label:>16}: {value}" for label, value in rows]
    lines += ["", "==> Log data will now stream in as it occurs:", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the agent until SIGINT/SIGTERM; return the exit code."""
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_ConsulFormatter())
    root = logging.getLogger("elect_helpers")
    root.addHandler(handler)
    root.setLevel(LOG_LEVELS[args.log_level])
    agent = DevAgent(
        port=args.http_port,
        host=args.client,
        session_ttl_min=args.session_ttl_min,
        node_name=args.node,
        datacenter=args.datacenter,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        agent.start()
    except OSError as error:
        print(f"==> Error starting agent: {error.strerror or error}", file=sys.stderr)
        return 1
    print(banner(agent), flush=True)
    while not stop.wait(0.5):
        pass
    print("==> Caught signal, shutting down the embedded dev agent", flush=True)
    agent.stop()
    return 0
