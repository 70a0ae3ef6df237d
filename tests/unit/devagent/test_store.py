"""The store's index bookkeeping and blocking reads (no HTTP)."""

from __future__ import annotations

import threading
import time

from elect_helpers.devagent.store import QueryResult, Store, Topic


def reader(store: Store, table: str, prefix: str | None = None):  # type: ignore[no-untyped-def]
    def run() -> QueryResult[int]:
        index = store.table_index(table)
        return QueryResult(index, index, (Topic(table, prefix),))

    return run


def write(store: Store, table: str, key: str | None = None) -> None:
    with store.write() as txn:
        txn.touch(table, key)


def test_writes_without_changes_consume_no_index() -> None:
    store = Store()
    with store.write():
        pass
    assert store.index == 0
    write(store, "kvs", "a")
    assert store.index == 1 and store.table_index("kvs") == 1 and store.table_index("x") == 0


def test_non_blocking_read_reports_at_least_one() -> None:
    store = Store()
    assert store.blocking_read(reader(store, "kvs"), 0, 10, time.monotonic).index == 1


def test_blocking_read_wakes_on_a_matching_change() -> None:
    store = Store()
    write(store, "kvs", "a")
    timer = threading.Timer(0.1, write, (store, "kvs", "a/b"))
    timer.start()
    started = time.monotonic()
    result = store.blocking_read(reader(store, "kvs", "a"), 1, 10, time.monotonic)
    assert result.index == 2
    assert time.monotonic() - started < 5
    assert store.watcher_count() == 0


def test_unrelated_changes_do_not_end_the_wait() -> None:
    store = Store()
    write(store, "kvs", "a")
    write(store, "sessions")
    write(store, "kvs", "zzz")
    result = store.blocking_read(reader(store, "sessions"), 2, 0.2, time.monotonic)
    assert result.index == 2


def test_blocking_read_times_out_with_current_data() -> None:
    store = Store()
    write(store, "kvs", "a")
    started = time.monotonic()
    result = store.blocking_read(reader(store, "kvs"), 1, 0.2, time.monotonic)
    assert result.index == 1
    assert time.monotonic() - started >= 0.2
    assert store.watcher_count() == 0


def test_index_above_current_waits_until_it_is_passed_or_times_out() -> None:
    store = Store()
    write(store, "kvs")
    result = store.blocking_read(reader(store, "kvs"), 1000, 0.1, time.monotonic)
    assert result.index == 1


def test_close_releases_waiters() -> None:
    store = Store()
    write(store, "kvs")
    threading.Timer(0.1, store.close).start()
    started = time.monotonic()
    store.blocking_read(reader(store, "kvs"), 1, 30, time.monotonic)
    assert time.monotonic() - started < 5


def test_topic_prefix_matching() -> None:
    topic = Topic("kvs", "foo/")
    assert topic.matches("kvs", "foo/bar")
    assert topic.matches("kvs", "fo")
    assert topic.matches("kvs", None)
    assert not topic.matches("kvs", "bar")
    assert not topic.matches("sessions", "foo/bar")
