"""Plain-HTTP helpers for the conformance suite.

Everything here talks to an agent *address* with ``requests`` only, so the same tests run
against the embedded dev agent and against a real ``consul agent -dev``.  Nothing in this
module knows which of the two it is talking to.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from elect_helpers.durations import SECOND, parse_duration, seconds_to_go

# Generous client-side timeout for ordinary (non-blocking) requests.
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class AgentUnderTest:
    """What the suite knows about the agent it runs against."""

    url: str  # "http://127.0.0.1:8500", no trailing slash
    node: str  # Config.NodeName from /v1/agent/self
    datacenter: str  # Config.Datacenter
    ttl_min: float  # DebugConfig.SessionTTLMin, in seconds
    embedded: bool  # True when the suite started the embedded dev agent itself

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]


def normalise_address(address: str) -> str:
    """Turn ``host:port`` or ``http://host:port/`` into ``http://host:port``."""
    address = address.strip().rstrip("/")
    if "://" not in address:
        address = "http://" + address
    return address


class Api:
    """A thin ``requests`` wrapper: paths are given with their query string, e.g.
    ``api.get("/v1/kv/a?recurse")``, so presence flags are sent exactly as written."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()

    @property
    def _session(self) -> requests.Session:
        # One connection pool per thread: requests.Session is not thread-safe.
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        *,
        json_body: Any = None,
        timeout: float = REQUEST_TIMEOUT,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send one request; ``json_body`` (if given) is JSON-encoded as the body."""
        if json_body is not None:
            return self._session.request(
                method, self.url + path, json=json_body, timeout=timeout, headers=headers
            )
        return self._session.request(
            method, self.url + path, data=body, timeout=timeout, headers=headers
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, body: bytes | str | None = None, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    # --- small conveniences used all over the suite -------------------------------------

    def kv_entry(self, key: str) -> dict[str, Any] | None:
        """The single KV entry at ``key`` (raw JSON dict), or None on 404."""
        response = self.get("/v1/kv/" + key)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, (response.status_code, response.text)
        entries = response.json()
        assert len(entries) == 1, entries
        return entries[0]

    def kv_put(self, key: str, value: bytes | str = b"", query: str = "") -> Any:
        """PUT a value; returns the decoded JSON answer (True/False); asserts a 200."""
        response = self.put("/v1/kv/" + key + query, value)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def session_info(self, session_id: str) -> dict[str, Any] | None:
        """The session's JSON, or None when the agent no longer knows it."""
        response = self.get("/v1/session/info/" + session_id)
        assert response.status_code == 200, (response.status_code, response.text)
        sessions = response.json()
        return sessions[0] if sessions else None

    def agent_check(self, check_id: str) -> dict[str, Any] | None:
        """The agent-local check ``check_id`` from /v1/agent/checks, or None."""
        response = self.get("/v1/agent/checks")
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json().get(check_id)


def b64(value: bytes | str) -> str:
    """Standard base64 with padding, as Go encodes ``[]byte`` in JSON."""
    if isinstance(value, str):
        value = value.encode()
    return base64.b64encode(value).decode()


def index_of(response: requests.Response) -> int:
    """The response's ``X-Consul-Index`` as an int (asserts that it is present)."""
    header = response.headers.get("X-Consul-Index")
    assert header is not None, f"no X-Consul-Index on {response.request.method} {response.url}"
    assert header.isdigit(), header
    return int(header)


def wait_for(
    probe: Callable[[], Any], timeout: float, interval: float = 0.02, what: str = "condition"
) -> Any:
    """Call ``probe`` until it returns a truthy value; return it. Fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Observation:
    """One probe result with the wall-clock window in which the agent answered it."""

    start: float
    end: float
    value: Any


@dataclass
class Probe:
    """Polls a yes/no question about the agent and keeps every answer with its timing.

    ``start``/``end`` are ``time.monotonic()`` values around each request, so a test can
    bound *when* the answer changed without trusting any single sleep.
    """

    question: Callable[[], bool]
    observations: list[Observation] = field(default_factory=list)

    def ask(self) -> bool:
        start = time.monotonic()
        value = self.question()
        self.observations.append(Observation(start, time.monotonic(), value))
        return value

    def until_false(self, deadline: float, interval: float = 0.02) -> None:
        """Ask repeatedly until the answer is False or ``deadline`` (monotonic) passes."""
        while self.ask() and time.monotonic() < deadline:
            time.sleep(interval)

    def until_true(self, deadline: float, interval: float = 0.02) -> None:
        """Ask repeatedly until the answer is True or ``deadline`` (monotonic) passes."""
        while not self.ask() and time.monotonic() < deadline:
            time.sleep(interval)

    def last_start_with(self, value: bool) -> float | None:
        starts = [o.start for o in self.observations if bool(o.value) is value]
        return max(starts) if starts else None

    def first_end_with(self, value: bool) -> float | None:
        ends = [o.end for o in self.observations if bool(o.value) is value]
        return min(ends) if ends else None

    def first_start_with(self, value: bool) -> float | None:
        starts = [o.start for o in self.observations if bool(o.value) is value]
        return min(starts) if starts else None


@dataclass(frozen=True)
class Timing:
    """Durations for the timer tests, scaled to the agent's ``session_ttl_min``.

    On the embedded agent (minimum 100ms) the session TTL is 0.5s; on a real agent started
    with ``session_ttl_min="1s"`` it is 1s.  The margins absorb scheduling delays on a busy
    machine yet stay far below the error they must catch (an agent that expires at 1xTTL,
    or that sets no lock-delay at all).
    """

    ttl: float  # session TTL in seconds
    lock_delay: float  # lock-delay in seconds (lock-delay has no agent minimum)

    @classmethod
    def for_agent(cls, ttl_min: float) -> Timing:
        return cls(ttl=max(ttl_min, 0.5), lock_delay=0.8)

    @property
    def ttl_go(self) -> str:
        return seconds_to_go(self.ttl)

    @property
    def lock_delay_go(self) -> str:
        return seconds_to_go(self.lock_delay)

    @property
    def alive_until(self) -> float:
        """A session must still exist this long after creation or renewal: clearly past
        1xTTL, so an agent using the TTL itself as the timer fails."""
        return 1.3 * self.ttl

    @property
    def gone_by(self) -> float:
        """A session must be gone this long after creation or renewal: 2xTTL plus margin."""
        return 2 * self.ttl + max(0.75, 0.5 * self.ttl)

    @property
    def lock_delay_margin(self) -> float:
        """How late after the lock-delay an acquire may first succeed."""
        return 1.0


def ttl_min_seconds(debug_value: Any) -> float:
    """Read ``DebugConfig.SessionTTLMin`` (a Go duration string like ``"10s"``)."""
    assert isinstance(debug_value, str), f"DebugConfig.SessionTTLMin is {debug_value!r}"
    return parse_duration(debug_value) / SECOND
