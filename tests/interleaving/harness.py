"""Run real :class:`~elect_helpers.election.Election` generators against the dev agent's
state machine on a manual clock, interleave them step by step, and inject faults.

The election recipe is a generator of steps (:mod:`elect_helpers.steps`).  Here every node
is a task running ``register -> Election.steps() -> deregister`` (the order the node's
runner follows), plus one task per session for its :class:`SessionRenewer`.  A
:class:`World` executes one step at a time against a ``DevState`` (the dev agent's state
machine, not a copy of it), chooses which task goes next, moves the manual clock only when
no task can proceed, and between any two steps can

* **stop** a node (SIGTERM: the stop flag is set; requests already decided still go out,
  blocking reads and pauses are cut short, as the real driver does),
* **crash** it (SIGKILL: its tasks vanish; a step may have reached Consul without its answer
  reaching the node),
* **pause** it (SIGSTOP/SIGCONT: its tasks do not run for a while, the clock goes on).

After every step and every clock move the invariants are checked; a breach raises
:class:`Violation` with the schedule so far, so a seed or a fault point reproduces it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from elect_helpers import steps as st
from elect_helpers.devagent.catalog import Service
from elect_helpers.devagent.errors import Failure, NotFound
from elect_helpers.devagent.sessions import Session
from elect_helpers.devagent.state import DevState
from elect_helpers.devagent.timers import ManualClock, TimerService
from elect_helpers.election import LOCK_DELAY_RETRY_MAX, Election
from elect_helpers.errors import ConsulError, ElectHelpersError, Interrupted, SessionGone
from elect_helpers.session import SessionRenewer
from elect_helpers.settings import ElectionSettings
from elect_helpers.watch import MIN_INTERVAL

SECOND = 1_000_000_000
KEY = "service/model/leader"
#: Slack on top of Consul's crash bound (2 x TTL + lock-delay): after the lock-delay the
#: waiting candidates re-check every 250 ms at most, each read paced by MIN_INTERVAL.
RETRY_SLACK = LOCK_DELAY_RETRY_MAX + 2 * MIN_INTERVAL
#: A graceful hand-over may take this much agent-clock time (read pacing only).
GRACEFUL_SLACK = 4 * MIN_INTERVAL


class Violation(AssertionError):
    """An invariant broke; the message has the invariant, the time and the schedule."""


@dataclass(frozen=True)
class RegisterService:
    """The node's step 1 (harness only: the runner does it before campaigning)."""

    service_id: str


@dataclass(frozen=True)
class DeregisterService:
    """The node's last step, after the election has stepped down."""

    service_id: str


@dataclass
class Task:
    node: Node
    kind: str  # "life" or "renewer"
    steps: Generator[Any, Any, Any]
    renewer: SessionRenewer | None = None
    pending: Any = None  # the step the task is about to take
    started_at: int = 0  # clock when the pending step became pending (for waits)
    done: bool = False


@dataclass
class Node:
    name: str
    incarnation: int
    election: Election
    state: str = "running"  # running, paused, stopping, stopped, crashed
    resume_at: int | None = None
    sessions: list[str] = field(default_factory=list)
    blind_reads: int = 0  # reads while the key names our session and we do not lead
    steps_done: int = 0


@dataclass
class PointFault:
    """A fault on node ``node`` just before its step number ``at`` (counting all its
    tasks' steps from 0): ``stop`` (the step still goes out), ``crash-before`` (it never
    does), ``crash-after`` (it reaches Consul, the answer never reaches the node),
    ``pause`` (for ``seconds``; the step goes out after SIGCONT)."""

    node: str
    at: int
    kind: str
    seconds: float = 0.0
    done: bool = False


class ModelElection(Election):
    """An Election whose renewers are tasks of the world instead of threads."""

    world: World
    model_node: Node

    def _start_renewer(self, renewer: SessionRenewer) -> None:
        self.world.add_task(self.model_node, "renewer", renewer.steps(), renewer)

    def _stop_renewer(self, renewer: SessionRenewer) -> None:
        # The real one joins the renewer thread: a renew already on its way finishes first.
        renewer.request_stop()
        self.world.finish_renewer(renewer)


class World:
    """One dev agent state machine, a manual clock, and candidate nodes."""

    def __init__(
        self,
        settings: ElectionSettings,
        *,
        seed: int = 0,
        horizon_s: float = 120.0,
        max_steps: int = 5000,
    ) -> None:
        self.settings = settings
        self.rng = random.Random(seed)
        self.clock = ManualClock()
        self.timers = TimerService(self.clock)
        self.agent = DevState(
            node_name="model-agent",
            session_ttl_min_ns=SECOND // 10,
            timers=self.timers,
            start_check_runners=False,
        )
        self.horizon = int(horizon_s * SECOND)
        self.max_steps = max_steps
        self.tasks: list[Task] = []
        self.nodes: list[Node] = []
        self.trace: list[str] = []
        self.steps_taken = 0
        self.crash_checks: list[tuple[int, str]] = []  # (deadline, who crashed)
        self.graceful_checks: list[tuple[int, str]] = []
        self.faults_at: list[int] = []

    # ------------------------------------------------------------------ time

    def now_ns(self) -> int:
        return self.clock.monotonic_ns()

    def now(self) -> float:
        return self.clock.monotonic_ns() / SECOND

    # ------------------------------------------------------------------ nodes

    def add_node(self, name: str) -> Node:
        incarnation = sum(1 for n in self.nodes if n.name == name) + 1
        election = ModelElection(
            None, KEY, name, address=f"{name}:1", settings=self.settings, clock=self.now
        )
        node = Node(name, incarnation, election)
        election.world = self
        election.model_node = node
        self.nodes.append(node)
        self.add_task(node, "life", self._life(node))
        self.note(f"start {self.label(node)}")
        return node

    def _life(self, node: Node) -> Generator[Any, Any, None]:
        yield RegisterService(node.name)
        yield from node.election.steps()
        yield DeregisterService(node.name)

    def label(self, node: Node) -> str:
        return node.name if node.incarnation == 1 else f"{node.name}#{node.incarnation}"

    def add_task(self, node: Node, kind: str, steps: Any, renewer: Any = None) -> None:
        task = Task(node, kind, steps, renewer)
        self.tasks.append(task)
        self._advance_task(task, None, None)

    def live(self, node: Node) -> bool:
        return node.state in ("running", "paused", "stopping")

    # ------------------------------------------------------------------ faults

    def stop(self, node: Node) -> None:
        """SIGTERM: the node's stop flag is set (and its reads are cut)."""
        if node.state not in ("running", "paused"):
            return
        self.note(f"stop {self.label(node)}")
        node.state = "stopping" if node.state == "running" else node.state
        node.election._request_stop()
        if node.state == "paused":
            node.state, node.resume_at = "stopping", None  # the controller sends SIGCONT
        self.faults_at.append(self.now_ns())
        if self._holds(node) or node.election._may_hold:
            self.graceful_checks.append((self.now_ns(), self.label(node)))

    def crash(self, node: Node) -> None:
        """SIGKILL: every task of the node vanishes, whatever it was doing."""
        if not self.live(node):
            return
        self.note(f"crash {self.label(node)}")
        may_hold = node.election._may_hold or self._holds(node)
        node.state = "crashed"
        for task in self.tasks:
            if task.node is node:
                task.done = True
        self.faults_at.append(self.now_ns())
        if may_hold:
            self.crash_checks.append((self.now_ns(), self.label(node)))

    def pause(self, node: Node, seconds: float) -> None:
        """SIGSTOP now, SIGCONT ``seconds`` later."""
        if node.state != "running":
            return
        self.note(f"pause {self.label(node)} for {seconds:g}s")
        node.state = "paused"
        node.resume_at = self.now_ns() + int(seconds * SECOND)
        self.faults_at.append(self.now_ns())

    # ------------------------------------------------------------------ running

    def note(self, what: str) -> None:
        self.trace.append(f"{self.now():.3f}s {what}")

    def runnable(self) -> list[Task]:
        return [t for t in self.tasks if not t.done and self._ready(t)]

    def _active(self, task: Task) -> bool:
        return task.node.state in ("running", "stopping")

    def _cancelled(self, task: Task) -> bool:
        if task.kind == "renewer":
            assert task.renewer is not None
            return task.renewer.stopping
        return task.node.election._wake.is_set()

    def _ready(self, task: Task) -> bool:
        if not self._active(task):
            return False
        step = task.pending
        if isinstance(step, st.Pause):
            return self._cancelled(task) or self.now_ns() >= task.started_at + int(
                step.seconds * SECOND
            )
        if isinstance(step, st.ReadKey) and step.index > 0:
            if self._cancelled(task):
                return True
            if self.now_ns() >= task.started_at + int(step.wait * SECOND):
                return True
            return self._key_index() > step.index
        return True

    def _wake_times(self) -> list[int]:
        times = []
        for task in self.tasks:
            if task.done:
                continue
            step = task.pending
            if isinstance(step, st.Pause):
                times.append(task.started_at + int(step.seconds * SECOND))
            elif isinstance(step, st.ReadKey) and step.index > 0:
                times.append(task.started_at + int(step.wait * SECOND))
        times += [n.resume_at for n in self.nodes if n.resume_at is not None]
        heap = [d for d, _, t in self.timers._heap if not t.cancelled]  # agent TTL timers
        times += heap
        bound = 2 * self.settings.ttl + self.settings.lock_delay + RETRY_SLACK
        times += [t + int(bound * SECOND) + 1 for t, _ in self.crash_checks]
        times += [t + int(GRACEFUL_SLACK * SECOND) + 1 for t, _ in self.graceful_checks]
        return [t for t in times if t > self.now_ns()]

    def step(self, task: Task) -> None:
        """Execute the task's pending step against the agent and hand it the answer."""
        step = task.pending
        self.steps_taken += 1
        task.node.steps_done += 1
        answer, error = None, None
        try:
            answer = self._execute(task, step)
        except ElectHelpersError as exc:
            error = exc
        self.note(
            f"{self.label(task.node)}/{task.kind}: {_describe(step)} -> {_answer(answer, error)}"
        )
        if task.kind == "life" and isinstance(step, st.ReadKey):
            self._count_blind_read(task.node)
        self._advance_task(task, answer, error)
        self.check()

    def step_without_answer(self, task: Task) -> None:
        """The step reaches Consul but the node dies before the answer (crash-after)."""
        step = task.pending
        self.steps_taken += 1
        task.node.steps_done += 1
        with contextlib.suppress(ElectHelpersError):
            self._execute(task, step)
        self.note(f"{self.label(task.node)}/{task.kind}: {_describe(step)} (answer lost)")

    def _advance_task(self, task: Task, answer: Any, error: Exception | None) -> None:
        try:
            if error is not None:
                task.pending = task.steps.throw(error)
            else:
                task.pending = task.steps.send(answer)
            task.started_at = self.now_ns()
        except StopIteration:
            task.done = True
            task.pending = None
            if task.kind == "life":
                self._finished(task.node)
        except Exception as exc:
            raise self.violation(f"{self.label(task.node)} raised {exc!r}") from exc

    def finish_renewer(self, renewer: SessionRenewer) -> None:
        for task in self.tasks:
            if task.renewer is renewer and not task.done:
                if isinstance(task.pending, st.RenewSession):
                    self.step(task)  # the renew in flight completes before the join returns
                if not task.done:
                    self._advance_task(task, None, None)  # its pause ends: it sees the stop

    def advance_clock(self) -> bool:
        """Move the clock to the next moment something can happen; False if nothing can."""
        times = self._wake_times()
        if not times:
            return False
        target = min(times)
        if target > self.horizon:
            return False
        self.timers.advance(target - self.now_ns())
        for node in self.nodes:
            if node.resume_at is not None and node.resume_at <= self.now_ns():
                node.resume_at = None
                node.state = "running"
                self.note(f"resume {self.label(node)}")
        self.check()
        return True

    def run(
        self,
        faults: list[PointFault] | tuple[PointFault, ...] = (),
        random_faults: float = 0.0,
        max_faults: int = 4,
    ) -> None:
        """Run until every task is blocked for good, the horizon, or ``max_steps``.

        ``faults`` hit at given steps; ``random_faults`` is the chance, at each decision,
        of a random stop, crash, pause or restart (at most ``max_faults``)."""
        logger = logging.getLogger("elect_helpers")
        level = logger.level
        logger.setLevel(logging.CRITICAL)  # lost sessions, lock-delay refusals: expected here
        try:
            self._run(faults, random_faults, max_faults)
        finally:
            logger.setLevel(level)

    def _run(self, faults: Any, random_faults: float, max_faults: int) -> None:
        injected = 0
        while self.steps_taken < self.max_steps:
            if random_faults and injected < max_faults and self.rng.random() < random_faults:
                injected += self._random_fault()
            ready = self.runnable()
            if not ready:
                if not self.advance_clock():
                    break
                continue
            task = self.rng.choice(ready)
            if self._point_fault(task, faults):
                continue
            self.step(task)

    def stop_all(self) -> None:
        """SIGTERM every live node and run until they have all stepped down."""
        for node in self.nodes:
            if node.state in ("running", "paused"):
                self.stop(node)
        self.horizon += int(600 * SECOND)
        self.max_steps += 10_000
        self.run()
        for node in self.nodes:
            if node.state == "stopping":
                raise self.violation(f"{self.label(node)} never finished stepping down")
        self.final_check()

    def _point_fault(self, task: Task, faults: Any) -> bool:
        """Apply a fault due at this step; True if the step was consumed or must wait."""
        node = task.node
        for fault in faults:
            if fault.done or fault.node != self.label(node) or fault.at != node.steps_done:
                continue
            fault.done = True
            if fault.kind == "stop":
                self.stop(node)
                return False
            if fault.kind == "crash-before":
                self.crash(node)
                return True
            if fault.kind == "crash-after":
                self.step_without_answer(task)
                self.crash(node)
                return True
            if fault.kind == "pause":
                self.pause(node, fault.seconds)
                return True
            raise ValueError(f"unknown fault kind {fault.kind!r}")
        return False

    def _random_fault(self) -> int:
        kind = self.rng.choice(("stop", "crash", "pause", "restart"))
        if kind == "restart":
            gone = [n for n in self.nodes if n.state in ("stopped", "crashed")]
            names = {n.name for n in self.nodes if self.live(n)}
            gone = [n for n in gone if n.name not in names]
            if gone:
                self.add_node(self.rng.choice(gone).name)
            return 0
        running = [n for n in self.nodes if n.state == "running"]
        if not running:
            return 0
        node = self.rng.choice(running)
        if kind == "stop":
            self.stop(node)
        elif kind == "crash":
            self.crash(node)
        else:
            self.pause(node, self.rng.choice((0.1, 0.5, 1.5, 3.0)) * self.settings.ttl)
        return 1

    # ------------------------------------------------------------------ the agent

    def _execute(self, task: Task, step: Any) -> Any:
        agent = self.agent
        if isinstance(step, st.Pause):
            return None
        if isinstance(step, st.ReadKey):
            if step.index > 0 and self._cancelled(task):
                raise Interrupted(f"reading {step.key} was cancelled")
            with agent.store.lock:
                result = agent.kv.get(step.key)
            return result.index, _entry(result.value)
        if isinstance(step, st.Acquire):
            value = json.dumps(
                {"node": step.node, "address": step.address, "session": step.session}
            )
            try:
                return agent.kv_acquire(step.key, value.encode(), 0, step.session)
            except Failure as exc:
                if "invalid session" in exc.message:
                    raise SessionGone(exc.message, step.session) from None
                raise ConsulError(exc.message, 500, exc.message) from None
        if isinstance(step, st.Release):
            try:
                return agent.kv_release(step.key, None, 0, step.session)
            except Failure as exc:
                raise ConsulError(exc.message, 500, exc.message) from None
        if isinstance(step, st.CreateSession):
            s = step.settings
            session_id = agent.session_create(
                Session(
                    id="",
                    name=step.name,
                    node=agent.node_name,
                    lock_delay=int(s.lock_delay * SECOND),
                    behavior=s.behavior,
                    ttl=f"{int(s.ttl * SECOND)}ns",
                )
            )
            task.node.sessions.append(session_id)
            return session_id
        if isinstance(step, st.RenewSession):
            renewed = agent.session_renew(step.session)
            return renewed[0].ttl_ns / SECOND if renewed else None
        if isinstance(step, st.DestroySession):
            self._check_destroy(task.node, step.session)
            agent.session_destroy(step.session)
            return None
        if isinstance(step, st.SessionInfo):
            with agent.store.lock:
                return {"ID": step.session} if agent.sessions.lookup(step.session) else None
        if isinstance(step, RegisterService):
            agent.local.add_service(Service(id=step.service_id, service="model"), [])
            return None
        if isinstance(step, DeregisterService):
            with contextlib.suppress(NotFound):
                agent.local.remove_service(step.service_id)
            return None
        raise AssertionError(f"unknown step {step!r}")

    def _key_entry(self) -> Any:
        with self.agent.store.lock:
            return self.agent.kv.get(KEY).value

    def _key_index(self) -> int:
        with self.agent.store.lock:
            return self.agent.kv.get(KEY).index

    def holder(self) -> str:
        entry = self._key_entry()
        return entry.session if entry is not None else ""

    def _holds(self, node: Node) -> bool:
        holder = self.holder()
        return bool(holder) and holder in node.sessions

    def lock_delay_active(self) -> bool:
        with self.agent.store.lock:
            return self.agent.kv.lock_delay_active(KEY)

    # ------------------------------------------------------------------ invariants

    def violation(self, what: str) -> Violation:
        trace = "\n  ".join(self.trace[-60:])
        return Violation(f"{what} (at {self.now():.3f}s)\n  last steps:\n  {trace}")

    def believers(self) -> list[Node]:
        return [
            n for n in self.nodes if n.state in ("running", "stopping") and n.election.is_leader
        ]

    def _check_destroy(self, node: Node, session_id: str) -> None:
        # Invariant: no step-down destroys a session that still holds the key (that would
        # be an invalidation: a lock-delay with nobody leading).
        if self.holder() == session_id:
            raise self.violation(
                f"{self.label(node)} destroys session {session_id[:8]} while it holds the key: "
                f"a lock-delay of {self.settings.lock_delay:g}s is left behind"
            )

    def _blind(self, node: Node) -> bool:
        """The key names the node's current session, and the node has no running term:
        it holds the lock without knowing.  (A term whose renewer doubts the session, after
        a freeze, is knowledge: the node knows it won, and doubts only whether it still
        may act.)"""
        current = node.election.session_id
        term = node.election.term
        knows = term is not None and not term.ended.is_set()
        return bool(current) and self.holder() == current and not knows

    def _count_blind_read(self, node: Node) -> None:
        if self._blind(node):
            node.blind_reads += 1
            if node.blind_reads > 1:
                raise self.violation(
                    f"{self.label(node)} holds the key without knowing it for more than one read"
                )
        else:
            node.blind_reads = 0

    def check(self) -> None:
        believers = self.believers()
        if len(believers) > 1:
            names = ", ".join(self.label(n) for n in believers)
            raise self.violation(f"two nodes believe they lead at once: {names}")
        for node in self.nodes:
            if not self._blind(node):
                node.blind_reads = 0
        now = self.now_ns()
        bound = 2 * self.settings.ttl + self.settings.lock_delay
        for check in list(self.crash_checks):
            crashed_at, who = check
            if believers:
                self.crash_checks.remove(check)
            elif now >= crashed_at + int((bound + RETRY_SLACK) * SECOND):
                self.crash_checks.remove(check)
                if self._alone(crashed_at, now) and self._candidates():
                    raise self.violation(
                        f"nobody leads {bound:g}s (2 x TTL + lock-delay) + {RETRY_SLACK:g}s "
                        f"after {who} crashed"
                    )
        for check in list(self.graceful_checks):
            stopped_at, who = check
            if any(n.state == "running" for n in believers):
                self.graceful_checks.remove(check)
            elif now >= stopped_at + int(GRACEFUL_SLACK * SECOND):
                self.graceful_checks.remove(check)
                if self._alone(stopped_at, now) and self._candidates():
                    raise self.violation(
                        f"{who} stopped gracefully but nobody leads "
                        f"{(now - stopped_at) / SECOND:g}s later (lock-delay active: "
                        f"{self.lock_delay_active()})"
                    )

    def _alone(self, fault_at: int, until: int) -> bool:
        """No other fault shortly before or after the one checked (it could explain the
        wait: a crash's session lingers 2 x TTL, its lock-delay after that)."""
        window = int((2 * self.settings.ttl + self.settings.lock_delay) * SECOND)
        return sum(1 for t in self.faults_at if fault_at - window <= t <= until) == 1

    def _candidates(self) -> bool:
        return any(n.state == "running" for n in self.nodes)

    def final_check(self) -> None:
        """After the run: nodes that stopped gracefully left nothing behind (checked again:
        nothing may bring a session back)."""
        for node in self.nodes:
            if node.state == "stopped":
                self._left_nothing(node)

    def _finished(self, node: Node) -> None:
        if node.state == "stopping":
            node.state = "stopped"
            self.note(f"{self.label(node)} stopped")
            self._left_nothing(node)
        elif node.state != "crashed":
            raise self.violation(f"{self.label(node)} ended without being stopped")

    def _left_nothing(self, node: Node) -> None:
        with self.agent.store.lock:
            left = [s[:8] for s in node.sessions if self.agent.sessions.lookup(s)]
        if left:
            raise self.violation(f"{self.label(node)} stopped but left sessions {left}")
        latest = [n for n in self.nodes if n.name == node.name][-1]
        if latest is node and node.name in self.agent.local.services():
            raise self.violation(f"{self.label(node)} stopped but left its service")


def _entry(entry: Any) -> dict | None:
    """A dev-agent KV entry as python-consul2 returns it."""
    if entry is None:
        return None
    out = {
        "Key": entry.key,
        "Value": entry.value,
        "Flags": entry.flags,
        "LockIndex": entry.lock_index,
        "CreateIndex": entry.create_index,
        "ModifyIndex": entry.modify_index,
    }
    if entry.session:
        out["Session"] = entry.session
    return out


def _answer(answer: Any, error: Exception | None) -> str:
    if error is not None:
        return f"{type(error).__name__}"
    if isinstance(answer, tuple):  # a key read: (index, entry)
        index, entry = answer
        holder = (entry or {}).get("Session", "")
        return f"index {index}, held by {holder[:8] or 'nobody'}"
    if isinstance(answer, str):
        return answer[:8]
    return repr(answer)


def _describe(step: Any) -> str:
    name = type(step).__name__
    if isinstance(step, st.ReadKey):
        return f"{name}(index={step.index})"
    if isinstance(step, st.Pause):
        return f"{name}({step.seconds:g}s)"
    session = getattr(step, "session", None)
    return f"{name}({session[:8]})" if session else name


#: What random schedules draw their settings from: the article's ratio scaled down, no
#: lock-delay, and TTLs short and long next to the pacing constants.
RANDOM_SETTINGS = (
    ElectionSettings(ttl=1.0, behavior="delete", lock_delay=1.5),
    ElectionSettings(ttl=1.0, behavior="release", lock_delay=0),
    ElectionSettings(ttl=10.0, behavior="delete", lock_delay=15.0),
    ElectionSettings(ttl=0.2, behavior="release", lock_delay=0.3),
)


def random_schedule(seed: int) -> World:
    """One seeded schedule: 2-4 candidates, random interleaving, random stops, crashes,
    pauses and restarts, then every node stopped.  Raises :class:`Violation`."""
    rng = random.Random(seed)
    settings = rng.choice(RANDOM_SETTINGS)
    world = World(settings, seed=seed, horizon_s=3 * settings.crash_bound + 2)
    for number in range(rng.randint(2, 4)):
        world.add_node(f"node{number + 1:02d}")
    try:
        world.run(random_faults=rng.choice((0.01, 0.03, 0.1)), max_faults=rng.randint(1, 5))
        world.stop_all()
    except Violation as exc:
        raise Violation(
            f"schedule with seed {seed} broke an invariant (replay: .venv/bin/python "
            f"bench/interleavings.py --seed {seed} --schedules 1): {exc}"
        ) from None
    return world
