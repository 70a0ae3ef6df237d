"""The KV table: entries, tombstones and lock-delays, with Consul's state-store semantics.

Mirrors ``agent/consul/state/kvs.go``: plain sets keep ``CreateIndex`` and the lock holder,
identical writes do not move ``ModifyIndex``, acquire/release follow ``kvsLockTxn`` /
``kvsUnlockTxn``, deletes leave tombstones so list indexes never go backwards, and lock-delays
are per-key expiry times checked before an acquire.  Reads must run under the store lock;
writes take the caller's :class:`~.store.WriteTxn`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace

from .store import QueryResult, Store, Topic, WriteTxn
from .timers import Clock

KVS = "kvs"
TOMBSTONES = "tombstones"


@dataclass
class DirEntry:
    """One KV entry (``structs.DirEntry``)."""

    key: str
    value: bytes | None
    flags: int = 0
    session: str = ""
    lock_index: int = 0
    create_index: int = 0
    modify_index: int = 0

    def same_content(self, other: DirEntry) -> bool:
        """Consul's ``DirEntry.Equal``: LockIndex, Key, Flags, Value and Session equal."""
        return (
            self.lock_index == other.lock_index
            and self.key == other.key
            and self.flags == other.flags
            and (self.value or b"") == (other.value or b"")
            and (self.value is None) == (other.value is None)
            and self.session == other.session
        )


class KVTable:
    """KV entries in key order, their tombstones and lock-delays."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._entries: dict[str, DirEntry] = {}
        self._keys: list[str] = []
        self._graveyard: dict[str, int] = {}
        self._lock_delay: dict[str, int] = {}

    # ----- reads (call under the store lock) -------------------------------------------

    def max_index(self) -> int:
        """``kvsMaxIndex``: the highest index of the kvs and tombstones tables."""
        return self._store.table_index(KVS, TOMBSTONES)

    def get(self, key: str) -> QueryResult[DirEntry | None]:
        """One entry; the index is its ModifyIndex, or the table max when missing."""
        entry = self._entries.get(key)
        if entry is None:
            return QueryResult(self.max_index(), None, (Topic(KVS, key), Topic(TOMBSTONES)))
        return QueryResult(entry.modify_index, replace(entry), (Topic(KVS, key),))

    def _prefixed(self, prefix: str) -> list[DirEntry]:
        start = bisect.bisect_left(self._keys, prefix)
        out = []
        for key in self._keys[start:]:
            if not key.startswith(prefix):
                break
            out.append(self._entries[key])
        return out

    def _list_index(self, prefix: str, entries_index: int) -> int:
        if prefix == "":
            return self.max_index()
        graveyard = max((i for k, i in self._graveyard.items() if k.startswith(prefix)), default=0)
        index = max(entries_index, graveyard)
        return index or self.max_index()

    def list(self, prefix: str) -> QueryResult[list[DirEntry]]:
        """Entries whose key starts with ``prefix`` (byte order), with ``kvsListTxn``'s index."""
        entries = [replace(e) for e in self._prefixed(prefix)]
        index = self._list_index(prefix, max((e.modify_index for e in entries), default=0))
        return QueryResult(index, entries, (Topic(KVS, prefix), Topic(TOMBSTONES, prefix)))

    def list_keys(self, prefix: str, separator: str) -> QueryResult[list[str]]:
        """Keys under ``prefix``, cut after the first ``separator`` past it (``KVS.ListKeys``)."""
        keys: list[str] = []
        entries_index = 0
        previous = None
        for entry in self._prefixed(prefix):
            entries_index = max(entries_index, entry.modify_index)
            if separator:
                position = entry.key.find(separator, len(prefix))
                if position >= 0:
                    cut = entry.key[: position + len(separator)]
                    if cut != previous:
                        keys.append(cut)
                        previous = cut
                    continue
            keys.append(entry.key)
        index = self._list_index(prefix, entries_index)
        return QueryResult(index, keys, (Topic(KVS, prefix), Topic(TOMBSTONES, prefix)))

    def held_by(self, session_id: str) -> list[DirEntry]:
        """Entries whose lock holder is ``session_id``.

        Compared case-insensitively, like Consul's UUID ``session`` index on the kvs table:
        an acquire may name the session in upper case, and invalidating the session must
        still find that key.
        """
        wanted = session_id.lower()
        return [e for e in self._entries.values() if e.session.lower() == wanted]

    def lock_delay_active(self, key: str) -> bool:
        """Whether an acquire of ``key`` must be refused because of a lock-delay."""
        expires = self._lock_delay.get(key)
        if expires is None:
            return False
        if expires > self._clock.monotonic_ns():
            return True
        del self._lock_delay[key]
        return False

    # ----- writes ---------------------------------------------------------------------

    def _store_entry(self, txn: WriteTxn, entry: DirEntry) -> None:
        if entry.key not in self._entries:
            bisect.insort(self._keys, entry.key)
        self._entries[entry.key] = entry
        txn.touch(KVS, entry.key)

    def _set(self, txn: WriteTxn, entry: DirEntry, update_session: bool) -> None:
        """``kvsSetTxn``: keep CreateIndex (and Session unless told), skip identical writes."""
        existing = self._entries.get(entry.key)
        entry.create_index = existing.create_index if existing else txn.index
        if not update_session:
            entry.session = existing.session if existing else ""
        if existing is not None and existing.same_content(entry):
            entry.modify_index = existing.modify_index
            return
        entry.modify_index = txn.index
        self._store_entry(txn, entry)

    def set(self, txn: WriteTxn, key: str, value: bytes | None, flags: int) -> bool:
        """A plain PUT: always succeeds; the lock holder (if any) is kept."""
        self._set(txn, DirEntry(key, value, flags), update_session=False)
        return True

    def cas(self, txn: WriteTxn, key: str, value: bytes | None, flags: int, index: int) -> bool:
        """PUT ?cas=index: 0 means "only if missing", N means "only if ModifyIndex == N"."""
        existing = self._entries.get(key)
        if existing is None and index != 0:
            return False
        if existing is not None and existing.modify_index != index:
            return False
        self._set(txn, DirEntry(key, value, flags), update_session=False)
        return True

    def lock(self, txn: WriteTxn, key: str, value: bytes | None, flags: int, session: str) -> bool:
        """``kvsLockTxn`` once the session is known to exist: take or re-take the lock."""
        existing = self._entries.get(key)
        entry = DirEntry(key, value, flags, session=session)
        if existing is not None:
            if existing.session == session:
                entry.lock_index = existing.lock_index
            elif existing.session:
                return False
            else:
                entry.lock_index = existing.lock_index + 1
        else:
            entry.lock_index = 1
        self._set(txn, entry, update_session=True)
        return True

    def unlock(
        self, txn: WriteTxn, key: str, value: bytes | None, flags: int, session: str
    ) -> bool:
        """``kvsUnlockTxn``: only the holder releases; value and flags become the request's."""
        existing = self._entries.get(key)
        if existing is None or existing.session != session:
            return False
        entry = DirEntry(key, value, flags, session="", lock_index=existing.lock_index)
        self._set(txn, entry, update_session=True)
        return True

    def clear_session(self, txn: WriteTxn, key: str) -> None:
        """Drop the lock holder of ``key`` (session invalidated with behavior "release")."""
        existing = self._entries[key]
        self._set(txn, replace(existing, session=""), update_session=True)

    def _delete(self, txn: WriteTxn, key: str) -> None:
        del self._entries[key]
        self._keys.pop(bisect.bisect_left(self._keys, key))
        self._graveyard[key] = txn.index
        txn.touch(KVS, key)
        txn.touch(TOMBSTONES, key)

    def delete(self, txn: WriteTxn, key: str) -> bool:
        """DELETE one key (a tombstone records the index); missing keys are fine."""
        if key in self._entries:
            self._delete(txn, key)
        return True

    def delete_cas(self, txn: WriteTxn, key: str, index: int) -> bool:
        """DELETE ?cas=index; a missing key counts as success (``kvsDeleteCASTxn``)."""
        existing = self._entries.get(key)
        if existing is None:
            return True
        if existing.modify_index != index:
            return False
        self._delete(txn, key)
        return True

    def delete_tree(self, txn: WriteTxn, prefix: str) -> bool:
        """DELETE ?recurse: remove every key under ``prefix``; one tombstone for the prefix."""
        doomed = [e.key for e in self._prefixed(prefix)]
        if not doomed:
            return True
        for key in doomed:
            del self._entries[key]
        start = bisect.bisect_left(self._keys, prefix)
        del self._keys[start : start + len(doomed)]
        self._graveyard[prefix] = txn.index
        txn.touch(KVS, prefix)
        txn.touch(TOMBSTONES, prefix)
        return True

    def set_lock_delay(self, key: str, delay_ns: int) -> None:
        """Refuse acquires of ``key`` for ``delay_ns`` from now (``Delay.SetExpiration``)."""
        self._lock_delay[key] = self._clock.monotonic_ns() + delay_ns
