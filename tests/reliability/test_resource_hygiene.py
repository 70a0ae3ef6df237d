"""Resource hygiene: start/stop cycles leak no file descriptors, threads or processes.

200 cycles of the in-process dev agent (each one used: requests, and every tenth cycle a
session with a TTL timer, a service with an HTTP check, a keep-alive connection left open
and a blocking query still waiting when the agent stops), then 50 cycles of a node process
through :class:`~elect_helpers.cluster.Cluster` (start, elected, SIGTERM step-down).
Counts are read from ``/proc`` (Linux).
"""

from __future__ import annotations

import gc
import http.client
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")

SETTLE = 5.0  # seconds for threads and sockets to wind down after a stop


@dataclass(frozen=True)
class Usage:
    fds: int
    threads: int
    children: int

    def exceeds(self, base: Usage, fds: int = 2, threads: int = 0) -> bool:
        return (
            self.fds > base.fds + fds
            or self.threads > base.threads + threads
            or self.children > base.children
        )


def children_of(pid: int) -> list[str]:
    """Direct children of ``pid`` (zombies included), as "pid state" strings."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(f"{proc.name} {fields[0]}")
    return found


def usage() -> Usage:
    gc.collect()
    return Usage(
        fds=len(os.listdir("/proc/self/fd")),
        threads=len(os.listdir("/proc/self/task")),
        children=len(children_of(os.getpid())),
    )


def settled(base: Usage, **slack: int) -> Usage:
    """Usage once it is back within ``slack`` of ``base``, or after SETTLE seconds."""
    deadline = time.monotonic() + SETTLE
    while True:
        now = usage()
        if not now.exceeds(base, **slack) or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


def request(address: str, method: str, path: str, body: bytes | None = None) -> bytes:
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        data = response.read()
        assert response.status == 200, (method, path, response.status, data)
        return data
    finally:
        conn.close()


def exercise(agent: object, heavy: bool) -> list[object]:
    """Use the agent; with ``heavy``, leave things running for stop() to clean up.

    Returns what the caller must close after the agent stopped (client-side resources).
    """
    address = agent.address  # type: ignore[attr-defined]
    request(address, "GET", "/v1/status/leader")
    request(address, "PUT", "/v1/kv/hygiene", b"x")
    if not heavy:
        return []
    session = json.loads(request(address, "PUT", "/v1/session/create", b'{"TTL": "10s"}'))
    request(address, "PUT", f"/v1/kv/hygiene?acquire={session['ID']}", b"x")
    service = {"Name": "hyg", "Check": {"HTTP": "http://127.0.0.1:9/", "Interval": "1s"}}
    request(address, "PUT", "/v1/agent/service/register", json.dumps(service).encode())
    host, port = address.rsplit(":", 1)
    keep_alive = http.client.HTTPConnection(host, int(port), timeout=10)
    keep_alive.request("GET", "/v1/agent/self")
    keep_alive.getresponse().read()  # connection stays open
    blocked = http.client.HTTPConnection(host, int(port), timeout=30)
    waiter = threading.Thread(target=_block, args=(blocked,), daemon=True)
    waiter.start()
    time.sleep(0.02)  # let the query reach the agent and wait there
    return [keep_alive, blocked, waiter]


def _block(conn: http.client.HTTPConnection) -> None:
    try:
        conn.request("GET", "/v1/kv/hygiene?index=999999999&wait=20s")
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        pass  # the agent went away: fine, as long as the wait ended


def close_client_side(leftovers: list[object]) -> None:
    for item in leftovers:
        if isinstance(item, threading.Thread):
            item.join(timeout=SETTLE)
            assert not item.is_alive(), "a blocking query outlived the agent's stop()"
        else:
            item.close()  # type: ignore[attr-defined]


def test_in_process_agent_start_stop_200_times() -> None:
    from elect_helpers.devagent import DevAgent

    def cycle(i: int) -> None:
        with DevAgent(port=0, session_ttl_min="100ms") as agent:
            leftovers = exercise(agent, heavy=i % 10 == 0)
        close_client_side(leftovers)

    for i in range(2):  # warm-up: imports, logging handlers, lazily created pools
        cycle(i)
    base = settled(usage())
    for i in range(200):
        cycle(i)
    after = settled(base)
    assert not after.exceeds(base), f"after 200 agent cycles {after} vs before {base}"


def test_node_process_start_stop_50_times(tmp_path: Path) -> None:
    from elect_helpers.cluster import Cluster
    from elect_helpers.devagent import DevAgent

    with DevAgent(port=0, session_ttl_min="100ms") as agent:
        sessions_path = "/v1/session/list"
        with Cluster("hygiene", events_dir=tmp_path, address=agent.address, ttl="1s") as cluster:
            cluster.start("hyg01")
            cluster.wait_for_leader(timeout=20)
            cluster.stop("hyg01")
            base = settled(usage())
            for i in range(50):
                cluster.start("hyg01")
                if i % 10 == 0:
                    assert cluster.wait_for_leader(timeout=20).node == "hyg01"
                status = cluster.stop("hyg01")
                assert status.state == "stopped", status
                assert json.loads(request(agent.address, "GET", sessions_path)) == []
            after = settled(base)
            assert children_of(os.getpid()) == []
            assert not after.exceeds(base), f"after 50 node cycles {after} vs before {base}"
