"""Errors raised by the dev agent's state machine.

Each error carries the exact text real Consul returns for the same situation. The kind says
what went wrong, not how it is transported: the HTTP layer maps ``InvalidInput`` to 400,
``NotFound`` to 404, ``TooLarge`` to 413 and ``Failure`` (Consul's catch-all RPC/FSM errors)
to 500.  :func:`go_quote` writes user input into those texts the way Go's ``%q`` does.
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


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_quote(text: str) -> str:
    """``text`` as Go's ``strconv.Quote`` (``%q``, ``%#v``) writes it into an error message.

    Quotes and backslashes are escaped, control characters become ``\\xhh``, other
    non-printable characters ``\\uhhhh`` / ``\\Uhhhhhhhh``; printable Unicode stays as is.
    """
    out = ['"']
    for char in text:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif char.isprintable():
            out.append(char)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
