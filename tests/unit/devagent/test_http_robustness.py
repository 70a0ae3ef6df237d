"""Over HTTP: malformed requests get Go net/http's 400, bodies are capped, and checks run
in the order Consul's handlers run them."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from elect_helpers.devagent import DevAgent
from elect_helpers.devagent.httpcore import MAX_BODY


@pytest.fixture(scope="module")
def agent() -> Iterator[DevAgent]:
    """One in-process agent on a free port for the whole module."""
    with DevAgent(port=0, node_name="devnode") as running:
        yield running


def exchange(agent: DevAgent, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send one request with ``Connection: close``; return the status and the body."""
    status_line, _, rest = exchange_raw(agent, head, body).partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def exchange_raw(agent: DevAgent, head: bytes, body: bytes = b"") -> bytes:
    """Send one request with ``Connection: close``; return the whole raw answer.

    The request is sent from a thread, so an answer that comes before the whole body was
    taken (a refused upload) is still read; the sender's error after that is expected.
    """
    with socket.create_connection(("127.0.0.1", agent.port), timeout=10) as conn:
        payload = head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1) + body

        def send() -> None:
            with contextlib.suppress(OSError):
                conn.sendall(payload)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        sender.join(timeout=10)
    return data


@pytest.mark.parametrize(
    "head",
    [
        b"GET //[/v1/kv/a HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"PUT /v1/kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n",
    ],
)
def test_unparseable_requests_get_a_plain_400(agent: DevAgent, head: bytes) -> None:
    assert exchange(agent, head) == (400, b"400 Bad Request")
    assert exchange(agent, b"GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200


def test_a_chunked_body_over_the_cap_is_refused(agent: DevAgent) -> None:
    piece = 1024 * 1024
    chunks = b"".join(b"%x\r\n%s\r\n" % (piece, b"x" * piece) for _ in range(MAX_BODY // piece + 1))
    head = b"PUT /v1/kv/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    status, body = exchange(agent, head, chunks + b"0\r\n\r\n")
    assert status == 413
    assert body.startswith(b"Request body too large for the embedded dev agent")
    assert exchange(agent, b"GET /v1/kv/big HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 404


@pytest.mark.parametrize("path", [b"/v1/session/create", b"/v1/agent/service/register"])
def test_json_over_the_cap_is_judged_by_its_first_bytes(agent: DevAgent, path: bytes) -> None:
    # Go's decoder stops at the first syntax error: the agent answers that as Consul would.
    def put(body: bytes) -> tuple[int, bytes]:
        head = b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path, len(body))
        return exchange(agent, head, body)

    broken = b'{"Name": x' + b" " * MAX_BODY
    assert put(broken) == (
        400,
        b"Request decode failed: invalid character 'x' looking for beginning of value",
    )
    # A value still open at the cap: Go would read on, this agent refuses it.
    status, body = put(b'{"Name": "' + b"n" * MAX_BODY + b'"}')
    assert status == 413
    assert body.startswith(b"Request body too large for the embedded dev agent")


def test_a_chunked_body_under_the_cap_is_read(agent: DevAgent) -> None:
    head = b"PUT /v1/kv/small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert exchange(agent, head, b"3\r\nabc\r\n0\r\n\r\n") == (200, b"true")
    status, body = exchange(agent, b"GET /v1/kv/small?raw HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, body) == (200, b"abc")
    exchange(agent, b"DELETE /v1/kv/small HTTP/1.1\r\nHost: x\r\n\r\n")


def test_kv_get_reports_a_missing_key_before_an_unknown_datacenter(agent: DevAgent) -> None:
    # KVSGet writes "Missing key name" itself; only the RPC would miss the datacenter.
    get = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n"
    assert exchange(agent, get % b"/v1/kv/?dc=dc9") == (400, b"Missing key name")
    assert exchange(agent, get % b"/v1/kv/a?dc=dc9") == (500, b"No path to datacenter")
    assert exchange(agent, get % b"/v1/kv/?keys&dc=dc9") == (500, b"No path to datacenter")


def test_health_state_is_not_validated(agent: DevAgent) -> None:
    # checksInStateTxn looks the state up in a lower-cased index; nothing rejects it.
    get = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n"
    assert exchange(agent, get % b"/v1/health/state/bogus") == (200, b"[]")
    status, body = exchange(agent, get % b"/v1/health/state/PASSING")
    assert status == 200
    assert b'"CheckID": "serfHealth"' in body
    assert exchange(agent, get % b"/v1/health/state/ANY") == (200, b"[]")


def test_passing_is_parsed_before_the_query(agent: DevAgent) -> None:
    # 1.20's healthServiceNodes: ?passing is parsed before the RPC, so a bad value beats an
    # unknown datacenter and the 400 carries no meta headers.
    get = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n"
    status, body = exchange(agent, get % b"/v1/health/service/consul?passing=xyz&dc=dc9")
    assert (status, body) == (400, b"Invalid value for ?passing")
    answer = exchange_raw(agent, get % b"/v1/health/service/consul?passing=xyz")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"X-Consul-Index: " not in answer
    status, body = exchange(agent, get % b"/v1/health/service/consul?passing=1&dc=dc9")
    assert (status, body) == (500, b"No path to datacenter")
