"""The errors the client helpers raise, each with a one-line message that says what to do.

Everything derives from :class:`ElectHelpersError`, so ``except ElectHelpersError`` catches
any failure of these helpers and ``str(err)`` is always a complete, readable sentence.
"""

from __future__ import annotations

from .durations import to_seconds


class ElectHelpersError(Exception):
    """Base class of every error raised by ``elect_helpers``."""


class InvalidArgument(ElectHelpersError, ValueError):
    """An argument the helpers (or Consul) would reject, caught before anything is sent."""


def duration_argument(name: str, value: str | float) -> float:
    """``value`` (a Go duration string or seconds) as float seconds, or an
    :class:`InvalidArgument` naming the argument ``name`` and Go's reason."""
    try:
        return to_seconds(value)
    except ValueError as exc:
        raise InvalidArgument(f"{name} {value!r} is not a duration ({exc})") from None


class InvalidSetting(InvalidArgument):
    """A setting (:class:`~.settings.ElectionSettings`, a node option) outside what Consul
    accepts; ``field`` names it, ``reason`` says what is wrong and what to do."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field} {value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason

    def as_option(self) -> str:
        """The same message as the command line says it: ``--lock-delay 90s: ...``."""
        return f"--{self.field.replace('_', '-')} {self.value}: {self.reason}"


class InvalidTTL(InvalidArgument):
    """A session TTL outside what Consul accepts (between ``session_ttl_min`` and 24h)."""


class AgentUnreachable(ElectHelpersError):
    """No Consul agent answered at the configured address (refused, timed out, wrong port)."""

    def __init__(self, message: str, address: str = "") -> None:
        super().__init__(message)
        self.address = address


class AgentStartFailed(ElectHelpersError):
    """A Consul agent process could not be started; the message includes its output."""


class ConsulError(ElectHelpersError):
    """Consul answered with an error status; ``status`` and ``body`` are its answer."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class SessionGone(ElectHelpersError):
    """The session no longer exists (destroyed, expired or invalidated by a failing check)."""

    def __init__(self, message: str, session_id: str = "") -> None:
        super().__init__(message)
        self.session_id = session_id


class WaitTimeout(ElectHelpersError, TimeoutError):
    """Something waited for did not happen in time (a check, a leader, a step-down).

    The one timeout error of these helpers; also a :class:`TimeoutError`."""


class Interrupted(ElectHelpersError):
    """A blocking read was cancelled by the caller's own event (see :mod:`.watch`)."""


class NodeFailure(ElectHelpersError, RuntimeError):
    """A simulated node cannot run (agent unreachable, TTL refused...); the message says why."""


class ResourceError(ElectHelpersError, RuntimeError):
    """The resource could not be reached or did not understand the write."""


class LockDelayCapped(UserWarning):
    """A warning, not an error: a lock-delay above Consul's 60 s cap.  Consul does not
    refuse it, it applies 60 s; so do the helpers, and they say so."""


class ServiceNotFound(ElectHelpersError):
    """The local agent has no service with that ID."""


class ClusterError(ElectHelpersError):
    """A :class:`~.cluster.Cluster` request that cannot be done; the message says what to do."""


class UnknownNode(ClusterError, KeyError):
    """No node of that name was ever started by this cluster."""

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class NodeNotRunning(ClusterError):
    """The node exists but its process is no longer alive (or not in the needed state)."""


class NodeStartError(ClusterError):
    """A node process exited or hung while starting; the message includes its stderr."""


class ProxyError(ElectHelpersError):
    """A :class:`~.netproxy.LinkProxy` cannot do what was asked (closed, or not answering)."""
