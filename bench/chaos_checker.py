"""The safety checker of the chaos run: pure functions over a recorded history.

``bench/chaos.py`` records a :class:`History` while it injects faults; :func:`check`
turns it into a :class:`Report` with one figure per safety or liveness question:

* fenced writes accepted out of token order, or out of the order in which Consul granted
  the lock (a violation if > 0);
* stale writes the unfenced resource accepted, by cause: after a pause (the lesson: a
  frozen leader cannot stop itself; shown, not a violation) or after a partition (a
  violation: a cut-off leader stops believing one TTL after its last good renew, before
  Consul can give the lock away);
* time with no working leader, split into expected windows (failure detection after a
  crash or pause, the TTL path after a partition, hand-over after a graceful stop,
  start-up), time when no node could have led, and the unexplained rest;
* Consul-side double holders (a violation if > 0);
* orphan processes after the run (a violation if > 0).

Everything here is standard library only and has no I/O, so the tests feed it synthetic
histories to make sure each check can fail.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

#: Faults that end a node's process (or take it away from the election for a while).
DOWN_KINDS = {
    "kill": "down",
    "term": "down",
    "exited": "down",
    "pause": "paused",
    "partition": "partitioned",
}
UP_KINDS = {"start", "restart", "resume", "heal"}
#: The faults a stale write is blamed on: the writer's latest of these before the write.
STALE_CAUSES = ("pause", "partition")
#: Node events whose ``session`` is the node's own session.
OWN_SESSION_EVENTS = {"elected", "lost", "resigned"}


@dataclass(frozen=True)
class HolderSample:
    """What Consul said about the leader key at ``time`` (from a blocking watch).

    ``session`` is ``None`` when the key is missing or not held.  ``previous_alive`` is
    set on a sample whose holder differs from the previous held sample's: whether the
    previous holder's session still existed in Consul when the change was seen.
    """

    time: float
    session: str | None
    node: str | None = None
    create_index: int | None = None
    lock_index: int | None = None
    previous_alive: bool | None = None


@dataclass(frozen=True)
class Fault:
    """A fault the run injected, or a process exit it noticed (kind ``exited``)."""

    time: float
    kind: str  # start | restart | resume | kill | term | pause | exited | partition | heal
    node: str


@dataclass(frozen=True)
class Write:
    """One write attempt as a resource saw it, in the resource's own order."""

    time: float
    writer: str
    token: int
    accepted: bool


@dataclass(frozen=True)
class Bounds:
    """How long a working leader may be missing for a known reason (seconds)."""

    detection: float  # crash or pause of the leader -> another node leads
    handover: float  # graceful stop (SIGTERM) of the leader -> another node leads
    startup: float  # a node (re)started or resumed -> it can take part
    #: the leader cut off from its agent -> another node leads (the TTL path: Consul
    #: invalidates up to 2 x TTL after the last renew, then lock-delay); None = detection
    partition: float | None = None


@dataclass
class History:
    start: float
    end: float
    bounds: Bounds
    samples: list[HolderSample] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)  # node events (elect_helpers.events)
    fenced: list[Write] = field(default_factory=list)
    unfenced: list[Write] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)


@dataclass
class Leaderless:
    expected: float = 0.0
    no_candidate: float = 0.0
    unexplained: float = 0.0

    @property
    def total(self) -> float:
        return self.expected + self.no_candidate + self.unexplained


@dataclass
class Report:
    fenced_out_of_order: int
    fenced_accepted: int
    fenced_rejected: int
    unfenced_stale_accepted: int
    unfenced_accepted: int
    unfenced_stale_by_cause: dict[str, int]
    leaderless: Leaderless
    double_holders: list[str]
    orphans: list[str]
    max_believers: int
    overlap_seconds: float
    leader_changes: int

    def violations(self) -> list[str]:
        """The safety violations, one short text each; empty means the run was safe."""
        found = []
        if self.fenced_out_of_order:
            found.append(f"{self.fenced_out_of_order} fenced writes accepted out of order")
        if self.double_holders:
            found.append(f"{len(self.double_holders)} Consul-side double holders")
        if self.orphans:
            found.append(f"{len(self.orphans)} orphan processes")
        by_partition = self.unfenced_stale_by_cause.get("partition", 0)
        if by_partition:
            found.append(f"{by_partition} stale unfenced writes after a partition")
        return found

    def lines(self) -> list[str]:
        """One summary line per figure."""
        lead = self.leaderless
        return [
            "fenced writes accepted out of token or acquisition order:"
            f" {self.fenced_out_of_order}"
            f" (accepted {self.fenced_accepted}, rejected as stale {self.fenced_rejected})"
            " [must be 0]",
            f"stale writes accepted by the unfenced resource: {self.unfenced_stale_accepted}"
            f" (of {self.unfenced_accepted} accepted) [the fencing lesson]",
            "  caused by: "
            + ", ".join(
                f"{cause} {self.unfenced_stale_by_cause.get(cause, 0)}"
                for cause in (*STALE_CAUSES, "other")
            )
            + " [partition must be 0]",
            f"time with no working leader: {lead.total:.2f} s = {lead.expected:.2f} s in"
            f" expected detection/hand-over windows + {lead.no_candidate:.2f} s with no"
            f" candidate + {lead.unexplained:.2f} s unexplained",
            f"Consul-side double holders: {len(self.double_holders)} [must be 0]"
            + (f" ({'; '.join(self.double_holders[:3])})" if self.double_holders else ""),
            f"orphan processes after the run: {len(self.orphans)} [must be 0]"
            + (f" ({', '.join(self.orphans[:5])})" if self.orphans else ""),
            f"nodes believing they lead at once: max {self.max_believers},"
            f" {self.overlap_seconds:.2f} s with two or more; leader changes per Consul:"
            f" {self.leader_changes}",
        ]


# -- resource writes ----------------------------------------------------------------------


def out_of_order(writes: list[Write]) -> list[Write]:
    """Accepted writes whose token is lower than an earlier accepted write's."""
    bad, highest = [], None
    for write in writes:
        if not write.accepted:
            continue
        if highest is not None and write.token < highest:
            bad.append(write)
        highest = write.token if highest is None else max(highest, write.token)
    return bad


def out_of_acquisition_order(history: History) -> list[Write]:
    """Accepted fenced writes made under an *older* lock acquisition than an earlier
    accepted write, with Consul's order of acquisitions as the reference.

    A write's acquisition is the session its writer was elected with under that token
    (from the ``elected`` events); acquisitions are ranked by when the watch first saw
    each session hold the key.  This catches what the token check alone cannot: tokens
    that do not grow from one leader to the next, so that a store happily accepts an
    ex-leader's write over the new leader's.  Writes whose acquisition the watch never
    saw are skipped.
    """
    rank: dict[str, int] = {}
    for sample in history.samples:
        if sample.session and sample.session not in rank:
            rank[sample.session] = len(rank)
    session_of = {
        (e.get("node"), e.get("token")): e.get("session")
        for e in history.events
        if e.get("event") == "elected"
    }
    bad, newest = [], -1
    for write in history.fenced:
        if not write.accepted:
            continue
        position = rank.get(session_of.get((write.writer, write.token)) or "")
        if position is None:
            continue
        if position < newest:
            bad.append(write)
        newest = max(newest, position)
    return bad


# -- process states -----------------------------------------------------------------------


class ProcessStates:
    """Each node's process state over time, from the fault log.

    A node is ``running`` after start/restart/resume, ``paused`` after SIGSTOP, ``down``
    after SIGKILL, SIGTERM or an exit; before its first start it is ``down``.
    """

    def __init__(self, faults: list[Fault]) -> None:
        self._times: dict[str, list[float]] = defaultdict(list)
        self._states: dict[str, list[tuple[str, float]]] = defaultdict(list)
        since: dict[str, float] = {}
        for fault in sorted(faults, key=lambda f: f.time):
            state = "running" if fault.kind in UP_KINDS else DOWN_KINDS.get(fault.kind)
            if state is None:
                continue
            if fault.kind in ("start", "restart"):
                since[fault.node] = fault.time
            self._times[fault.node].append(fault.time)
            self._states[fault.node].append((state, since.get(fault.node, fault.time)))

    @property
    def nodes(self) -> list[str]:
        return sorted(self._times)

    def at(self, node: str, t: float) -> tuple[str, float, float]:
        """``(state, since, incarnation_start)`` of ``node`` at ``t``."""
        times = self._times.get(node, [])
        i = bisect.bisect_right(times, t) - 1
        if i < 0:
            return "down", float("-inf"), float("-inf")
        state, incarnation = self._states[node][i]
        return state, times[i], incarnation


# -- leaderless time ----------------------------------------------------------------------


def _session_owners(history: History) -> dict[str, str]:
    owners = {}
    for event in history.events:
        # leader-observed events carry the *observed* leader's session, so skip them.
        if event.get("event") in OWN_SESSION_EVENTS and event.get("session"):
            owners.setdefault(event["session"], event["node"])
    for sample in history.samples:
        if sample.session and sample.node:
            owners.setdefault(sample.session, sample.node)
    return owners


def leaderless_time(history: History, step: float = 0.01) -> tuple[Leaderless, int]:
    """Split the time with no working leader into its reasons; also count leader changes.

    A working leader is a node that Consul names as the holder of the key whose process,
    in the incarnation that acquired the lock, is running (not killed, stopped or paused).
    A stretch without one is *expected* for ``bounds.detection`` after the leader was
    killed or paused, ``bounds.handover`` after it got SIGTERM and ``bounds.startup``
    after the run began; beyond that it is *no candidate* while no node has been running
    for ``bounds.startup``, and *unexplained* otherwise.
    """
    states = ProcessStates(history.faults)
    owners = _session_owners(history)
    bounds = history.bounds
    sample_times = [s.time for s in history.samples]
    first_seen: dict[str, float] = {}
    for sample in history.samples:
        if sample.session:
            first_seen.setdefault(sample.session, sample.time)
    faults = sorted(history.faults, key=lambda f: f.time)
    fault_times = [f.time for f in faults]
    result = Leaderless()
    anchor, allowance = history.start, bounds.startup
    last_leader: str | None = None
    changes = 0
    previous_session: str | None = None
    t = history.start
    while t < history.end:
        i = bisect.bisect_right(sample_times, t) - 1
        session = history.samples[i].session if i >= 0 else None
        if session and session != previous_session:
            changes += 1
            previous_session = session
        leader = owners.get(session) if session else None
        working = False
        if leader is not None:
            state, _, incarnation = states.at(leader, t)
            working = state == "running" and incarnation <= first_seen[session]
        if working:
            last_leader = leader
            anchor, allowance = None, 0.0
        else:
            if anchor is None:
                anchor, allowance = _why_not_leading(faults, fault_times, bounds, last_leader, t)
            if t < anchor + allowance:
                result.expected += step
            elif not any(
                states.at(node, t)[0] == "running" and states.at(node, t)[1] + bounds.startup <= t
                for node in states.nodes
            ):
                result.no_candidate += step
            else:
                result.unexplained += step
        t += step
    return result, changes


def _why_not_leading(
    faults: list[Fault], fault_times: list[float], bounds: Bounds, leader: str | None, t: float
) -> tuple[float, float]:
    """The anchor and allowance of a stretch that starts at ``t``: the latest fault on
    the last working leader (kill/pause -> detection, term -> hand-over); none -> none."""
    for fault in reversed(faults[: bisect.bisect_right(fault_times, t)]):
        if fault.node != leader:
            continue
        if fault.kind in ("kill", "pause", "exited"):
            return fault.time, bounds.detection
        if fault.kind == "partition":
            return fault.time, bounds.detection if bounds.partition is None else bounds.partition
        if fault.kind == "term":
            return fault.time, bounds.handover
        break
    return t, 0.0


# -- Consul-side double holders -----------------------------------------------------------


def double_holders(history: History) -> list[str]:
    """Evidence that Consul let two sessions hold the key at once.

    Two checks that hold on any correct Consul, whatever the watch misses:

    * one acquisition (the key's CreateIndex and LockIndex) belongs to one session only;
    * when the holder changes from A to B with no free moment seen in between, A must
      have let go: either A's session was gone when the change was seen, or A's node
      logged a ``resigned`` event for A (it released the key itself).
    """
    found = []
    epochs: dict[tuple[int | None, int | None], str] = {}
    resigned = {e.get("session") for e in history.events if e.get("event") == "resigned"}
    previous: str | None = None
    for sample in history.samples:
        if sample.session is None:
            previous = None
            continue
        epoch = (sample.create_index, sample.lock_index)
        owner = epochs.setdefault(epoch, sample.session)
        if owner != sample.session:
            found.append(
                f"acquisition {epoch} held by {owner[:8]} and {sample.session[:8]}"
                f" at +{sample.time - history.start:.2f}s"
            )
        if (
            previous is not None
            and sample.session != previous
            and sample.previous_alive
            and previous not in resigned
        ):
            found.append(
                f"{sample.session[:8]} took the key from live session {previous[:8]}"
                f" at +{sample.time - history.start:.2f}s"
            )
        previous = sample.session
    return found


# -- node beliefs -------------------------------------------------------------------------


def believers(history: History) -> tuple[int, float]:
    """The most nodes that believed at once that they lead, and how long two or more did.

    A node believes from its ``elected`` event until ``lost``, ``resigned`` or
    ``stopped``, or until its process is killed or exits.
    """
    spans: list[tuple[float, float]] = []
    opened: dict[str, float] = {}
    ends = {"lost", "resigned", "stopped"}
    stream = [(e["time"], e["node"], e["event"]) for e in history.events if e.get("node")]
    stream += [(f.time, f.node, f.kind) for f in history.faults if f.kind in ("kill", "exited")]
    for time, node, kind in sorted(stream):
        if kind == "elected":
            opened.setdefault(node, time)
        elif (kind in ends or kind in ("kill", "exited")) and node in opened:
            spans.append((opened.pop(node), time))
    spans += [(begin, history.end) for begin in opened.values()]
    edges = sorted([(begin, 1) for begin, _ in spans] + [(end, -1) for _, end in spans])
    most = count = 0
    overlap, since = 0.0, 0.0
    for time, delta in edges:
        if count >= 2:
            overlap += time - since
        count += delta
        since = time
        most = max(most, count)
    return most, overlap


def stale_causes(history: History, stale: list[Write]) -> dict[str, int]:
    """Blame each stale write on its writer's latest pause or partition before it (a
    start or restart in between clears the blame: ``other``)."""
    counts: dict[str, int] = defaultdict(int)
    faults = sorted(history.faults, key=lambda f: f.time)
    for write in stale:
        cause = "other"
        for fault in reversed(faults):
            if fault.node != write.writer or fault.time > write.time:
                continue
            if fault.kind in STALE_CAUSES:
                cause = fault.kind
                break
            if fault.kind in ("start", "restart"):
                break
        counts[cause] += 1
    return dict(counts)


def check(history: History) -> Report:
    """Run every check over ``history``."""
    unfenced_stale = out_of_order(history.unfenced)
    leaderless, changes = leaderless_time(history)
    most, overlap = believers(history)
    return Report(
        fenced_out_of_order=len(
            {id(w) for w in out_of_order(history.fenced) + out_of_acquisition_order(history)}
        ),
        fenced_accepted=sum(1 for w in history.fenced if w.accepted),
        fenced_rejected=sum(1 for w in history.fenced if not w.accepted),
        unfenced_stale_accepted=len(unfenced_stale),
        unfenced_accepted=sum(1 for w in history.unfenced if w.accepted),
        unfenced_stale_by_cause=stale_causes(history, unfenced_stale),
        leaderless=leaderless,
        double_holders=double_holders(history),
        orphans=list(history.orphans),
        max_believers=most,
        overlap_seconds=overlap,
        leader_changes=changes,
    )
