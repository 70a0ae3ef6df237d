"""Errors raised by the dev agent's state machine.

Each error carries the exact text real Consul returns for the same situation. The kind says
what went wrong, not how it is transported: the HTTP layer maps ``InvalidInput`` to 400,
``NotFound`` to 404, ``TooLarge`` to 413 and ``Failure`` (Consul's catch-all RPC/FSM errors)
to 500.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base class; ``message`` is the response text Consul would send."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(AgentError):
    """The request itself is malformed (Consul answers 400)."""


class NotFound(AgentError):
    """A named service, check or session does not exist (Consul answers 404)."""


class TooLarge(AgentError):
    """The request body exceeds a configured limit (Consul answers 413)."""


class Failure(AgentError):
    """A server-side validation or apply error (Consul answers 500 with the text)."""
