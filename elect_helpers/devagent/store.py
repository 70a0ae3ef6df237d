"""The raft-like core: one global index, Consul's index table and change notification.

Every write runs in a :class:`WriteTxn` under the store lock.  A transaction that changes
anything consumes exactly one new index (like one raft log entry), stamps it on each index
entry it touched and wakes the blocking queries watching those tables (or key prefixes).
Reads run under the same lock, so they always see a consistent state.

The index entries follow the ``index`` table of Consul's state store
(``agent/consul/state/schema.go :: indexTableSchema``, ``memdb.go :: indexUpdateMaxTxn``):
one entry per table (``kvs``, ``nodes`` …) plus the finer entries some tables keep
(``service.<name>``, ``node.<name>`` …), each holding the last index that wrote it.  An entry
can also be removed again (Consul deletes ``service.<name>`` with the last instance).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Topic:
    """What a blocking query watches: a table, optionally narrowed to a key prefix."""

    table: str
    prefix: str | None = None

    def matches(self, table: str, key: str | None) -> bool:
        """Return whether a change to ``key`` of ``table`` may affect this watch."""
        if table != self.table:
            return False
        if self.prefix is None or key is None:
            return True
        return key.startswith(self.prefix) or self.prefix.startswith(key)


@dataclass
class WriteTxn:
    """One atomic write.  ``index`` is the index the write gets if it changes anything."""

    index: int
    changes: list[tuple[str, str | None]] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    index_ops: list[tuple[str, bool]] = field(default_factory=list)
    log_only: bool = False

    def touch(self, table: str, key: str | None = None) -> None:
        """Record that ``table`` (and ``key`` in it, if given) changed at ``self.index``:
        its index entry moves to ``self.index`` and its watchers wake up."""
        self.changes.append((table, key))
        self.index_ops.append((table, True))

    def bump(self, *entries: str) -> None:
        """Move these index entries to ``self.index`` (``indexUpdateMaxTxn``), waking no one."""
        self.index_ops.extend((entry, True) for entry in entries)

    def drop(self, entry: str) -> None:
        """Remove an index entry (as Consul deletes ``service.<name>`` with its last instance)."""
        self.index_ops.append((entry, False))

    def log_entry(self) -> None:
        """Consume the index even if no table changes: a raft log entry the state store
        does not keep (the bootstrap configuration, the leader's no-op, a barrier)."""
        self.log_only = True


@dataclass
class QueryResult(Generic[T]):
    """What a read returns: the index to report, the data, and what to watch for changes."""

    index: int
    value: T
    topics: tuple[Topic, ...]


class Watch:
    """A registered interest in some topics; ``callback`` runs (under the store lock) once."""

    __slots__ = ("callback", "topics")

    def __init__(self, topics: tuple[Topic, ...], callback: Callable[[], None]) -> None:
        self.topics = topics
        self.callback = callback


class Store:
    """Global index, table indexes, the store lock, and blocking-query wake-ups."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.index = 0
        self._tables: dict[str, int] = {}
        self._watches: set[Watch] = set()
        self._closed = False

    def table_index(self, *entries: str) -> int:
        """``maxIndexTxn``: the highest of these index entries (a missing entry counts as 0)."""
        with self.lock:
            return max((self._tables.get(t, 0) for t in entries), default=0)

    def index_entry(self, entry: str) -> int | None:
        """One index entry's value, or None when the entry does not exist."""
        with self.lock:
            return self._tables.get(entry)

    @contextmanager
    def write(self) -> Iterator[WriteTxn]:
        """Run a write transaction; commit its index and wake watchers if it changed anything.

        Callbacks registered in ``txn.after_commit`` run after the lock is released.
        """
        with self.lock:
            txn = WriteTxn(self.index + 1)
            yield txn
            if txn.index_ops or txn.log_only:
                self.index = txn.index
                for entry, keep in txn.index_ops:
                    if keep:
                        self._tables[entry] = txn.index
                    else:
                        self._tables.pop(entry, None)
                self._notify(txn.changes)
        for callback in txn.after_commit:
            callback()

    def _notify(self, changes: list[tuple[str, str | None]]) -> None:
        fired = [
            w
            for w in self._watches
            if any(topic.matches(t, k) for topic in w.topics for t, k in changes)
        ]
        for watch in fired:
            self._watches.discard(watch)
            watch.callback()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def watch(self, topics: tuple[Topic, ...], callback: Callable[[], None]) -> Watch:
        """Call ``callback`` once, at the next change to any of ``topics`` (or on close).

        Call it with the store lock held, right after the read whose result it guards, so no
        change can slip in between.  The callback runs under the store lock: keep it short.
        """
        with self.lock:
            watch = Watch(topics, callback)
            if self._closed:
                callback()
            else:
                self._watches.add(watch)
            return watch

    def unwatch(self, watch: Watch) -> None:
        """Forget a watch that has not fired."""
        with self.lock:
            self._watches.discard(watch)

    def watcher_count(self) -> int:
        """Return how many blocking queries are currently waiting."""
        with self.lock:
            return len(self._watches)

    def close(self) -> None:
        """Wake every waiting query and make future ones return at once."""
        with self.lock:
            self._closed = True
            watches, self._watches = self._watches, set()
            for watch in watches:
                watch.callback()
