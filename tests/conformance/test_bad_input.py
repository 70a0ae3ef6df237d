"""Bad input: every malformed request gets real Consul's status and text, and the agent keeps
serving afterwards (issue 2 "Bad input"; consul-facts.md sections 1-7).

The table repeats a few cases that have their own fact tests elsewhere on purpose: here the
point is the follow-up request that proves the agent is still healthy.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from .support import AgentUnderTest, Api

NO_SUCH = "11111111-1111-1111-1111-111111111111"
UNKNOWN_CHECK = 'Unknown check ID "{id}". Ensure that the check ID is passed, not the check name.'


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # "{p}" is replaced by the test's key prefix
    body: bytes | None
    status: int
    text: str  # exact body (after stripping a trailing newline) ...
    prefix_only: bool = False  # ... or just its beginning


CASES = {
    # wrong methods and paths [agent/http.go :: wrap, Index]
    "post-kv-405": Case("POST", "/v1/kv/{p}a", b"v", 405, "method POST not allowed"),
    "delete-leader-405": Case(
        "DELETE", "/v1/status/leader", None, 405, "method DELETE not allowed"
    ),
    "unknown-path-404": Case(
        "GET", "/v1/nope", None, 404, "Invalid URL path: not a recognized HTTP API endpoint"
    ),
    # undecodable bodies [agent/session_endpoint.go :: SessionCreate; lib/json.go :: DecodeJSON]
    "session-bad-json-400": Case(
        "PUT", "/v1/session/create", b"{", 400, "Request decode failed:", True
    ),
    "session-array-body-400": Case(
        "PUT", "/v1/session/create", b"[1,2]", 400, "Request decode failed:", True
    ),
    "session-lockdelay-no-unit-400": Case(
        "PUT",
        "/v1/session/create",
        b'{"LockDelay":"15"}',
        400,
        'Request decode failed: time: missing unit in duration "15"',
    ),
    "service-unknown-field-400": Case(
        "PUT",
        "/v1/agent/service/register",
        b'{"Name":"x","Bogus":1}',
        400,
        'Request decode failed: json: unknown field "Bogus"',
    ),
    "service-wrong-type-400": Case(
        "PUT", "/v1/agent/service/register", b'{"Name":5}', 400, "Request decode failed:", True
    ),
    "service-empty-body-400": Case(
        "PUT", "/v1/agent/service/register", b"", 400, "Request decode failed: EOF"
    ),
    "check-bad-json-400": Case(
        "PUT", "/v1/agent/check/register", b"not json", 400, "Request decode failed:", True
    ),
    "check-unknown-field-400": Case(
        "PUT",
        "/v1/agent/check/register",
        b'{"Name":"x","TTL":"10s","Bogus":1}',
        400,
        'Request decode failed: json: unknown field "Bogus"',
    ),
    "check-update-bad-json-400": Case(
        "PUT", "/v1/agent/check/update/x", b'{"Status":', 400, "Request decode failed:", True
    ),
    # bad durations and numbers [Session.Apply; parseWait; KVSPut]
    "session-ttl-abc-500": Case(
        "PUT", "/v1/session/create", b'{"TTL":"abc"}', 500, "Session TTL 'abc' invalid:", True
    ),
    "kv-wait-abc-400": Case("GET", "/v1/kv/{p}a?index=1&wait=abc", None, 400, "Invalid wait time"),
    "kv-wait-no-unit-400": Case(
        "GET", "/v1/kv/{p}a?index=1&wait=5", None, 400, "Invalid wait time"
    ),
    "kv-index-abc-400": Case("GET", "/v1/kv/{p}a?index=abc", None, 400, "Invalid index"),
    "kv-index-negative-400": Case("GET", "/v1/kv/{p}a?index=-5", None, 400, "Invalid index"),
    "kv-flags-abc-500": Case(
        "PUT",
        "/v1/kv/{p}a?flags=abc",
        b"v",
        500,
        'strconv.ParseUint: parsing "abc": invalid syntax',
    ),
    "kv-cas-negative-500": Case(
        "PUT", "/v1/kv/{p}a?cas=-1", b"v", 500, 'strconv.ParseUint: parsing "-1": invalid syntax'
    ),
    "kv-conflicting-flags-400": Case(
        "PUT", "/v1/kv/{p}a?cas=0&release=x", b"v", 400, "Conflicting flags:", True
    ),
    "kv-stale-consistent-400": Case(
        "GET",
        "/v1/kv/{p}a?stale&consistent",
        None,
        400,
        "Cannot specify ?stale with ?consistent, conflicting semantics.",
    ),
    "health-passing-xyz-400": Case(
        "GET", "/v1/health/service/x?passing=xyz", None, 400, "Invalid value for ?passing"
    ),
    # oversized body [KVSPut; kv_max_value_size]
    "kv-too-large-413": Case(
        "PUT",
        "/v1/kv/{p}big",
        b"x" * (512 * 1024 + 1),
        413,
        "Request body(524289 bytes) too large, max size: 524288 bytes.",
        True,
    ),
    # invalid sessions [kvsLockTxn; KVS.Apply; SessionRenew]
    "kv-acquire-unknown-session-500": Case(
        "PUT",
        f"/v1/kv/{{p}}a?acquire={NO_SUCH}",
        b"v",
        500,
        f'raft apply failed: invalid session "{NO_SUCH}"',
    ),
    "kv-acquire-empty-session-500": Case(
        "PUT", "/v1/kv/{p}a?acquire=", b"v", 500, "raft apply failed: missing session"
    ),
    "session-renew-unknown-404": Case(
        "PUT", f"/v1/session/renew/{NO_SUCH}", None, 404, f"Session id '{NO_SUCH}' not found"
    ),
    "session-bad-behavior-500": Case(
        "PUT",
        "/v1/session/create",
        b'{"Behavior":"sometimes"}',
        500,
        "Invalid Behavior setting 'sometimes'",
    ),
    # missing names [handlers' own checks]
    "kv-missing-key-400": Case("PUT", "/v1/kv/", b"v", 400, "Missing key name"),
    "service-missing-name-400": Case(
        "PUT", "/v1/agent/service/register", b'{"Port":1}', 400, "Missing service name"
    ),
    "check-missing-name-400": Case(
        "PUT", "/v1/agent/check/register", b'{"TTL":"10s"}', 400, "Missing check name"
    ),
    "session-info-missing-400": Case("GET", "/v1/session/info/", None, 400, "Missing session"),
    "session-node-missing-400": Case("GET", "/v1/session/node/", None, 400, "Missing node name"),
    "health-service-missing-400": Case(
        "GET", "/v1/health/service/", None, 400, "Missing service name"
    ),
    # unknown checks and services [agent/acl.go :: vetCheckUpdate/vetServiceUpdate]
    "check-pass-unknown-404": Case(
        "PUT", "/v1/agent/check/pass/nope-x", None, 404, UNKNOWN_CHECK.format(id="nope-x")
    ),
    "check-fail-unknown-404": Case(
        "PUT", "/v1/agent/check/fail/nope-x", None, 404, UNKNOWN_CHECK.format(id="nope-x")
    ),
    "check-deregister-unknown-404": Case(
        "PUT", "/v1/agent/check/deregister/nope-x", None, 404, UNKNOWN_CHECK.format(id="nope-x")
    ),
    "service-deregister-unknown-404": Case(
        "PUT",
        "/v1/agent/service/deregister/nope-x",
        None,
        404,
        'Unknown service ID "nope-x". Ensure that the service ID is passed, not the service name.',
    ),
    "check-unknown-service-404": Case(
        "PUT",
        "/v1/agent/check/register",
        b'{"Name":"c-x","TTL":"10s","ServiceID":"nope-x"}',
        404,
        'ServiceID "nope-x" does not exist',
    ),
    "check-bad-status-400": Case(
        "PUT",
        "/v1/agent/check/register",
        b'{"Name":"c-y","TTL":"10s","Status":"great"}',
        400,
        "Bad check status",
    ),
}


def assert_still_serving(api: Api) -> None:
    """An ordinary request right after the bad one is answered promptly and correctly."""
    began = time.monotonic()
    response = api.get("/v1/status/leader", timeout=5)
    assert response.status_code == 200
    assert response.json() == "127.0.0.1:8300"
    assert time.monotonic() - began < 2.0


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_request_gets_consul_answer(api: Api, prefix: str, name: str) -> None:
    """Each malformed request -> the status and text real Consul gives; nothing is stored
    under the test's prefix; the agent then serves a normal request."""
    case = CASES[name]
    response = api.request(case.method, case.path.replace("{p}", prefix), case.body)
    assert response.status_code == case.status, response.text
    if case.prefix_only:
        assert response.text.startswith(case.text), response.text
    else:
        assert response.text.removesuffix("\n") == case.text
    assert response.headers["Content-Type"].startswith("text/plain")
    assert api.get(f"/v1/kv/{prefix}?keys").status_code == 404
    assert_still_serving(api)


def test_negative_session_ttl_is_500(api: Api, agent: AgentUnderTest) -> None:
    """Section 3.2 [Session.Apply: ttl != 0 outside [min, max]]: TTL "-1s" -> 500 "Invalid
    Session TTL '-1000000000', must be between [<min>=24h0m0s]"."""
    from elect_helpers.durations import SECOND, format_duration

    minimum = format_duration(round(agent.ttl_min * SECOND))
    response = api.put("/v1/session/create", json_body={"TTL": "-1s"})
    assert response.status_code == 500
    assert response.text.strip() == (
        f"Invalid Session TTL '-1000000000', must be between [{minimum}=24h0m0s]"
    )
    assert_still_serving(api)


def test_non_printable_path_is_400(api: Api, prefix: str) -> None:
    """Section 1.1 [agent/http.go :: handler (cleanhttp.PrintablePathCheckHandler); issue
    hashicorp/consul#13838]: a path with a non-printable character -> 400 before routing."""
    response = api.get(f"/v1/kv/{prefix}a%01b")
    assert response.status_code == 400
    response = api.put(f"/v1/kv/{prefix}a%01b", b"v")
    assert response.status_code == 400
    assert api.get(f"/v1/kv/{prefix}?keys").status_code == 404
    assert_still_serving(api)


def _raw_exchange(agent: AgentUnderTest, payload: bytes, read: bool = True) -> bytes:
    """Send raw bytes to the agent's HTTP port; return whatever comes back (until close or
    5 s)."""
    parts = urlsplit(agent.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(payload)
        if not read:
            return b""
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


def test_garbage_request_line_is_400(api: Api, agent: AgentUnderTest) -> None:
    """Go net/http (the server under Consul's API) answers a malformed request line with
    'HTTP/1.1 400 Bad Request'; the agent keeps serving."""
    answer = _raw_exchange(agent, b"THIS IS NOT HTTP\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    assert_still_serving(api)


def test_clients_that_vanish_do_not_hurt(api: Api, agent: AgentUnderTest, prefix: str) -> None:
    """A client that connects and says nothing, one that sends half a body and leaves, and
    one that abandons a blocking query: none of them disturbs later requests, and the
    half-sent value is not stored."""
    _raw_exchange(agent, b"", read=False)
    host = urlsplit(agent.url).netloc.encode()
    half_body = (
        b"PUT /v1/kv/" + prefix.encode() + b"half HTTP/1.1\r\nHost: " + host + b"\r\n"
        b"Content-Length: 1000\r\n\r\nonly a little"
    )
    _raw_exchange(agent, half_body, read=False)
    api.kv_put(f"{prefix}watched", b"v")
    index = api.get(f"/v1/kv/{prefix}watched").headers["X-Consul-Index"]
    blocking = (
        f"GET /v1/kv/{prefix}watched?index={index}&wait=30s HTTP/1.1\r\nHost: ".encode()
        + host
        + b"\r\n\r\n"
    )
    _raw_exchange(agent, blocking, read=False)
    assert_still_serving(api)
    assert api.kv_entry(f"{prefix}half") is None
    assert api.kv_put(f"{prefix}watched", b"w") is True
    assert_still_serving(api)


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        # KVSPut copies the body with io.Copy and returns its error unwrapped (a 500).
        ("/v1/kv/{prefix}cut", b"500", b"unexpected EOF"),
        # SessionCreate streams the body into the JSON decoder (a 400 decode failure).
        ("/v1/session/create", b"400", b"Request decode failed: unexpected EOF"),
    ],
)
def test_body_cut_short_before_the_client_half_closes(
    api: Api, agent: AgentUnderTest, prefix: str, path: str, status: bytes, text: bytes
) -> None:
    """A body shorter than its Content-Length, then the client stops sending: Go's reader
    reports io.ErrUnexpectedEOF [agent/kvs_endpoint.go :: KVSPut; agent/session_endpoint.go
    :: SessionCreate]; nothing is stored."""
    host = urlsplit(agent.url).netloc.encode()
    request = (
        b"PUT " + path.format(prefix=prefix).encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n"
        b'Content-Length: 100\r\n\r\n{"Name": '
    )
    answer = _raw_exchange(agent, request)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:80]
    assert answer.rstrip().endswith(text), answer[-80:]
    assert api.kv_entry(f"{prefix}cut") is None
    assert_still_serving(api)
