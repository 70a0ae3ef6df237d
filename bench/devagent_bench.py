"""Benchmark of the embedded dev agent (issue 2, "Performance"); prints its figures.

Runs the agent as a child process (``DevAgentProcess``) so client threads do not share its
interpreter, then measures:

1. KV put/get and acquire/release throughput from 1 and 8 client threads, next to the same
   load against a no-op endpoint on the same server stack (``GET /v1/status/leader``, which
   only returns a constant); target: ratio >= 0.5.
2. Blocking-query wake-up latency: 100 watchers block on one key, a PUT wakes them; the time
   from the PUT being sent to each watcher receiving its answer; target: p99 <= 10 ms.
3. 200 concurrent blocking queries held while other requests are served; target: no errors.

Usage: ``.venv/bin/python bench/devagent_bench.py [--seconds 2] [--rounds 20]``.
This is a measurement, not a test: it prints figures and whether each target was met.
"""

from __future__ import annotations

import argparse
import http.client
import json
import selectors
import socket
import statistics
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from elect_helpers.devagent import DevAgentProcess


class Client:
    """One keep-alive HTTP/1.1 connection (cheaper per request than requests.Session)."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, dict, bytes]:
        self.conn.request(method, path, body=body)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, dict(response.getheaders()), data

    def close(self) -> None:
        self.conn.close()


def throughput(
    url: str, threads: int, seconds: float, make_op: Callable[[Client, int], Callable[[], None]]
) -> float:
    """Requests per second with ``threads`` clients each running its op in a loop."""
    counts = [0] * threads
    errors: list[BaseException] = []
    stop = threading.Event()
    start = threading.Barrier(threads + 1)

    def worker(n: int) -> None:
        client = Client(url)
        op = make_op(client, n)
        start.wait()
        try:
            while not stop.is_set():
                op()
                counts[n] += 1
        except BaseException as error:  # report, do not hide
            errors.append(error)
        finally:
            client.close()

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} client errors, first: {errors[0]!r}")
    return sum(counts) / elapsed


def expect(status: int, data: bytes, wanted: bytes | None = None) -> None:
    if status != 200 or (wanted is not None and data.strip() != wanted):
        raise RuntimeError(f"unexpected answer {status} {data[:100]!r}")


def noop_op(client: Client, n: int) -> Callable[[], None]:
    def op() -> None:
        status, _, data = client.call("GET", "/v1/status/leader")
        expect(status, data)

    return op


def kv_put_get_op(client: Client, n: int) -> Callable[[], None]:
    key = f"/v1/kv/bench/putget/{n}"
    state = {"i": 0}

    def op() -> None:
        state["i"] += 1
        if state["i"] % 2:
            status, _, data = client.call("PUT", key, str(state["i"]).encode())
            expect(status, data, b"true")
        else:
            status, _, data = client.call("GET", key)
            expect(status, data)

    return op


def acquire_release_op(client: Client, n: int) -> Callable[[], None]:
    status, _, data = client.call(
        "PUT", "/v1/session/create", b'{"LockDelay": "0s", "Name": "bench"}'
    )
    expect(status, data)
    session = json.loads(data)["ID"]
    key = f"/v1/kv/bench/lock/{session}"
    state = {"i": 0}

    def op() -> None:
        state["i"] += 1
        verb = "acquire" if state["i"] % 2 else "release"
        status, _, data = client.call("PUT", f"{key}?{verb}={session}", b"v")
        expect(status, data, b"true")

    return op


def _raw_connection(url: str, request: bytes) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(request)
    return sock


def _wake_round(url: str, key: str, watchers: int, value: bytes) -> list[float]:
    """One round: ``watchers`` block on ``key``, one PUT wakes them; latencies in ms.

    The watchers are plain sockets read by this one thread through a selector, so the
    figure is the server's wake-up latency, not the cost of 100 Python client threads.
    """
    setup = Client(url)
    _, headers, _ = setup.call("GET", key)
    index = int(headers["X-Consul-Index"])
    host = urlsplit(url).netloc
    request = f"GET {key}?index={index}&wait=30s HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    selector = selectors.DefaultSelector()
    sockets = [_raw_connection(url, request) for _ in range(watchers)]
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    time.sleep(0.3)  # let every request reach the server and block
    sent_at = time.perf_counter()
    setup.call("PUT", key, value)
    latencies = []
    try:
        while len(latencies) < watchers:
            events = selector.select(timeout=10)
            if not events:
                raise RuntimeError(f"only {len(latencies)} of {watchers} watchers woke up")
            for selected, _ in events:
                sock = selected.fileobj
                data = sock.recv(65536)  # type: ignore[union-attr]
                latencies.append((time.perf_counter() - sent_at) * 1000)
                if not data.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"watcher got {data[:40]!r}")
                selector.unregister(sock)
    finally:
        for sock in sockets:
            sock.close()
        setup.close()
    return latencies


def wake_latency(url: str, watchers: int, rounds: int) -> list[float]:
    """Latencies (ms) from a PUT being sent to each blocked watcher receiving the change."""
    key = "/v1/kv/bench/wake"
    Client(url).call("PUT", key, b"0")
    samples: list[float] = []
    for round_no in range(1, rounds + 1):
        samples.extend(_wake_round(url, key, watchers, str(round_no).encode()))
    return samples


def held_blocking_queries(url: str, count: int, seconds: float) -> dict[str, float]:
    """Hold ``count`` blocking queries while measuring ordinary requests; then release them."""
    setup = Client(url)
    indexes = []
    for n in range(count):
        setup.call("PUT", f"/v1/kv/bench/held/{n}", b"0")
        _, headers, _ = setup.call("GET", f"/v1/kv/bench/held/{n}")
        indexes.append(headers["X-Consul-Index"])
    results: list[int | None] = [None] * count
    errors: list[BaseException] = []
    connected = threading.Barrier(count + 1)

    def hold(n: int) -> None:
        client = Client(url, timeout=120)
        try:
            client.conn.connect()
            connected.wait()
            status, _, _ = client.call("GET", f"/v1/kv/bench/held/{n}?index={indexes[n]}&wait=60s")
            results[n] = status
        except BaseException as error:
            errors.append(error)
        finally:
            client.close()

    pool = [threading.Thread(target=hold, args=(n,)) for n in range(count)]
    for t in pool:
        t.start()
    connected.wait()
    time.sleep(0.5)
    early = sum(1 for r in results if r is not None)
    rate = throughput(url, 4, seconds, kv_put_get_op)
    latencies = []
    for _ in range(200):
        began = time.perf_counter()
        status, _, data = setup.call("GET", "/v1/status/leader")
        expect(status, data)
        latencies.append((time.perf_counter() - began) * 1000)
    still_held = sum(1 for r in results if r is None)
    for n in range(count):
        setup.call("PUT", f"/v1/kv/bench/held/{n}", b"1")
    for t in pool:
        t.join()
    setup.close()
    return {
        "held": still_held,
        "returned_early": early,
        "errors": len(errors) + sum(1 for r in results if r != 200),
        "rate": rate,
        "p99_ms": statistics.quantiles(latencies, n=100)[98],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="duration of each throughput run"
    )
    parser.add_argument("--rounds", type=int, default=20, help="wake-up rounds of 100 watchers")
    args = parser.parse_args()
    with DevAgentProcess(port=0, session_ttl_min="1s", log_level="warn") as agent:
        url = agent.url
        assert url is not None
        print(f"embedded dev agent pid {agent.pid} at {url}\n")
        print("1. Throughput (requests/s), and ratio to the no-op endpoint (target >= 0.5)")
        ok = True
        for threads in (1, 8):
            noop = throughput(url, threads, args.seconds, noop_op)
            for name, op in (
                ("KV put/get", kv_put_get_op),
                ("acquire/release", acquire_release_op),
            ):
                rate = throughput(url, threads, args.seconds, op)
                ratio = rate / noop
                ok &= ratio >= 0.5
                print(
                    f"   {threads} thread(s)  {name:16} {rate:7.0f}/s"
                    f"   no-op {noop:7.0f}/s   ratio {ratio:.2f}"
                )
        print(f"   target met: {ok}\n")

        samples = wake_latency(url, 100, args.rounds)
        cuts = statistics.quantiles(samples, n=100)
        print(f"2. Wake-up latency, 100 watchers x {args.rounds} rounds ({len(samples)} samples)")
        print(
            f"   p50 {cuts[49]:.2f} ms   p90 {cuts[89]:.2f} ms   p99 {cuts[98]:.2f} ms"
            f"   max {max(samples):.2f} ms"
        )
        print(f"   target p99 <= 10 ms met: {cuts[98] <= 10}\n")

        held = held_blocking_queries(url, 200, args.seconds)
        print("3. 200 concurrent blocking queries held while serving other requests")
        print(
            f"   still held during the load: {held['held']:.0f}/200"
            f"   returned early: {held['returned_early']:.0f}   errors: {held['errors']:.0f}"
        )
        print(
            f"   meanwhile: KV put/get {held['rate']:.0f}/s from 4 threads,"
            f" status p99 {held['p99_ms']:.2f} ms"
        )
        met = held["errors"] == 0 and held["held"] == 200
        print(f"   target (no errors, all held) met: {met}")


if __name__ == "__main__":
    main()
