"""A raw HTTP/1.1 client for malformed requests (requests and urllib normalise too much).

:func:`send` writes exactly the bytes it is given (method, target, headers, body), can
declare a ``Content-Length`` that does not match the body, and then half-closes the
socket so a server waiting for the missing bytes sees end-of-file instead of hanging.
It returns the parsed response, or raises :class:`NoAnswer` when the server closed or
stayed silent past the deadline.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
from dataclasses import dataclass


class NoAnswer(AssertionError):
    """The server sent no complete HTTP response within the deadline."""


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float


@dataclass(frozen=True, repr=False)
class RawRequest:
    """One request as bytes on the wire.

    ``declared_length`` is the Content-Length header to send: ``None`` means the body's
    real length (omitted for an empty body), ``-1`` means no header at all.
    ``chunked`` sends the body with ``Transfer-Encoding: chunked`` instead.
    """

    method: bytes
    target: bytes
    body: bytes = b""
    declared_length: int | None = None
    chunked: bool = False
    extra_headers: tuple[tuple[bytes, bytes], ...] = ()

    def encode(self, host: str) -> bytes:
        lines = [self.method + b" " + self.target + b" HTTP/1.1", b"Host: " + host.encode()]
        lines.append(b"Connection: close")
        lines.extend(name + b": " + value for name, value in self.extra_headers)
        payload = self.body
        if self.chunked:
            lines.append(b"Transfer-Encoding: chunked")
            payload = b"%x\r\n" % len(self.body) + self.body + b"\r\n" if self.body else b""
            payload += b"0\r\n\r\n"
        elif self.declared_length is None:
            if self.body:
                lines.append(b"Content-Length: %d" % len(self.body))
        elif self.declared_length >= 0:
            lines.append(b"Content-Length: %d" % self.declared_length)
        return b"\r\n".join(lines) + b"\r\n\r\n" + payload

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 200 else self.body[:200] + b"..."
        return (
            f"RawRequest({self.method!r}, {self.target!r}, {body!r}, "
            f"declared_length={self.declared_length}, chunked={self.chunked})"
        )

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:
        printer.text(repr(self))  # type: ignore[attr-defined]  # hypothesis/IPython printers

    def describe(self) -> str:
        length = len(self.body)
        return (
            f"{self.method!r} {self.target[:200]!r} body={length}B"
            f" declared={self.declared_length} chunked={self.chunked}"
        )


def send(address: str, request: RawRequest, deadline: float = 5.0) -> RawResponse:
    """Send ``request`` to ``host:port`` and read the whole answer within ``deadline`` s."""
    host, port = address.rsplit(":", 1)
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=deadline) as sock:
        # The server may answer (e.g. 413) and close before reading a large body.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request.encode(address))
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock, method=request.method.decode("latin-1"))
        try:
            response.begin()
            body = response.read()
        except TimeoutError as exc:
            raise NoAnswer(f"no answer within {deadline}s to {request.describe()}") from exc
        except (http.client.HTTPException, ConnectionResetError) as exc:
            raise NoAnswer(f"no valid answer ({exc!r}) to {request.describe()}") from exc
        finally:
            response.close()
    headers = {name.lower(): value for name, value in response.getheaders()}
    return RawResponse(response.status, headers, body, time.monotonic() - started)
