"""watch: Consul's blocking-query client rules, change-only yields, prompt stopping."""

from __future__ import annotations

import queue
import socket
import threading
import time

import pytest

from elect_helpers.connection import consul_client
from elect_helpers.errors import AgentUnreachable, InvalidArgument
from elect_helpers.watch import Interrupted, KeyReader, KeyWatcher, next_index, watch_key


def test_next_index_rules() -> None:
    assert next_index(0, 42) == 42
    assert next_index(42, 50) == 50
    assert next_index(50, 42) == 0  # went backwards: reset
    assert next_index(0, 0) == 1  # never 0: that would make every query return at once
    assert next_index(5, 5) == 5


def collect(iterator, out: queue.Queue) -> threading.Thread:
    def run() -> None:
        for item in iterator:
            out.put(item)
        out.put("end")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_yields_current_state_then_each_change(client, key_prefix) -> None:
    key = key_prefix + "k"
    stop = threading.Event()
    items: queue.Queue = queue.Queue()
    thread = collect(watch_key(client, key, wait="30s", stop=stop), items)
    index, entry = items.get(timeout=5)
    assert entry is None and index >= 1
    client.kv.put(key_prefix + "other", b"unrelated")  # moves the index of a missing key
    client.kv.put(key, b"v1")
    index1, entry = items.get(timeout=5)
    assert entry["Value"] == b"v1" and index1 > index
    client.kv.put(key, b"v1")  # idempotent write: no change
    client.kv.put(key_prefix + "other", b"again")
    client.kv.put(key, b"v2")
    _, entry = items.get(timeout=5)
    assert entry["Value"] == b"v2"
    client.kv.delete(key)
    _, entry = items.get(timeout=5)
    assert entry is None
    started = time.monotonic()
    stop.set()
    assert items.get(timeout=5) == "end"
    thread.join(5)
    assert time.monotonic() - started < 5  # well before the 30 s wait runs out
    assert items.empty()


def test_stop_cuts_a_query_in_flight(client, key_prefix) -> None:
    client.kv.put(key_prefix + "k", b"x")
    watcher = KeyWatcher(client, key_prefix + "k", wait="60s")
    items: queue.Queue = queue.Queue()
    collect(watcher, items)
    items.get(timeout=5)  # the initial state; now it blocks for up to 60 s
    time.sleep(0.1)
    watcher.stop()
    assert items.get(timeout=2) == "end"


def test_reader_wake_and_close(client, key_prefix) -> None:
    reader = KeyReader(client)
    index, _ = reader.read(key_prefix + "k")
    reader.wake()  # nothing in flight: the next read returns at once
    with pytest.raises(Interrupted):
        reader.read(key_prefix + "k", index, "30s")
    threading.Timer(0.2, reader.wake).start()
    with pytest.raises(Interrupted):
        reader.read(key_prefix + "k", index, "30s")
    assert reader.read(key_prefix + "k", index, "50ms")[0] == index  # usable after a wake
    reader.close()
    with pytest.raises(Interrupted):
        reader.read(key_prefix + "k")


def test_errors_raise_without_on_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = consul_client(f"127.0.0.1:{sock.getsockname()[1]}")
        with pytest.raises(AgentUnreachable, match="connection refused"):
            next(iter(watch_key(dead, "k")))


def test_errors_back_off_with_on_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = consul_client(f"127.0.0.1:{sock.getsockname()[1]}")
        errors: list[Exception] = []
        stop = threading.Event()
        items: queue.Queue = queue.Queue()
        collect(watch_key(dead, "k", stop=stop, on_error=errors.append), items)
        time.sleep(1.0)
        stop.set()
        assert items.get(timeout=5) == "end"
    # Back-off 0.1, 0.2, 0.4 s...: a handful of attempts in a second, not hundreds.
    assert 2 <= len(errors) <= 6
    assert all(isinstance(e, AgentUnreachable) for e in errors)


def test_bad_arguments(client) -> None:
    with pytest.raises(InvalidArgument, match="wait"):
        KeyWatcher(client, "k", wait="0s")
    with pytest.raises(InvalidArgument, match="wait 'abc' is not a duration"):
        KeyWatcher(client, "k", wait="abc")
    with pytest.raises(InvalidArgument, match="key"):
        KeyWatcher(client, "/k")
