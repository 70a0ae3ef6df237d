"""watch: Consul's blocking-query client rules, one timeout rule, cancelling by the caller's
own event (no relay thread), wait_until's WaitTimeout."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from elect_helpers.connection import consul_client
from elect_helpers.errors import AgentUnreachable, Interrupted, InvalidArgument, WaitTimeout
from elect_helpers.watch import (
    BlockingReader,
    CancelEvent,
    kv_fetch,
    next_index,
    request_timeout,
)


def test_next_index_rules() -> None:
    assert next_index(0, 42) == 42
    assert next_index(42, 50) == 50
    assert next_index(50, 42) == 0  # went backwards: reset
    assert next_index(0, 0) == 1  # never 0: that would make every query return at once
    assert next_index(5, 5) == 5


def test_one_timeout_rule_covers_consuls_jitter() -> None:
    assert request_timeout(0) == 5.0
    assert request_timeout(32) == 32 + 2 + 5.0


def test_a_blocking_read_returns_on_change(client, key_prefix) -> None:
    key = key_prefix + "k"
    with BlockingReader(client) as reader:
        index, entry = reader.read(kv_fetch(key), what="reading")
        assert entry is None and index >= 1
        threading.Timer(0.2, lambda: client.kv.put(key, b"v1")).start()
        started = time.monotonic()
        index1, entry = reader.read(kv_fetch(key), index, "30s", what="reading")
        assert entry["Value"] == b"v1" and index1 > index
        assert time.monotonic() - started < 5


def test_the_callers_event_cuts_a_read_in_flight_without_a_relay_thread(client, key_prefix) -> None:
    cancel = CancelEvent()
    reader = BlockingReader(client, cancel=cancel)
    index, _ = reader.read(kv_fetch(key_prefix + "k"), what="reading")
    threads = threading.active_count()
    timer = threading.Timer(0.2, cancel.set)
    timer.start()
    started = time.monotonic()
    with pytest.raises(Interrupted, match="reading k was cancelled"):
        reader.read(kv_fetch(key_prefix + "k"), index, "60s", what="reading k")
    assert time.monotonic() - started < 2
    timer.join()
    assert threading.active_count() <= threads  # the reader started no thread of its own
    with pytest.raises(Interrupted):  # while the event is set, reads refuse at once
        reader.read(kv_fetch(key_prefix + "k"), what="reading k")
    cancel.clear()
    assert reader.read(kv_fetch(key_prefix + "k"), index, "50ms", what="r")[0] == index
    reader.close()


def test_wait_until_returns_the_answer_or_raises_wait_timeout(client, key_prefix) -> None:
    key = key_prefix + "k"
    threading.Timer(0.2, lambda: client.kv.put(key, b"go")).start()
    with BlockingReader(client) as reader:
        value = reader.wait_until(
            kv_fetch(key), lambda e: e["Value"] if e else None, 5, what="waiting for k"
        )
        assert value == b"go"
        started = time.monotonic()
        with pytest.raises(WaitTimeout, match="k is still go") as info:
            reader.wait_until(
                kv_fetch(key),
                lambda e: None,
                0.3,
                what="waiting",
                on_timeout=lambda e: f"k is still {e['Value'].decode()}",
            )
        assert isinstance(info.value, TimeoutError)
        assert 0.3 <= time.monotonic() - started < 2


def test_errors_are_raised_with_the_address() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = consul_client(f"127.0.0.1:{sock.getsockname()[1]}")
        with BlockingReader(dead) as reader, pytest.raises(AgentUnreachable, match="refused"):
            reader.read(kv_fetch("k"), what="reading k")


def test_bad_arguments(client) -> None:
    with BlockingReader(client) as reader:
        with pytest.raises(InvalidArgument, match="wait"):
            reader.read(kv_fetch("k"), 5, "0s", what="r")
        with pytest.raises(InvalidArgument, match="wait 'abc' is not a duration"):
            reader.read(kv_fetch("k"), 5, "abc", what="r")
    with pytest.raises(InvalidArgument, match="CancelEvent"):
        BlockingReader(client, cancel=threading.Event())  # type: ignore[arg-type]
