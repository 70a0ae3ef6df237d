"""The parking lot for blocking queries, driven without sockets."""

from __future__ import annotations

import threading

from elect_helpers.devagent.blocking import Parker, Wire
from elect_helpers.devagent.httpcore import Deferred, Response
from elect_helpers.devagent.store import QueryResult, Store, Topic


def deferred(store: Store, min_index: int, timeout_s: float = 30.0) -> Deferred:
    def run() -> QueryResult[int]:
        index = store.table_index("kvs")
        return QueryResult(index, index, (Topic("kvs"),))

    return Deferred(
        run=run,
        render=lambda r: Response(200, str(r.value).encode()),
        min_index=min_index,
        timeout_s=timeout_s,
        cache_key=("/v1/kv/a", ""),
    )


def park_in_thread(parker: Parker, d: Deferred, sent: list[bytes]) -> threading.Thread:
    wire = Wire(encode=lambda r: r.body, send=sent.append, variant=())
    thread = threading.Thread(target=parker.park, args=(d, wire))
    thread.start()
    return thread


def commit(store: Store) -> None:
    with store.write() as txn:
        txn.touch("kvs", "a")


def test_a_herd_is_answered_after_one_write() -> None:
    store = Store()
    commit(store)
    parker = Parker(store)
    sent: list[bytes] = []
    threads = [park_in_thread(parker, deferred(store, 1), sent) for _ in range(20)]
    while store.watcher_count() < 20:
        threading.Event().wait(0.01)
    assert sent == []
    commit(store)
    for thread in threads:
        thread.join(5)
    assert sent == [b"2"] * 20
    parker.stop()


def test_timeout_answers_with_current_data() -> None:
    store = Store()
    commit(store)
    parker = Parker(store)
    sent: list[bytes] = []
    park_in_thread(parker, deferred(store, 1, timeout_s=0.05), sent).join(5)
    assert sent == [b"1"]
    parker.stop()


def test_a_failing_read_gets_a_500_and_the_parker_keeps_working() -> None:
    store = Store()
    commit(store)
    parker = Parker(store)
    sent: list[bytes] = []
    calls = {"n": 0}
    good = deferred(store, 1)

    def flaky() -> QueryResult[int]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("bug")
        return good.run()

    bad = Deferred(flaky, good.render, 1, 30.0, ("/v1/kv/b", ""))
    first = park_in_thread(parker, bad, sent)
    while store.watcher_count() < 1:
        threading.Event().wait(0.01)
    commit(store)
    first.join(5)
    assert sent == [b"Internal error in the embedded dev agent while answering a blocking query"]
    park_in_thread(parker, deferred(store, 1), sent).join(5)
    assert sent[-1] == b"2"
    parker.stop()


def test_stop_answers_everything_parked() -> None:
    store = Store()
    commit(store)
    parker = Parker(store)
    sent: list[bytes] = []
    thread = park_in_thread(parker, deferred(store, 1), sent)
    while store.watcher_count() < 1:
        threading.Event().wait(0.01)
    store.close()
    parker.stop()
    thread.join(5)
    assert sent == [b"1"]
