"""The requests the election recipe makes, as values, so that any driver can run them.

:class:`~.election.Election` and :class:`~.session.SessionRenewer` are written as
generators: each ``yield`` hands one step (a request to Consul, or a pause) to whoever
drives them and receives its answer, or has the step's error raised at that point.  In a
program the driver sends the requests over HTTP (:func:`drive`, with the executors in
``election`` and ``session``); the interleaving tests run the very same generators
against the dev agent's state machine on a manual clock, and may stop, crash or pause a
node between any two steps (:mod:`elect_helpers.interleavings`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import ElectHelpersError
from .settings import ElectionSettings

T = TypeVar("T")


@dataclass(frozen=True)
class CreateSession:
    """Create a session; answer: its ID."""

    name: str
    settings: ElectionSettings


@dataclass(frozen=True)
class RenewSession:
    """Renew a session; answer: the TTL the agent reports (seconds), or ``None`` if the
    session is gone (404)."""

    session: str


@dataclass(frozen=True)
class DestroySession:
    """Destroy a session (idempotent); answer: ``None``."""

    session: str


@dataclass(frozen=True)
class SessionInfo:
    """Read a session; answer: its dict, or ``None`` if it is gone."""

    session: str


@dataclass(frozen=True)
class Acquire:
    """Try to lock ``key`` with ``session``, writing ``value``; answer: True if held."""

    key: str
    session: str
    node: str
    address: str


@dataclass(frozen=True)
class Release:
    """Release ``key`` if ``session`` holds it (no lock-delay); answer: True if it did."""

    key: str
    session: str


@dataclass(frozen=True)
class ReadKey:
    """Read ``key``; with ``index`` > 0, a blocking read of at most ``wait`` seconds.
    Answer: ``(index, entry or None)``.  May be cut short (raises ``Interrupted``)."""

    key: str
    index: int
    wait: float


@dataclass(frozen=True)
class Pause:
    """Wait ``seconds`` (cut short when the driver is woken); answer: ``None``."""

    seconds: float


Step = CreateSession | RenewSession | DestroySession | SessionInfo | Acquire | Release
Step = Step | ReadKey | Pause
Steps = Generator[Step, Any, T]


def drive(steps: Steps[T], execute: Callable[[Step], Any]) -> T:
    """Run ``steps`` to the end, executing each with ``execute``; helper errors raised by
    ``execute`` are raised inside the generator at the step that caused them."""
    answer: Any = None
    error: ElectHelpersError | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(answer)
        except StopIteration as done:
            return done.value
        try:
            answer, error = execute(step), None
        except ElectHelpersError as exc:
            answer, error = None, exc
