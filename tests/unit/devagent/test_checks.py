"""Check runners: HTTP against a tiny local server, TCP, TTL expiry, and their wiring."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from elect_helpers.devagent.checks import (
    CheckSpec,
    IntervalRunner,
    TTLRunner,
    http_probe,
    tcp_probe,
)
from elect_helpers.devagent.definitions import build_check
from elect_helpers.devagent.errors import NotFound
from elect_helpers.devagent.state import DevState
from elect_helpers.devagent.timers import TimerService

from .support import SECOND


class _Target(BaseHTTPRequestHandler):
    """Answers ``/<code>`` with that status code and body ``body-<code>``."""

    def do_GET(self) -> None:
        self.server.seen_headers = dict(self.headers)  # type: ignore[attr-defined]
        code = int(self.path.strip("/").split("?")[0] or 200)
        body = f"body-{code}".encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def target() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Target)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(server: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        (200, "passing", "OK"),
        (204, "passing", "No Content"),
        (429, "warning", "Too Many Requests"),
        (500, "critical", "Internal Server Error"),
        (404, "critical", "Not Found"),
    ],
)
def test_http_probe_status_and_output(
    target: ThreadingHTTPServer, code: int, status: str, reason: str
) -> None:
    address = url(target, f"/{code}")
    got_status, output = http_probe(CheckSpec(http=address, interval=SECOND))
    assert got_status == status
    body = "" if code == 204 else f"body-{code}"
    assert output == f"HTTP GET {address}: {code} {reason} Output: {body}"
    assert target.seen_headers["User-Agent"] == "Consul Health Check"  # type: ignore[attr-defined]


def test_http_probe_caps_output(target: ThreadingHTTPServer) -> None:
    _, output = http_probe(CheckSpec(http=url(target, "/200"), output_max_size=3))
    assert output.endswith("Output: bod")


def test_http_probe_transport_error_is_critical() -> None:
    port = closed_port()
    status, output = http_probe(CheckSpec(http=f"http://127.0.0.1:{port}/x", interval=SECOND))
    assert status == "critical"
    assert output == (
        f'Get "http://127.0.0.1:{port}/x": dial tcp 127.0.0.1:{port}: connect: connection refused'
    )


def test_tcp_probe(target: ThreadingHTTPServer) -> None:
    address = f"127.0.0.1:{target.server_address[1]}"
    assert tcp_probe(CheckSpec(tcp=address)) == ("passing", f"TCP connect {address}: Success")
    port = closed_port()
    assert tcp_probe(CheckSpec(tcp=f"127.0.0.1:{port}")) == (
        "critical",
        f"dial tcp 127.0.0.1:{port}: connect: connection refused",
    )


def test_interval_runner_reports_each_probe(target: ThreadingHTTPServer) -> None:
    results: list[tuple[str, str]] = []
    done = threading.Event()

    def update(status: str, output: str) -> None:
        results.append((status, output))
        done.set()

    rng = random.Random()
    rng.random = lambda: 0.0  # type: ignore[method-assign]
    runner = IntervalRunner("c", lambda: ("passing", "ok"), SECOND, update, rng)
    runner.start()
    assert done.wait(5)
    runner.stop()
    assert results[0] == ("passing", "ok")


def test_ttl_runner_expires_with_last_output(timers: TimerService) -> None:
    updates: list[tuple[str, str]] = []
    runner = TTLRunner("t", 2 * SECOND, timers, lambda s, o: updates.append((s, o)))
    runner.start()
    timers.advance(2 * SECOND)
    assert updates == [("critical", "TTL expired")]
    runner.set_status("passing", "fine")
    timers.advance(2 * SECOND - 1)
    assert updates[-1] == ("passing", "fine")
    timers.advance(1)
    assert updates[-1] == ("critical", "TTL expired (last output before timeout follows): fine")
    runner.stop()
    runner_count = len(updates)
    timers.advance(10 * SECOND)
    assert len(updates) == runner_count


def test_ttl_runner_truncates_long_notes(timers: TimerService) -> None:
    updates: list[tuple[str, str]] = []
    runner = TTLRunner("t", SECOND, timers, lambda s, o: updates.append((s, o)), output_max_size=4)
    assert runner.set_status("passing", "abcdefgh") == "abcd ... (captured 4 of 8 bytes)"


def test_check_validation_messages() -> None:
    assert CheckSpec().validate() == "TTL must be > 0 for TTL checks"
    assert CheckSpec(http="http://x").validate() == (
        "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks"
    )
    assert CheckSpec(interval=1, ttl=1).validate() == "Interval and TTL cannot both be specified"
    assert CheckSpec(http="http://x", interval=SECOND).type() == "http"
    assert CheckSpec(tcp="x:1", interval=SECOND).type() == "tcp"


def catalog_check(state: DevState, check_id: str):  # type: ignore[no-untyped-def]
    with state.store.lock:
        return state.catalog.check(state.node_name, check_id)


def test_standalone_check_starts_critical_and_keeps_status_on_reregistration(
    state: DevState,
) -> None:
    check, spec = build_check({"Name": "c3", "TTL": 10 * SECOND}, "devnode")
    state.local.add_check(check, spec)
    assert state.local.checks()["c3"].status == "critical"
    state.local.update_ttl("c3", "passing", "ok")
    again, spec = build_check({"Name": "c3", "TTL": 10 * SECOND}, "devnode")
    state.local.add_check(again, spec)
    assert (state.local.checks()["c3"].status, state.local.checks()["c3"].output) == (
        "passing",
        "ok",
    )
    assert catalog_check(state, "c3").status == "passing"


def test_output_only_changes_reach_the_catalog_later(state: DevState, timers: TimerService) -> None:
    check, spec = build_check({"Name": "c", "TTL": 600 * SECOND}, "devnode")
    state.local.add_check(check, spec)
    state.local.update_ttl("c", "passing", "one")
    state.local.update_ttl("c", "passing", "two")
    assert state.local.checks()["c"].output == "two"
    assert catalog_check(state, "c").output == "one"
    timers.advance(450 * SECOND)
    assert catalog_check(state, "c").output == "two"


def test_unknown_check_and_service_texts_are_go_quoted(state: DevState) -> None:
    with pytest.raises(NotFound) as caught:
        state.local.update_ttl('a"b', "passing", "")
    assert caught.value.message.startswith('Unknown check ID "a\\"b". Ensure')
    with pytest.raises(NotFound) as caught:
        state.local.remove_service("x\ty")
    assert caught.value.message.startswith('Unknown service ID "x\\ty". Ensure')


def test_interval_runner_survives_a_failing_update() -> None:
    calls: list[str] = []
    done = threading.Event()

    def update(status: str, output: str) -> None:
        calls.append(status)
        if len(calls) == 1:
            raise RuntimeError("a bug while applying the result")
        done.set()

    rng = random.Random()
    rng.random = lambda: 0.0  # type: ignore[method-assign]
    runner = IntervalRunner("c", lambda: ("passing", "ok"), SECOND, update, rng)
    runner.start()
    assert done.wait(5)
    runner.stop()
    assert calls == ["passing", "passing"]
