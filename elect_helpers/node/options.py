"""Command-line options of a simulated node, checked before anything touches Consul.

The defaults are the article's configuration: a 10 s session TTL, behaviour ``delete``,
a 15 s lock-delay, a 10 s health-check interval and a session *not* bound to the check.
``--tuned`` switches to a session bound to the node's service check with a 1 s check
interval and no lock-delay (the fencing token protects the resource instead); options
given explicitly still win over ``--tuned``.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

from elect_helpers.durations import SECOND, DurationError, format_duration, parse_duration

ARTICLE_DEFAULTS = {
    "ttl": "10s",
    "behavior": "delete",
    "lock_delay": "15s",
    "check_interval": "10s",
    "bind_check": False,
}
TUNED = {"check_interval": "1s", "lock_delay": "0s", "bind_check": True}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_MAX_TTL_NS = 24 * 3600 * SECOND
_MAX_LOCK_DELAY_NS = 60 * SECOND  # Consul caps lock-delay at 60 s (structs.MaxLockDelay)
_MIN_INTERVAL_NS = SECOND  # Consul raises check intervals below 1 s to 1 s


class OptionError(ValueError):
    """An option value the node cannot run with; the message says what to change."""


@dataclass(frozen=True)
class NodeOptions:
    """A validated node configuration; durations are Go strings as Consul prints them."""

    name: str
    service: str
    key: str
    ttl: str
    behavior: str
    lock_delay: str
    check_interval: str
    bind_check: bool
    events: str | None
    resource: str | None
    unfenced_resource: str | None
    write_interval: str
    ready_fd: int | None

    @property
    def ttl_seconds(self) -> float:
        return parse_duration(self.ttl) / SECOND

    @property
    def check_interval_seconds(self) -> float:
        return parse_duration(self.check_interval) / SECOND

    @property
    def write_interval_seconds(self) -> float:
        return parse_duration(self.write_interval) / SECOND

    @property
    def check_timeout(self) -> str:
        """The HTTP check's timeout: 2 s, or the interval when that is shorter."""
        return format_duration(min(2 * SECOND, parse_duration(self.check_interval)))


def build_parser(exit_on_error: bool = True) -> argparse.ArgumentParser:
    """The ``python -m elect_helpers.node`` argument parser (``exit_on_error=False``: bad
    values raise ``argparse.ArgumentError`` instead of exiting)."""
    parser = argparse.ArgumentParser(
        exit_on_error=exit_on_error,
        prog="python -m elect_helpers.node",
        description=(
            "Run one simulated node: serve /_health, register as a Consul service with an "
            "HTTP check, campaign for the leader key and log events as JSON lines. "
            "The agent address comes from CONSUL_HTTP_ADDR (default 127.0.0.1:8500). "
            "SIGTERM steps down gracefully; SIGKILL is a crash; SIGSTOP/SIGCONT a pause."
        ),
    )
    parser.add_argument("--name", required=True, help="node name, also its service ID")
    parser.add_argument("--service", default="monitoring", help="service name (monitoring)")
    parser.add_argument("--key", help="leader key (default service/<service>/leader)")
    parser.add_argument("--ttl", help="session TTL, a Go duration (10s)")
    parser.add_argument(
        "--behavior", choices=("delete", "release"), help="session behaviour (delete)"
    )
    parser.add_argument("--lock-delay", help="session lock-delay (15s)")
    parser.add_argument("--check-interval", help="HTTP health-check interval (10s)")
    parser.add_argument(
        "--bind-check",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bind the session to the node's service check (default: not bound)",
    )
    parser.add_argument(
        "--tuned",
        action="store_true",
        help="bound to the check, 1s check interval, lock-delay 0",
    )
    parser.add_argument("--events", metavar="FILE", help="append events here (default stdout)")
    parser.add_argument("--resource", metavar="URL", help="fenced resource to write to")
    parser.add_argument(
        "--unfenced-resource", metavar="URL", help="unfenced resource to write to as well"
    )
    parser.add_argument(
        "--write-interval", default="150ms", help="pause between a leader's writes (150ms)"
    )
    parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    return parser


def _duration(option: str, text: str) -> int:
    try:
        return parse_duration(text)
    except DurationError as exc:
        raise OptionError(
            f"{option} {text!r}: {exc}; use a Go duration such as 10s, 1.5s or 500ms"
        ) from None


def options_from_args(args: argparse.Namespace) -> NodeOptions:
    """Resolve defaults (article, ``--tuned``, explicit) and validate; raise OptionError."""
    if not _NAME.match(args.name):
        raise OptionError(
            f"--name {args.name!r}: use 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if not args.service or "/" in args.service:
        raise OptionError(f"--service {args.service!r}: give a service name without '/'")
    chosen = dict(ARTICLE_DEFAULTS)
    if args.tuned:
        chosen.update(TUNED)
    for field in ("ttl", "behavior", "lock_delay", "check_interval", "bind_check"):
        if getattr(args, field) is not None:
            chosen[field] = getattr(args, field)

    ttl = _duration("--ttl", chosen["ttl"])
    if not 0 < ttl <= _MAX_TTL_NS:
        raise OptionError(
            f"--ttl {chosen['ttl']}: must be above 0 and at most 24h (a session without a "
            "TTL never expires when its node crashes)"
        )
    lock_delay = _duration("--lock-delay", chosen["lock_delay"])
    if lock_delay < 0 or lock_delay > _MAX_LOCK_DELAY_NS:
        raise OptionError(
            f"--lock-delay {chosen['lock_delay']}: must be between 0s and 60s "
            "(Consul caps lock-delay at 60s)"
        )
    if 0 < lock_delay < 1000:
        raise OptionError(
            f"--lock-delay {chosen['lock_delay']}: Consul reads a lock-delay below 1µs as "
            "seconds; use 0s or at least 1ms"
        )
    interval = _duration("--check-interval", chosen["check_interval"])
    if interval < _MIN_INTERVAL_NS:
        raise OptionError(
            f"--check-interval {chosen['check_interval']}: must be at least 1s "
            "(Consul raises shorter check intervals to 1s)"
        )
    write_interval = _duration("--write-interval", args.write_interval)
    if write_interval <= 0:
        raise OptionError(f"--write-interval {args.write_interval}: must be above 0")
    if args.ready_fd is not None and args.ready_fd < 0:
        raise OptionError("--ready-fd must be a file descriptor number")
    return NodeOptions(
        name=args.name,
        service=args.service,
        key=args.key or f"service/{args.service}/leader",
        ttl=format_duration(ttl),
        behavior=chosen["behavior"],
        lock_delay=format_duration(lock_delay),
        check_interval=format_duration(interval),
        bind_check=bool(chosen["bind_check"]),
        events=args.events,
        resource=args.resource,
        unfenced_resource=args.unfenced_resource,
        write_interval=format_duration(write_interval),
        ready_fd=args.ready_fd,
    )


def parse_options(argv: list[str] | None = None) -> NodeOptions:
    """Parse and validate a command line; bad values exit with status 2 and one line."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return options_from_args(args)
    except OptionError as exc:
        parser.error(str(exc))
