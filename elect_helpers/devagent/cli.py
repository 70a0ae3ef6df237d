"""The command line: ``python -m elect_helpers.devagent``, flags mirroring ``consul agent``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import Sequence

from ..durations import DurationError, parse_duration
from .client import ClientAgent, JoinError, client_banner
from .gossip import (
    DEV_PROBE_INTERVAL_NS,
    DEV_PROBE_TIMEOUT_NS,
    DEV_SUSPICION_MULT,
    GossipConfig,
)
from .server import DEFAULT_PORT, DevAgent
from .state import CONSUL_VERSION, default_node_name

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

With -join ADDRESS it starts a client agent of the datacenter of the dev agent whose HTTP API
answers at ADDRESS (server or client): it serves the same API on its own port, runs the
checks registered through it and forwards everything else to the server, which probes it and
marks its node's serfHealth critical when it stops answering. The first agent stays the only
server: a dev datacenter, without Raft. The -gossip-lan-* flags scale the failure detector's
timings as Consul's gossip_lan { probe_interval = ... } block does (set them on the server,
which probes; clients use them for their view of the server).
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


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def gossip_config(args: argparse.Namespace) -> GossipConfig:
    """The gossip timings the flags ask for (argparse error text if they do not fit)."""
    try:
        return GossipConfig(
            probe_interval_ns=parse_duration(args.probe_interval),
            probe_timeout_ns=parse_duration(args.probe_timeout),
            suspicion_mult=args.suspicion_mult,
        )
    except ValueError as error:
        raise SystemExit(f"==> Invalid gossip settings: {error}") from None


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
        "-join",
        "--join",
        dest="join",
        default=None,
        help="start a client agent joining the dev agent whose HTTP API answers here (host:port)",
    )
    parser.add_argument(
        "-serf-lan-port",
        "--serf-lan-port",
        dest="serf_lan_port",
        type=_port,
        default=0,
        help="a client agent's gossip port (default 0: any free port; Consul's is 8301)",
    )
    parser.add_argument(
        "-node-id",
        "--node-id",
        dest="node_id",
        default=None,
        help="the agent's node ID, a UUID (default: a new random one; Consul keeps it in "
        "its data dir, so an agent restarted with the same ID is the same node)",
    )
    parser.add_argument(
        "-advertise-serf-lan",
        "--advertise-serf-lan",
        dest="advertise_serf_lan",
        default=None,
        help="host:port the server should probe this client at (default: its own gossip "
        "port), as Consul's advertise_addrs { serf_lan = ... }; e.g. a proxy's address",
    )
    parser.add_argument(
        "-gossip-lan-probe-interval",
        "--gossip-lan-probe-interval",
        dest="probe_interval",
        type=_duration,
        default=f"{DEV_PROBE_INTERVAL_NS // 1_000_000}ms",
        help="gossip_lan probe_interval (default 100ms as consul agent -dev; a production "
        "agent's is 1s)",
    )
    parser.add_argument(
        "-gossip-lan-probe-timeout",
        "--gossip-lan-probe-timeout",
        dest="probe_timeout",
        type=_duration,
        default=f"{DEV_PROBE_TIMEOUT_NS // 1_000_000}ms",
        help="gossip_lan probe_timeout (default 100ms as -dev; production 500ms)",
    )
    parser.add_argument(
        "-gossip-lan-suspicion-mult",
        "--gossip-lan-suspicion-mult",
        dest="suspicion_mult",
        type=_positive_int,
        default=DEV_SUSPICION_MULT,
        help="gossip_lan suspicion_mult (default 3 as -dev; production 4)",
    )
    parser.add_argument(
        "-enable-script-checks",
        "--enable-script-checks",
        dest="enable_script_checks",
        action="store_true",
        help="run checks with Args (script checks) registered over the HTTP API, as Consul's "
        "enable_script_checks; off by default: anyone who can reach the API could run commands",
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
    gossip = gossip_config(args)
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    if args.join:
        return run_client(args, gossip, stop)
    node_id = None
    if args.node_id is not None:
        try:
            node_id = str(uuid.UUID(args.node_id))
        except ValueError:
            print(f"==> -node-id {args.node_id!r} is not a UUID", file=sys.stderr)
            return 1
    agent = DevAgent(
        port=args.http_port,
        host=args.client,
        session_ttl_min=args.session_ttl_min,
        node_name=args.node,
        datacenter=args.datacenter,
        gossip=gossip,
        enable_script_checks=args.enable_script_checks,
        node_id=node_id,
    )
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


def run_client(args: argparse.Namespace, gossip: GossipConfig, stop: threading.Event) -> int:
    """Run a client agent until SIGINT/SIGTERM or ``PUT /v1/agent/leave``.

    Both signals make it leave gracefully first, as Consul's ``leave_on_terminate`` does by
    default for client agents, so the server deregisters its node at once.
    """
    try:
        client = ClientAgent(
            join=args.join,
            node_name=args.node or default_node_name(),
            port=args.http_port,
            host=args.client,
            serf_port=args.serf_lan_port,
            gossip=gossip,
            advertise_serf=args.advertise_serf_lan,
            session_ttl_min_ns=parse_duration(args.session_ttl_min),
            node_id=args.node_id,
        )
        client.start()
    except (JoinError, ValueError) as error:
        print(f"==> {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"==> Error starting agent: {error.strerror or error}", file=sys.stderr)
        return 1
    print(client_banner(client), flush=True)
    while not stop.wait(0.5):
        if client.left.is_set():
            break
    if not client.left.is_set():
        print("==> Caught signal, leaving the datacenter (leave_on_terminate)", flush=True)
        client.leave()
    client.stop()
    return 0
