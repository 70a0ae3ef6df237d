"""Fixtures shared by the client-side unit tests: a clean CLI environment, a free port."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

ENV_VARS = ("CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_SSL", "CONSUL_HTTP_SSL_VERIFY")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The monkeypatch fixture, with none of the CONSUL_HTTP_* variables set."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def free_port() -> Callable[[], int]:
    """A function returning a loopback port nothing listens on (at the time of asking)."""
    return _free_port
