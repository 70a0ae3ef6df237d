"""Bad input against the embedded dev agent's HTTP API (hypothesis).

Random methods, paths, query strings and bodies (wrong JSON types for every field of
session create, service register, check register and check update; huge, truncated and
chunked bodies; invalid UTF-8; number literals out of range), sent as raw bytes.  For
every request: an answer within the deadline, a status code real Consul could give for
that endpoint (see ``fuzz_requests``), no Python traceback in the body, a known text for a
KV/session 500, no thread of the agent dying, and afterwards the agent still answers a
normal request.  At the end its timers must still fire (a short-TTL session expires).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings

from .fuzz_requests import allowed, known_500, malformed_requests
from .rawhttp import RawRequest, RawResponse, send

DEADLINE = 5.0  # seconds for one answer; blocking queries are capped at 50 ms + jitter


@pytest.fixture(scope="module")
def all_crashes() -> Iterator[list[str]]:
    """Uncaught exceptions in any thread (the agent's HTTP, timer and check threads)."""
    crashes: list[str] = []
    previous = threading.excepthook

    def record(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread else "?"
        crashes.append(f"thread {name}: {args.exc_type.__name__}: {args.exc_value}")
        previous(args)

    threading.excepthook = record
    yield crashes
    threading.excepthook = previous


@pytest.fixture
def thread_crashes(all_crashes: list[str]) -> list[str]:
    """The thread crashes since this test started."""
    all_crashes.clear()
    return all_crashes


@pytest.fixture(scope="module")
def agent(all_crashes: list[str]) -> Iterator[object]:
    from elect_helpers.devagent import DevAgent

    with DevAgent(port=0, node_name="fuzznode", session_ttl_min="100ms") as running:
        ttl_check = b'{"ID": "fuzz-ttl", "Name": "fuzz-ttl", "TTL": "1h"}'
        answer = send(running.address, RawRequest(b"PUT", b"/v1/agent/check/register", ttl_check))
        assert answer.status == 200, answer.body
        yield running


def still_serving(address: str) -> RawResponse:
    answer = send(address, RawRequest(b"GET", b"/v1/status/leader"), deadline=DEADLINE)
    assert answer.status == 200 and answer.body.strip() == b'"127.0.0.1:8300"', answer
    return answer


def check_answer(address: str, request: RawRequest, crashes: list[str]) -> RawResponse:
    """Send ``request``; assert a timely Consul-like answer and a still-healthy agent."""
    answer = send(address, request, deadline=DEADLINE)
    assert answer.elapsed < DEADLINE, f"slow answer ({answer.elapsed:.1f}s)"
    codes, endpoint = allowed(request.method.decode(), request.target)
    if currently_in_test_context():
        event(f"{endpoint.pattern if endpoint else 'unknown path'} -> {answer.status}")
    assert answer.status in codes, (
        f"{answer.status} {answer.body[:300]!r} not in {sorted(codes)} for {request.describe()}"
    )
    assert b"Traceback (most recent call last)" not in answer.body, answer.body[:2000]
    if answer.status == 500:
        assert known_500(endpoint, answer.body), (
            f"500 with a text Consul never gives here: {answer.body[:300]!r}"
            f" for {request.describe()}"
        )
    still_serving(address)
    time.sleep(0.01)  # let a thread the request started run into trouble, if it will
    assert not crashes, f"after {request.describe()}: {crashes}"
    return answer


def timers_still_fire(address: str) -> None:
    """A session with a 200 ms TTL must be invalidated within a few seconds."""
    created = send(address, RawRequest(b"PUT", b"/v1/session/create", b'{"TTL": "200ms"}'))
    assert created.status == 200, created
    info = b"/v1/session/info/" + json.loads(created.body)["ID"].encode()
    deadline = time.monotonic() + 5.0
    while send(address, RawRequest(b"GET", info)).body.strip() not in (b"[]", b"null"):
        assert time.monotonic() < deadline, "a 200ms-TTL session outlived 5 s: timers stopped"
        time.sleep(0.1)


#: Number literals that Python's json reads as inf, NaN or huge ints (Go rejects or
#: overflows them), in duration fields: found by this campaign, kept as regressions.
HUGE_NUMBERS = [
    RawRequest(b"PUT", b"/v1/session/create", b'{"LockDelay": 1e400}'),
    RawRequest(b"PUT", b"/v1/session/create", b'{"LockDelay": NaN}'),
    RawRequest(b"PUT", b"/v1/agent/check/register", b'{"Name": "c", "TTL": 18446744073709551616}'),
    RawRequest(b"PUT", b"/v1/agent/check/register", b'{"Name": "c", "TTL": 1e300}'),
    RawRequest(
        b"PUT",
        b"/v1/agent/service/register",
        b'{"Name": "x", "Check": {"Interval": 1e30, "HTTP": "http://127.0.0.1:9/"}}',
    ),
]


@pytest.mark.parametrize("request_", HUGE_NUMBERS, ids=lambda r: r.body.decode()[:40])
def test_huge_numbers_in_bodies(thread_crashes: list[str], request_: RawRequest) -> None:
    from elect_helpers.devagent import DevAgent

    with DevAgent(port=0, session_ttl_min="100ms") as fresh:
        check_answer(fresh.address, request_, thread_crashes)
        timers_still_fire(fresh.address)


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # thread_crashes is cleared once per test
    ],
)
@given(request=malformed_requests())
def test_malformed_requests_get_consul_answers(
    agent, thread_crashes: list[str], request: RawRequest
) -> None:
    check_answer(agent.address, request, thread_crashes)


def test_agent_survives_the_campaign(agent, thread_crashes: list[str]) -> None:
    """After the campaign (module order): no thread died, normal requests work end to
    end, and the timers still fire."""
    assert not thread_crashes
    still_serving(agent.address)
    put = send(agent.address, RawRequest(b"PUT", b"/v1/kv/fuzz/after", b"ok"))
    assert (put.status, put.body.strip()) == (200, b"true")
    get = send(agent.address, RawRequest(b"GET", b"/v1/kv/fuzz/after?raw"))
    assert (get.status, get.body) == (200, b"ok")
    timers_still_fire(agent.address)
