"""Chaos run: five node processes, random crashes, stops, freezes and network partitions,
and a safety checker.

Usage::

    .venv/bin/python bench/chaos.py                     # 3 minutes, tuned config
    .venv/bin/python bench/chaos.py --duration 30 --seed 42 --config article

It starts the embedded dev agent in-process (loopback, a low ``session_ttl_min``) and a
:class:`~elect_helpers.cluster.Cluster` of node processes that write to a fenced and an
unfenced resource while they lead.  Every 0.5-2 s it injects one fault: SIGKILL, SIGTERM,
SIGSTOP for a random time (often longer than the TTL, then SIGCONT), a partition for a
random time (the node is cut off from the agent by :meth:`Cluster.partition` and keeps
running and writing, then :meth:`Cluster.heal`), or a restart of a dead node.  Meanwhile
it records who Consul says holds the leader key (a blocking watch), every
node's events and every resource write, and finally prints one line per figure of
``bench/chaos_checker.py``.  The run is bounded in time (``--duration``) and in faults
(``--max-faults``); the random seed is printed so a run can be repeated.

Exit status: 0 when safe, 1 on a safety violation (fenced writes out of order, Consul-side
double holders, orphan processes, stale unfenced writes after a partition), 2 on bad
arguments or when the run could not start.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import asdict
from pathlib import Path

from chaos_checker import Bounds, Fault, History, HolderSample, Write, check

from elect_helpers.cluster import Cluster
from elect_helpers.devagent import DevAgent
from elect_helpers.durations import DurationError, parse_duration, to_seconds
from elect_helpers.errors import ClusterError

SERVICE = "chaos"


# -- the Consul-side record -----------------------------------------------------------------


class HolderWatch:
    """Follows the leader key with blocking queries and records every answer.

    When the holder changes from one session to another it asks Consul at once whether
    the previous session still exists (the checker's double-holder evidence).
    """

    def __init__(self, address: str, key: str, wait: str = "2s") -> None:
        self._address = address
        self._path = "/v1/kv/" + urllib.parse.quote(key)
        self._wait = wait
        self.samples: list[HolderSample] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="holder-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        host, port = self._address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def _session_alive(self, session: str) -> bool | None:
        try:
            status, _, body = self._get("/v1/session/info/" + session)
        except OSError:
            return None
        return status == 200 and bool(json.loads(body))

    def _run(self) -> None:
        index = 0
        last_held: str | None = None
        while not self._stop.is_set():
            query = f"?index={index}&wait={self._wait}" if index else ""
            try:
                status, headers, body = self._get(self._path + query)
            except OSError:
                self.errors += 1
                time.sleep(0.05)
                continue
            seen = time.time()
            new_index = int(headers.get("X-Consul-Index", "0") or 0)
            index = 0 if new_index < index else max(new_index, 1)
            entry = json.loads(body)[0] if status == 200 else None
            session = (entry or {}).get("Session") or None
            previous_alive = None
            if session and last_held and session != last_held:
                previous_alive = self._session_alive(last_held)
            self.samples.append(
                HolderSample(
                    time=seen,
                    session=session,
                    node=_value_node(entry),
                    create_index=entry.get("CreateIndex") if entry else None,
                    lock_index=entry.get("LockIndex") if entry else None,
                    previous_alive=previous_alive,
                )
            )
            if session:
                last_held = session
            elif status not in (200, 404):
                self.errors += 1
                time.sleep(0.05)


def _value_node(entry: dict | None) -> str | None:
    """The node name in the leader key's JSON value, if it has one."""
    if not entry or not entry.get("Value"):
        return None
    try:
        value = json.loads(base64.b64decode(entry["Value"]))
    except ValueError:
        return None
    return value.get("node") if isinstance(value, dict) else None


# -- fault injection ------------------------------------------------------------------------


class Injector:
    """Chooses and applies faults; keeps the fault log the checker reads."""

    def __init__(
        self, cluster: Cluster, rng: random.Random, ttl: float, partitions: bool = True
    ) -> None:
        self.cluster = cluster
        # kill, term, pause, partition
        self.weights = [30, 20, 30, 20] if partitions else [35, 25, 40, 0]
        self.rng = rng
        self.ttl = ttl
        self.faults: list[Fault] = []
        self.resume_at: dict[str, float] = {}
        self.heal_at: dict[str, float] = {}
        self.pids: set[int] = set()
        self.states: dict[str, str] = {}
        self.injected = 0

    def record(self, kind: str, node: str, at: float | None = None) -> None:
        self.faults.append(Fault(at if at is not None else time.time(), kind, node))

    def refresh(self) -> None:
        """Notice processes that exited without being told to (recorded as ``exited``)."""
        for status in self.cluster.nodes():
            if status.pid:
                self.pids.add(status.pid)
            before = self.states.get(status.name)
            if before in ("running", "paused") and status.state not in ("running", "paused"):
                self.record("exited", status.name)
            self.states[status.name] = status.state

    def start_all(self, count: int) -> None:
        names = [f"node{i:02d}" for i in range(1, count + 1)]
        at = time.time()
        self.cluster.start_many(names)
        for name in names:
            self.record("start", name, at)
        self.refresh()

    def resume_due(self, now: float) -> None:
        for name, when in sorted(self.resume_at.items()):
            if when <= now:
                del self.resume_at[name]
                self.cluster.resume(name)
                self.states[name] = "running"
                self.record("resume", name)
        for name, when in sorted(self.heal_at.items()):
            if when <= now:
                del self.heal_at[name]
                self.cluster.heal(name)
                self.record("heal", name)
        self.refresh()

    def inject(self) -> str:
        """Apply one random fault; return a short description."""
        running = [n for n, s in self.states.items() if s == "running" and n not in self.heal_at]
        dead = [n for n, s in self.states.items() if s not in ("running", "paused")]
        self.injected += 1
        if dead and (len(running) < 2 or self.rng.random() < 0.3):
            name = self.rng.choice(sorted(dead))
            self.record("restart", name)  # from launch: the checker allows start-up time
            self.cluster.start(name)
            self.states[name] = "running"
            self.refresh()
            return f"restart {name}"
        if len(running) < 2:
            return "none (waiting for paused nodes)"
        leader = self.cluster.leader()
        target = self.rng.choice(sorted(running))
        if leader is not None and leader.node in running and self.rng.random() < 0.6:
            target = leader.node
        kind = self.rng.choices(["kill", "term", "pause", "partition"], weights=self.weights)[0]
        self.record(kind, target)
        if kind == "kill":
            self.cluster.kill(target)
            self.states[target] = "killed"
        elif kind == "term":
            self.cluster.stop(target, timeout=5.0)
            self.states[target] = "stopped"
        elif kind == "partition":
            cut = self.rng.uniform(0.1 * self.ttl, 4.0 * self.ttl)
            self.cluster.partition(target)
            self.heal_at[target] = time.time() + cut
            kind = f"partition {cut:.2f}s"
        else:
            pause = self.rng.uniform(0.1 * self.ttl, 4.0 * self.ttl)
            self.cluster.pause(target)
            self.states[target] = "paused"
            self.resume_at[target] = time.time() + pause
            kind = f"pause {pause:.2f}s"
        self.refresh()
        return f"{kind} {target}"

    def resume_all(self) -> None:
        for name in sorted(self.resume_at):
            self.cluster.resume(name)
            self.record("resume", name)
        self.resume_at.clear()
        for name in sorted(self.heal_at):
            self.cluster.heal(name)
            self.record("heal", name)
        self.heal_at.clear()


# -- orphans --------------------------------------------------------------------------------


def find_orphans(pids: set[int], marker: str) -> list[str]:
    """Processes of this run still present: known node pids that exist (also as zombies),
    and any process whose command line mentions this run's events directory."""
    found = set()
    for pid in pids:
        if Path(f"/proc/{pid}").exists():
            found.add(pid)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.add(int(proc.name))
    return [f"pid {pid}" for pid in sorted(found)]


# -- the run --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of faults (180)")
    parser.add_argument("--seed", type=int, help="random seed (default: a fresh one, printed)")
    parser.add_argument("--nodes", type=int, default=5, help="node processes (5)")
    parser.add_argument(
        "--config",
        choices=("tuned", "article"),
        default="tuned",
        help="tuned: session bound to a 1s check, no lock-delay; article: TTL only (tuned)",
    )
    parser.add_argument("--ttl", default="1s", help="session TTL of every node (1s)")
    parser.add_argument(
        "--lock-delay", help="lock-delay (tuned: 0s; article: 1s, scaled down from 15s)"
    )
    parser.add_argument(
        "--session-ttl-min", default="100ms", help="the agent's session_ttl_min (100ms)"
    )
    parser.add_argument(
        "--fault-min", type=float, default=0.5, help="shortest gap between faults, s (0.5)"
    )
    parser.add_argument(
        "--fault-max", type=float, default=2.0, help="longest gap between faults, s (2)"
    )
    parser.add_argument(
        "--max-faults", type=int, help="stop after this many faults (duration / fault-min)"
    )
    parser.add_argument(
        "--slack", type=float, default=1.5, help="seconds added to every expected window (1.5)"
    )
    parser.add_argument(
        "--startup", type=float, default=3.0, help="seconds a (re)started node may take (3)"
    )
    parser.add_argument(
        "--no-partitions",
        dest="partitions",
        action="store_false",
        help="inject only kills, stops and pauses (the run before partitions existed)",
    )
    parser.add_argument("--history", help="write the recorded history to this JSON file")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print every fault and the agent's log"
    )
    args = parser.parse_args(argv)
    try:
        args.ttl_s = to_seconds(args.ttl)
        lock_delay = args.lock_delay or ("0s" if args.config == "tuned" else "1s")
        args.lock_delay_s = parse_duration(lock_delay) / 1e9
        args.lock_delay = lock_delay
        parse_duration(args.session_ttl_min)
    except (DurationError, ValueError) as exc:
        parser.error(f"{exc}; use Go durations such as 1s or 500ms")
    if not 0 < args.duration <= 3600:
        parser.error("--duration must be between 0 and 3600 seconds")
    if not 2 <= args.nodes <= 20:
        parser.error("--nodes must be between 2 and 20")
    if not 0 < args.fault_min <= args.fault_max:
        parser.error("need 0 < --fault-min <= --fault-max")
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "big")
    if args.max_faults is None:
        args.max_faults = int(args.duration / args.fault_min) + 1
    return args


def bounds_for(args: argparse.Namespace) -> Bounds:
    """Expected windows: crash/pause detection through the TTL (2 x TTL) or, when tuned,
    the 1 s check with its 1 s timeout, whichever is first; then lock-delay and slack.
    A partition leaves the node's check passing (the agent still reaches the node), so
    only the TTL path frees the lock: 2 x TTL, lock-delay, slack."""
    detection = 2 * args.ttl_s
    if args.config == "tuned":
        detection = min(detection, 2.0)
    return Bounds(
        detection=detection + args.lock_delay_s + args.slack,
        handover=args.slack,
        startup=args.startup,
        partition=2 * args.ttl_s + args.lock_delay_s + args.slack,
    )


def run(args: argparse.Namespace) -> int:
    if not args.verbose:  # the agent logs every lock-delay refusal; keep the summary readable
        logging.getLogger("elect_helpers.devagent").setLevel(logging.ERROR)
    rng = random.Random(args.seed)
    print(
        f"chaos: seed={args.seed} duration={args.duration:g}s nodes={args.nodes}"
        f" config={args.config} ttl={args.ttl} lock-delay={args.lock_delay}"
        f" session_ttl_min={args.session_ttl_min} partitions={'on' if args.partitions else 'off'}",
        flush=True,
    )
    options = {"ttl": args.ttl, "lock_delay": args.lock_delay, "behavior": "delete"}
    if args.config == "tuned":
        options["tuned"] = True
    events_dir = tempfile.mkdtemp(prefix="chaos-run-")
    with DevAgent(port=0, session_ttl_min=args.session_ttl_min) as agent:
        cluster = Cluster(SERVICE, events_dir=events_dir, address=agent.address, **options)
        injector = Injector(cluster, rng, args.ttl_s, args.partitions)
        watch = HolderWatch(agent.address, cluster.key)
        try:
            watch.start()
            injector.start_all(args.nodes)
            cluster.wait_for_leader(timeout=60)
            start = time.time()  # the measured window: from a first leader on
            deadline = start + args.duration
            next_fault = time.time() + rng.uniform(args.fault_min, args.fault_max)
            while time.time() < deadline and injector.injected < args.max_faults:
                wake = min(
                    [next_fault, deadline, *injector.resume_at.values(), *injector.heal_at.values()]
                )
                time.sleep(max(0.0, wake - time.time()))
                injector.resume_due(time.time())
                if time.time() >= next_fault and time.time() < deadline:
                    what = injector.inject()
                    if args.verbose:
                        print(f"  +{time.time() - start:7.2f}s {what}", flush=True)
                    next_fault = time.time() + rng.uniform(args.fault_min, args.fault_max)
            injector.resume_all()
            end = time.time()
            watch.stop()
            assert cluster.resource is not None
            fenced = [_write(r) for r in cluster.resource.fenced.history()]
            unfenced = [_write(r) for r in cluster.resource.unfenced.history()]
        finally:
            watch.stop()
            cluster.close()
        events = cluster.timeline()
    orphans = find_orphans(injector.pids, events_dir)
    shutil.rmtree(events_dir, ignore_errors=True)
    history = History(
        start=start,
        end=end,
        bounds=bounds_for(args),
        samples=watch.samples,
        faults=injector.faults,
        events=events,
        fenced=fenced,
        unfenced=unfenced,
        orphans=orphans,
    )
    if args.history:
        Path(args.history).write_text(json.dumps(asdict(history), indent=1))
    report = check(history)
    kinds = [f.kind for f in injector.faults]
    print(
        "faults: "
        + ", ".join(
            f"{k}={kinds.count(k)}" for k in ("kill", "term", "pause", "partition", "restart")
        )
        + f"; holder samples: {len(watch.samples)} (watch errors {watch.errors})"
    )
    for line in report.lines():
        print(line)
    violations = report.violations()
    print("result: " + ("SAFE" if not violations else "UNSAFE: " + "; ".join(violations)))
    return 1 if violations else 0


def _write(record: object) -> Write:
    return Write(record.time, record.writer, record.token, record.accepted)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except ClusterError as exc:
        print(f"chaos: could not run the cluster: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
