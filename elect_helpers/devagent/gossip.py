"""LAN membership as Serf/memberlist decide it: alive, suspect, failed, left.

This is the failure detector's state machine only (no sockets): it is told that a probe of a
member was acknowledged or went unanswered, and at which monotonic time, and says when a
member changes state.  The timings follow hashicorp/memberlist as Consul configures its LAN
pool (``DefaultLANConfig``; Consul's ``gossip_lan`` block overrides them):

* each member is probed once per ``probe_interval``; a probe that gets no ack within the
  interval (direct ping with ``probe_timeout``, then memberlist's indirect pings and TCP
  fallback until the interval ends) makes the member *suspect*;
* a suspect is declared *failed* when its suspicion timer fires.  The timer starts at
  ``max = suspicion_max_timeout_mult x min`` and shrinks towards
  ``min = suspicion_mult x max(1, log10(n)) x probe_interval`` as independent confirmations
  arrive (``k = suspicion_mult - 2`` are expected; none when ``n - 2 < k``, and then the timer
  is ``min`` from the start) - memberlist's ``suspicionTimeout`` and ``suspicion.go``;
* a suspect or failed member that answers again refutes the suspicion and is alive.

``consul agent -dev`` does not use those LAN defaults: its ``DevSource`` sets
``gossip_lan { gossip_interval = "100ms", probe_interval = "100ms", probe_timeout = "100ms",
suspicion_mult = 3 }`` (agent/config/default.go).  :data:`DEV_GOSSIP` is that, and is what the
embedded agent uses unless told otherwise; :data:`LAN_GOSSIP` is a production agent's.

What differs from memberlist (the dev datacenter has one prober, the server): the server
probes every member each interval (memberlist's members each probe one other member per
interval, so every member is probed about once per interval by someone), and each further
unanswered probe of a suspect stands in for one confirmation from another member.  Failed
members keep being probed, standing in for gossip to the dead and push-pull, so a member that
wakes up rejoins within one interval.  Members are never reaped (Consul reaps after 72 h).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace
from enum import Enum

from ..durations import MILLISECOND, SECOND

DEFAULT_PROBE_INTERVAL_NS = 1 * SECOND
DEFAULT_PROBE_TIMEOUT_NS = 500 * MILLISECOND
DEFAULT_SUSPICION_MULT = 4
DEFAULT_SUSPICION_MAX_TIMEOUT_MULT = 6
PUSH_PULL_INTERVAL_NS = 30 * SECOND  # memberlist LAN; consul -dev's DevSource keeps it
DEV_PROBE_INTERVAL_NS = 100 * MILLISECOND
DEV_PROBE_TIMEOUT_NS = 100 * MILLISECOND
DEV_SUSPICION_MULT = 3
DEV_GOSSIP_INTERVAL = "100ms"  # shown in /v1/agent/self; the dev datacenter gossips nothing else
GOSSIP_NODES = 3
RETRANSMIT_MULT = 4


@dataclass(frozen=True)
class GossipConfig:
    """The LAN gossip timings (memberlist ``DefaultLANConfig`` unless scaled)."""

    probe_interval_ns: int = DEFAULT_PROBE_INTERVAL_NS
    probe_timeout_ns: int = DEFAULT_PROBE_TIMEOUT_NS
    suspicion_mult: int = DEFAULT_SUSPICION_MULT
    suspicion_max_timeout_mult: int = DEFAULT_SUSPICION_MAX_TIMEOUT_MULT

    def __post_init__(self) -> None:
        if self.probe_interval_ns <= 0 or self.probe_timeout_ns <= 0:
            raise ValueError("probe_interval and probe_timeout must be positive")
        if self.probe_timeout_ns > self.probe_interval_ns:
            raise ValueError(
                "probe_timeout must not be longer than probe_interval (memberlist waits for "
                "an ack only until the probe interval ends)"
            )
        if self.suspicion_mult < 1 or self.suspicion_max_timeout_mult < 1:
            raise ValueError("suspicion_mult and suspicion_max_timeout_mult must be at least 1")

    @property
    def push_pull_interval_ns(self) -> int:
        """How often a client agent pushes its full state: memberlist's LAN push/pull, 30 s
        (``gossip_lan`` does not set it, so a dev agent's is 30 s too)."""
        return PUSH_PULL_INTERVAL_NS

    def suspicion_min_ns(self, members: int) -> int:
        """memberlist ``suspicionTimeout``: ``mult x max(1, log10(n)) x interval`` (ms floor)."""
        scale = max(1.0, math.log10(max(1, members)))
        whole_ms = int(self.suspicion_mult * scale * self.probe_interval_ns) // MILLISECOND
        return whole_ms * MILLISECOND

    def suspicion_max_ns(self, members: int) -> int:
        """The suspicion timer's upper bound, ``suspicion_max_timeout_mult x min``."""
        return self.suspicion_max_timeout_mult * self.suspicion_min_ns(members)

    def expected_confirmations(self, members: int) -> int:
        """``k``: confirmations memberlist waits for; 0 when ``n - 2 < suspicion_mult - 2``."""
        k = self.suspicion_mult - 2
        return 0 if members - 2 < k else max(k, 0)

    def detection_bounds_ns(self, members: int) -> tuple[int, int]:
        """Earliest and latest time from a member going silent to it being declared failed.

        A probe round that gets no ack ends one interval after it started; the silence begins
        at best just before a round starts and at worst just after an ack, one interval
        earlier.  The suspicion timer then runs ``min``: the ``k`` confirmations (one per
        further unanswered round) all arrive within ``k < suspicion_mult`` intervals, before
        ``min`` has passed, which brings the timer down to ``min``.
        """
        low = self.probe_interval_ns + self.suspicion_min_ns(members)
        return low, low + self.probe_interval_ns


LAN_GOSSIP = GossipConfig()
DEV_GOSSIP = GossipConfig(
    probe_interval_ns=DEV_PROBE_INTERVAL_NS,
    probe_timeout_ns=DEV_PROBE_TIMEOUT_NS,
    suspicion_mult=DEV_SUSPICION_MULT,
)


def suspicion_timeout_ns(config: GossipConfig, members: int, confirmations: int) -> int:
    """The suspicion timer's total length after ``confirmations`` (memberlist's formula).

    ``max - log(c + 1) / log(k + 1) x (max - min)``, floored to milliseconds and never below
    ``min``; with ``k = 0`` it is ``min`` from the start.  Confirmations beyond ``k`` change
    nothing.
    """
    low, high = config.suspicion_min_ns(members), config.suspicion_max_ns(members)
    k = config.expected_confirmations(members)
    if k < 1:
        return low
    c = min(confirmations, k)
    fraction = math.log(c + 1.0) / math.log(k + 1.0)
    raw_s = high / SECOND - fraction * (high - low) / SECOND
    timeout = math.floor(1000.0 * raw_s) * MILLISECOND
    return max(timeout, low)


class Status(Enum):
    """Serf's member statuses, with the number ``/v1/agent/members`` reports."""

    ALIVE = 1
    LEAVING = 2
    LEFT = 3
    FAILED = 4


@dataclass
class Member:
    """One LAN member as the server sees it."""

    name: str
    node_id: str
    address: str
    serf_port: int
    http_address: str = ""
    server: bool = False
    status: Status = Status.ALIVE
    suspect_since_ns: int | None = None
    confirmations: int = 0
    suspect_members: int = 0

    @property
    def suspect(self) -> bool:
        """Whether a suspicion timer is running (Serf still reports it alive)."""
        return self.suspect_since_ns is not None


@dataclass(frozen=True)
class Change:
    """A member changed to ``status``: what the leader reconciles into the catalog."""

    member: Member
    status: Status


@dataclass
class MemberTable:
    """The server's member list and failure detector, driven by probe outcomes and time.

    Thread-safe; every method takes the current monotonic time in nanoseconds and returns the
    changes the caller must reconcile (outside the table's lock).
    """

    config: GossipConfig
    _members: dict[str, Member] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    version: int = 0

    def _bump(self) -> None:
        self.version += 1

    def snapshot(self) -> list[Member]:
        """Copies of every member, by name."""
        with self._lock:
            return [replace(m) for _, m in sorted(self._members.items())]

    def get(self, name: str) -> Member | None:
        """A copy of the member called ``name`` (ignoring case), or None."""
        with self._lock:
            found = self._members.get(name.lower())
            return None if found is None else replace(found)

    def counted(self) -> int:
        """``n`` for the suspicion formulas: members not known to have left."""
        return sum(1 for m in self._members.values() if m.status is not Status.LEFT)

    def join(self, member: Member) -> list[Change]:
        """A member announced itself (join, push-pull or refutation): it is alive."""
        with self._lock:
            existing = self._members.get(member.name.lower())
            member.status = Status.ALIVE
            self._members[member.name.lower()] = member
            self._bump()
            unchanged = (
                existing is not None
                and existing.status is Status.ALIVE
                and existing.node_id == member.node_id
            )
            if unchanged:
                return []
            return [Change(replace(member), Status.ALIVE)]

    def leave(self, name: str) -> list[Change]:
        """A member left gracefully."""
        with self._lock:
            member = self._members.get(name.lower())
            if member is None or member.status is Status.LEFT:
                return []
            member.status = Status.LEFT
            member.suspect_since_ns = None
            self._bump()
            return [Change(replace(member), Status.LEFT)]

    def force_leave(self, name: str, prune: bool) -> list[Change]:
        """``consul force-leave``: a failed member is moved to left (an alive one refutes the
        leave intent and stays); ``prune`` also forgets a left member entirely."""
        with self._lock:
            member = self._members.get(name.lower())
            if member is None or member.server:
                return []
            changes: list[Change] = []
            if member.status is Status.FAILED:
                member.status = Status.LEFT
                self._bump()
                changes.append(Change(replace(member), Status.LEFT))
            if prune and member.status is Status.LEFT:
                del self._members[name.lower()]
                self._bump()
            return changes

    def acked(self, name: str, node_id: str, now_ns: int) -> list[Change]:
        """A probe was answered by ``node_id``: a suspicion is refuted, a failed member is back."""
        with self._lock:
            member = self._members.get(name.lower())
            if member is None or member.node_id != node_id or member.status is Status.LEFT:
                return []
            changed = member.suspect or member.status is not Status.ALIVE
            member.suspect_since_ns = None
            member.confirmations = 0
            if member.status is Status.FAILED:
                member.status = Status.ALIVE
                self._bump()
                return [Change(replace(member), Status.ALIVE)]
            if changed:
                self._bump()
            return []

    def unanswered(self, name: str, now_ns: int) -> list[Change]:
        """A probe round ended without an ack: suspect the member, or confirm the suspicion."""
        with self._lock:
            member = self._members.get(name.lower())
            if member is None or member.status is not Status.ALIVE:
                return []
            if member.suspect:
                member.confirmations += 1
            else:
                member.suspect_since_ns = now_ns
                member.confirmations = 0
                member.suspect_members = self.counted()
                self._bump()
            return self._expire(member, now_ns)

    def deadline_ns(self, name: str) -> int | None:
        """When the member's suspicion timer fires, if it is suspect."""
        with self._lock:
            member = self._members.get(name.lower())
            if member is None or member.suspect_since_ns is None:
                return None
            return self._deadline(member)

    def _deadline(self, member: Member) -> int:
        assert member.suspect_since_ns is not None
        return member.suspect_since_ns + suspicion_timeout_ns(
            self.config, member.suspect_members, member.confirmations
        )

    def tick(self, name: str, now_ns: int) -> list[Change]:
        """Fire the member's suspicion timer if it is due."""
        with self._lock:
            member = self._members.get(name.lower())
            if member is None or member.status is not Status.ALIVE:
                return []
            return self._expire(member, now_ns)

    def _expire(self, member: Member, now_ns: int) -> list[Change]:
        if member.suspect_since_ns is None or now_ns < self._deadline(member):
            return []
        member.status = Status.FAILED
        member.suspect_since_ns = None
        member.confirmations = 0
        self._bump()
        return [Change(replace(member), Status.FAILED)]
