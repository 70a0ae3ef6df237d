"""Bad input against the embedded dev agent's HTTP API (hypothesis).

Random methods, paths, query strings and bodies (wrong JSON types for every field of
session create, service register, check register and check update; huge, truncated and
chunked bodies; invalid UTF-8), sent as raw bytes.  For every request: an answer within
the deadline, a status code real Consul could give for that endpoint (see
``fuzz_requests``), no Python traceback in the body, a known text for a KV/session 500,
and afterwards the agent still answers a normal request.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from .fuzz_requests import allowed, known_500, malformed_requests
from .rawhttp import RawRequest, RawResponse, send

DEADLINE = 5.0  # seconds for one answer; blocking queries are capped at 50 ms + jitter


@pytest.fixture(scope="module")
def agent() -> Iterator[object]:
    from elect_helpers.devagent import DevAgent

    with DevAgent(port=0, node_name="fuzznode") as running:
        ttl_check = b'{"ID": "fuzz-ttl", "Name": "fuzz-ttl", "TTL": "1h"}'
        answer = send(running.address, RawRequest(b"PUT", b"/v1/agent/check/register", ttl_check))
        assert answer.status == 200, answer.body
        yield running


def still_serving(address: str) -> RawResponse:
    answer = send(address, RawRequest(b"GET", b"/v1/status/leader"), deadline=DEADLINE)
    assert answer.status == 200 and answer.body.strip() == b'"127.0.0.1:8300"', answer
    return answer


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)
@given(request=malformed_requests())
def test_malformed_requests_get_consul_answers(agent, request: RawRequest) -> None:
    answer = send(agent.address, request, deadline=DEADLINE)
    assert answer.elapsed < DEADLINE, f"slow answer ({answer.elapsed:.1f}s)"
    codes, endpoint = allowed(request.method.decode(), request.target)
    assert answer.status in codes, (
        f"{answer.status} {answer.body[:300]!r} not in {sorted(codes)} for {request.describe()}"
    )
    assert b"Traceback (most recent call last)" not in answer.body, answer.body[:2000]
    if answer.status == 500:
        assert known_500(endpoint, answer.body), (
            f"500 with a text Consul never gives here: {answer.body[:300]!r}"
            f" for {request.describe()}"
        )
    still_serving(agent.address)


def test_agent_survives_the_campaign(agent) -> None:
    """After everything above (module order), normal requests still work end to end."""
    still_serving(agent.address)
    put = send(agent.address, RawRequest(b"PUT", b"/v1/kv/fuzz/after", b"ok"))
    assert (put.status, put.body.strip()) == (200, b"true")
    get = send(agent.address, RawRequest(b"GET", b"/v1/kv/fuzz/after?raw"))
    assert (get.status, get.body) == (200, b"ok")
