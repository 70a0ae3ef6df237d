"""The store's index bookkeeping and change notification (no HTTP)."""

from __future__ import annotations

from elect_helpers.devagent.store import Store, Topic


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


def test_each_changing_write_gets_the_next_index_on_every_table_it_touches() -> None:
    store = Store()
    with store.write() as txn:
        txn.touch("kvs", "a")
        txn.touch("sessions", "s")
    write(store, "kvs", "b")
    assert (store.index, store.table_index("sessions"), store.table_index("kvs")) == (2, 1, 2)


def test_watch_fires_once_on_a_matching_change() -> None:
    store = Store()
    fired: list[str] = []
    store.watch((Topic("kvs", "a/"),), lambda: fired.append("a"))
    write(store, "kvs", "b")
    write(store, "sessions")
    assert fired == []
    write(store, "kvs", "a/x")
    write(store, "kvs", "a/y")
    assert fired == ["a"]
    assert store.watcher_count() == 0


def test_unwatch_and_close() -> None:
    store = Store()
    fired: list[int] = []
    handle = store.watch((Topic("kvs"),), lambda: fired.append(1))
    store.unwatch(handle)
    write(store, "kvs")
    assert fired == []
    store.watch((Topic("kvs"),), lambda: fired.append(2))
    store.close()
    assert fired == [2] and store.closed
    store.watch((Topic("kvs"),), lambda: fired.append(3))
    assert fired == [2, 3]


def test_after_commit_callbacks_run_after_the_write() -> None:
    store = Store()
    seen: list[int] = []
    with store.write() as txn:
        txn.touch("kvs")
        txn.after_commit.append(lambda: seen.append(store.index))
    assert seen == [1]


def test_topic_prefix_matching() -> None:
    topic = Topic("kvs", "foo/")
    assert topic.matches("kvs", "foo/bar")
    assert topic.matches("kvs", "fo")
    assert topic.matches("kvs", None)
    assert not topic.matches("kvs", "bar")
    assert not topic.matches("sessions", "foo/bar")
