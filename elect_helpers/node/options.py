"""A simulated node's configuration: one checked, immutable object and its command line.

:class:`NodeOptions` is the only list of the node's options.  Its session fields (TTL,
behaviour, lock-delay) are checked by :class:`~elect_helpers.settings.ElectionSettings`,
whose defaults are the article's configuration; the node adds its health-check interval,
whether the session is bound to that check, and where it writes.  ``--tuned`` is a preset:
a session bound to the node's check, a 1 s check interval and no lock-delay (the fencing
token protects the resource instead); options given explicitly still win over it.

``NodeOptions.build(name=..., ttl=..., tuned=True)`` checks a configuration;
``options.to_argv()`` is its command line and ``NodeOptions.from_argv(argv)`` reads one
back, so what :class:`~elect_helpers.cluster.Cluster` starts is exactly what the node runs.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field, fields
from typing import Any

from elect_helpers.durations import seconds_to_go
from elect_helpers.errors import InvalidArgument, InvalidSetting
from elect_helpers.settings import (
    ARTICLE,
    ARTICLE_CHECK_INTERVAL,
    BEHAVIORS,
    CHECK_INTERVAL_MIN,
    ElectionSettings,
    duration_setting,
)

TUNED: dict[str, Any] = {"check_interval": 1.0, "lock_delay": 0.0, "bind_check": True}
CHECK_TIMEOUT_MAX = 2.0  # the HTTP check's timeout: 2 s, or the interval when shorter

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_SESSION_FIELDS = ("ttl", "behavior", "lock_delay")
# Metadata: "help" for --help, "kind" duration/bool/int/str, "set_by" controller for the
# fields Cluster fills in itself (so they are not user options of a Cluster).
_DURATION, _BOOL, _INT, _STR = "duration", "bool", "int", "str"


def _opt(default: Any, kind: str, help: str, *, controller: bool = False) -> Any:
    return field(default=default, metadata={"kind": kind, "help": help, "controller": controller})


@dataclass(frozen=True)
class NodeOptions:
    """A validated node configuration; durations in float seconds."""

    name: str = field(metadata={"kind": _STR, "help": "node name, also its service ID"})
    service: str = _opt("monitoring", _STR, "service name (monitoring)")
    key: str = _opt("", _STR, "leader key (default service/<service>/leader)")
    ttl: float = _opt(ARTICLE.ttl, _DURATION, "session TTL, a Go duration (10s)")
    behavior: str = _opt(ARTICLE.behavior, _STR, "session behaviour: delete or release")
    lock_delay: float = _opt(ARTICLE.lock_delay, _DURATION, "session lock-delay (15s)")
    check_interval: float = _opt(
        ARTICLE_CHECK_INTERVAL, _DURATION, "HTTP health-check interval (10s)"
    )
    bind_check: bool = _opt(False, _BOOL, "bind the session to the node's service check")
    write_interval: float = _opt(0.15, _DURATION, "pause between a leader's writes (150ms)")
    events: str | None = _opt(None, _STR, "append events here (default stdout)", controller=True)
    resource: str | None = _opt(None, _STR, "fenced resource URL to write to", controller=True)
    unfenced_resource: str | None = _opt(
        None, _STR, "unfenced resource URL to write to as well", controller=True
    )
    ready_fd: int | None = _opt(None, _INT, argparse.SUPPRESS, controller=True)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise InvalidSetting(
                "name",
                self.name,
                "use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
            )
        if not self.service or "/" in self.service:
            raise InvalidSetting("service", self.service, "give a service name without '/'")
        if self.key.startswith("/"):
            raise InvalidSetting("key", self.key, "a KV key must not start with '/'")
        session = self.settings  # checks ttl, behavior, lock_delay (and caps lock-delay)
        object.__setattr__(self, "ttl", session.ttl)
        object.__setattr__(self, "lock_delay", session.lock_delay)
        object.__setattr__(self, "key", self.key or f"service/{self.service}/leader")
        interval = duration_setting("check_interval", self.check_interval)
        if interval < CHECK_INTERVAL_MIN:
            raise InvalidSetting(
                "check_interval",
                self.check_interval,
                "must be at least 1s (Consul raises shorter check intervals to 1s)",
            )
        object.__setattr__(self, "check_interval", interval)
        write_interval = duration_setting("write_interval", self.write_interval)
        if write_interval <= 0:
            raise InvalidSetting("write_interval", self.write_interval, "must be above 0")
        object.__setattr__(self, "write_interval", write_interval)
        if self.ready_fd is not None and self.ready_fd < 0:
            raise InvalidSetting("ready_fd", self.ready_fd, "must be a file descriptor number")

    # -- what the node derives from them ----------------------------------------------------

    @property
    def settings(self) -> ElectionSettings:
        """The session this node asks for (bound to its own check with ``bind_check``)."""
        return ElectionSettings(
            ttl=self.ttl,
            behavior=self.behavior,
            lock_delay=self.lock_delay,
            service_checks=(self.check_id,) if self.bind_check else (),
        )

    @property
    def check_id(self) -> str:
        """The ID Consul gives the node's service check: ``service:<name>``."""
        return f"service:{self.name}"

    @property
    def check_timeout(self) -> float:
        """The HTTP check's timeout: 2 s, or the interval when that is shorter."""
        return min(CHECK_TIMEOUT_MAX, self.check_interval)

    # -- building, and the command line -----------------------------------------------------

    @classmethod
    def build(cls, *, tuned: bool = False, **given: Any) -> NodeOptions:
        """Article defaults, then the ``tuned`` preset, then ``given``; checked.  Unknown
        names, and values Consul or the node would refuse, raise :class:`InvalidSetting`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise InvalidArgument(
                f"unknown node option(s) {', '.join(unknown)}; use {', '.join(cls.user_options())}"
            )
        chosen = {**(TUNED if tuned else {}), **{k: v for k, v in given.items() if v is not None}}
        return cls(**chosen)

    @classmethod
    def user_options(cls) -> tuple[str, ...]:
        """The options a controller lets its user set (the rest it fills in itself)."""
        names = [f.name for f in fields(cls) if not f.metadata.get("controller")]
        return (*names[1:], "tuned")  # the first field, name, is the node's own

    def to_argv(self) -> list[str]:
        """The node's command line (after ``python -m elect_helpers.node``); every option
        written out, so ``from_argv(to_argv())`` gives back an equal object."""
        argv: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            flag = "--" + f.name.replace("_", "-")
            kind = f.metadata["kind"]
            if kind == _BOOL:
                argv.append(flag if value else f"--no-{flag[2:]}")
            elif value is None:
                continue
            elif kind == _DURATION:
                argv += [flag, seconds_to_go(value)]
            else:
                argv += [flag, str(value)]
        return argv

    @classmethod
    def from_argv(cls, argv: list[str]) -> NodeOptions:
        """Read a command line; raises :class:`InvalidSetting` naming the option."""
        try:
            args = _parser(exit_on_error=False).parse_args(argv)
        except argparse.ArgumentError as exc:
            raise InvalidSetting(
                (exc.argument_name or "option").lstrip("-").replace("-", "_"),
                "",
                exc.message,
            ) from None
        given = {k: v for k, v in vars(args).items() if k != "tuned"}
        return cls.build(tuned=args.tuned, **given)


def _parser(exit_on_error: bool = True) -> argparse.ArgumentParser:
    """The ``python -m elect_helpers.node`` parser, made from :class:`NodeOptions`' fields.

    Every default is ``None`` so that :meth:`NodeOptions.build` can tell an option given
    explicitly (which beats ``--tuned``) from one left out."""
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
    for f in fields(NodeOptions):
        flag = "--" + f.name.replace("_", "-")
        kind, help_text = f.metadata["kind"], f.metadata["help"]
        if kind == _BOOL:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
        elif kind == _INT:
            parser.add_argument(flag, type=int, help=help_text)
        elif f.name == "behavior":
            parser.add_argument(flag, choices=BEHAVIORS, help=help_text)
        else:
            parser.add_argument(flag, required=f.name == "name", help=help_text)
    parser.add_argument(
        "--tuned", action="store_true", help="bound to the check, 1s check interval, lock-delay 0"
    )
    return parser


def parse_options(argv: list[str] | None = None) -> NodeOptions:
    """Parse and check the node's command line; bad values exit 2 with one line."""
    parser = _parser()
    args = parser.parse_args(argv)
    given = {k: v for k, v in vars(args).items() if k != "tuned"}
    try:
        return NodeOptions.build(tuned=args.tuned, **given)
    except InvalidSetting as exc:
        parser.error(exc.as_option())
    except InvalidArgument as exc:
        parser.error(str(exc))
