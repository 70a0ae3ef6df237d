"""Step 3 of the recipe: the leader lock, a KV key acquired with a session.

Whoever holds ``service/<service>/leader`` (the key's ``Session`` field names their
session) is the leader.  The key's value says who that is, as JSON
``{"node", "address", "session"}``, so anyone can read the leader back.

Consul documents a *sequencer* for a lock: Key, LockIndex and Session.  LockIndex counts
acquisitions of one key, but it starts again at 1 when the key is deleted and created again
(what ``behavior=delete`` does when a leader's session is invalidated).  So
:class:`FencingToken` is ordered by ``sequence``: the raft index of the acquiring write, read
back right after acquiring, which only ever grows.

The key is written with :data:`LOCK_FLAG_VALUE` in its flags, the mark HashiCorp's Go
``api.Lock`` puts on a lock key and checks before contending for one; with it a Go service
using ``api.Lock`` and these helpers can share one leader key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import consul

from .connection import consul_call
from .errors import ConsulError, InvalidArgument, SessionGone

#: The KV flags of a lock key: ``api.LockFlagValue`` of HashiCorp's Go client (api/lock.go).
#: ``api.Lock`` refuses a key with other flags ("Existing key does not match lock use").
LOCK_FLAG_VALUE = 0x2DDCCBC058A50C18


def leader_key(service: str) -> str:
    """The key a service's nodes contend for: ``service/<service>/leader``."""
    if not service or "/" in service:
        raise InvalidArgument(f"service name must be non-empty and without '/', got {service!r}")
    return f"service/{service}/leader"


def leader_value(node: str, address: str, session: str) -> bytes:
    """The JSON value a leader writes into the key."""
    return json.dumps({"node": node, "address": address, "session": session}).encode()


@dataclass(frozen=True, order=False)
class FencingToken:
    """Key/LockIndex/Session of one acquisition, plus a ``sequence`` that orders them.

    ``sequence`` is the raft index of the acquiring write; it grows with every new leader,
    even if the key was deleted in between.  Tokens compare by ``sequence`` (then
    ``lock_index``), and ``int(token)`` is ``sequence``: a fenced resource accepts a write
    only if its token is not lower than the highest it has seen.
    """

    key: str
    lock_index: int
    session: str
    sequence: int = 0

    def _order(self) -> tuple[int, int]:
        return (self.sequence, self.lock_index)

    def __lt__(self, other: FencingToken) -> bool:
        return self._order() < other._order()

    def __le__(self, other: FencingToken) -> bool:
        return self._order() <= other._order()

    def __gt__(self, other: FencingToken) -> bool:
        return self._order() > other._order()

    def __ge__(self, other: FencingToken) -> bool:
        return self._order() >= other._order()

    def __int__(self) -> int:
        return self.sequence

    def __str__(self) -> str:
        return f"{self.key}#{self.sequence} (LockIndex {self.lock_index})"


@dataclass(frozen=True)
class LeaderInfo:
    """Who holds a leader key, as Consul and the key's value say.

    ``session`` is the key's lock holder (authoritative); ``node`` and ``address`` come from
    the JSON value and are empty if someone wrote something else there.
    """

    key: str
    node: str
    address: str
    session: str
    lock_index: int
    modify_index: int
    create_index: int = field(default=0)


def leader_from_entry(key: str, entry: dict | None) -> LeaderInfo | None:
    """Turn a KV entry (as python-consul2 returns it) into :class:`LeaderInfo`, or ``None``
    when the key is missing or nobody holds its lock."""
    if not entry or not entry.get("Session"):
        return None
    node = address = ""
    raw = entry.get("Value")
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        value = None
    if isinstance(value, dict):
        node = str(value.get("node", ""))
        address = str(value.get("address", ""))
    return LeaderInfo(
        key=key,
        node=node,
        address=address,
        session=entry["Session"],
        lock_index=int(entry.get("LockIndex", 0)),
        modify_index=int(entry.get("ModifyIndex", 0)),
        create_index=int(entry.get("CreateIndex", 0)),
    )


def check_key(key: str) -> None:
    """Raise :class:`InvalidArgument` unless ``key`` is a KV key Consul's API can address
    (non-empty, no leading ``/``: python-consul2 refuses that with a bare assert)."""
    if not key or key.startswith("/"):
        raise InvalidArgument(f"key must be non-empty and not start with '/', got {key!r}")


def _check_args(key: str, session_id: str) -> None:
    check_key(key)
    if not session_id:
        raise InvalidArgument("a lock operation needs a session ID, got an empty one")


def try_acquire(
    client: consul.Consul, key: str, session_id: str, *, node: str, address: str = ""
) -> bool:
    """Try once to take the lock on ``key`` with ``session_id``; True if we now hold it.

    False means another session holds it, or the key is in its lock-delay.  Acquiring a key
    this session already holds is True.  Raises :class:`SessionGone` if the session no
    longer exists, except during a lock-delay: Consul checks the delay first and answers
    False without looking at the session.
    """
    _check_args(key, session_id)
    try:
        with consul_call(client, f"acquiring {key}"):
            return bool(
                client.kv.put(
                    key,
                    leader_value(node, address, session_id),
                    acquire=session_id,
                    flags=LOCK_FLAG_VALUE,
                )
            )
    except ConsulError as exc:
        if "invalid session" in exc.body:
            raise SessionGone(
                f"cannot acquire {key}: session {session_id} no longer exists (destroyed, "
                "expired or invalidated by a failing check); create a new session",
                session_id,
            ) from None
        raise


def release(client: consul.Consul, key: str, session_id: str) -> bool:
    """Release the lock if ``session_id`` holds it; True if it did.

    An explicit release starts no lock-delay, so a waiting node can take over at once.
    The key stays, with an empty value (and the lock flags, as ``api.Lock`` leaves it).
    """
    _check_args(key, session_id)
    with consul_call(client, f"releasing {key}"):
        return bool(client.kv.put(key, None, release=session_id, flags=LOCK_FLAG_VALUE))


def read_leader(client: consul.Consul, key: str) -> LeaderInfo | None:
    """Who holds ``key`` right now according to Consul, or ``None`` if nobody does."""
    check_key(key)
    with consul_call(client, f"reading {key}"):
        _, entry = client.kv.get(key)
    return leader_from_entry(key, entry)
