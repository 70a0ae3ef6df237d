"""Mixed chaos run: Python and Go candidates in one election, random faults, safety checked.

Usage::

    .venv/bin/python bench/mixed_chaos.py                    # 3 minutes, tuned config
    .venv/bin/python bench/mixed_chaos.py --duration 30 --seed 42

The same run as ``bench/chaos.py`` (its fault injector, holder watch and checker), with five
candidates of three kinds: three Python nodes (``Election``), one article-style Go program
and one ``api.Lock`` candidate (``interop/go``, built first; Go is required).  Besides the
checker's figures it prints the hand-over times by direction: for every leader change per
Consul, from the fault that ended the old leader's leadership (SIGKILL, SIGTERM, SIGSTOP) to
the moment the watch saw the new holder, grouped as Python->Python, Python->Go, Go->Python
and Go->Go, and by fault kind.

A 3-minute run on the shared 2-core machine (seed 1835460024: 28 kills, 25 SIGTERMs, 35
freezes, 50 restarts; all five led): 0 fenced writes out of order (857 accepted, 14 stale
ones refused), 0 Consul-side double holders, 0 orphans, 55 leader changes. Median hand-over
after SIGTERM: Python->Python 0.01 s, Python->Go 0.01 s, Go->Python 0.07 s; after SIGKILL
0.60 s, 0.20 s, 0.66 s (bound check, 1 s interval).  The Go side is not slower to take over.

Exit status: 0 when safe, 1 on a safety violation, 2 on bad arguments or when it cannot run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import chaos
from chaos_checker import Fault, History, HolderSample, check

from elect_helpers import gonodes
from elect_helpers.cluster import Cluster
from elect_helpers.devagent import DevAgent
from elect_helpers.errors import ClusterError

#: The five candidates: name -> program.
CANDIDATES = {
    "node01": "python",
    "node02": "python",
    "node03": "python",
    "node04": "article",
    "node05": "golock",
}


class MixedInjector(chaos.Injector):
    """chaos.Injector, starting each candidate with its program (restarts keep it)."""

    def start_all(self, count: int) -> None:
        at = time.time()
        for program in dict.fromkeys(CANDIDATES.values()):
            names = [n for n, p in CANDIDATES.items() if p == program]
            self.cluster.start_many(names, program=program)
        for name in CANDIDATES:
            self.record("start", name, at)
        self.refresh()


def find_orphans(pids: set[int], marker: str) -> list[str]:
    """Processes of this run still present after it: any process whose command line names
    this run's events directory (every node's ``--events`` does, Python or Go), and known
    node pids that are still our children (an unreaped zombie).  Unlike chaos.find_orphans
    it does not count a known pid taken since by an unrelated process: with pid_max 32768
    on a busy shared machine, pids come round again within minutes."""
    found = {int(o.split()[1]) for o in chaos.find_orphans(set(), marker)}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid():
            found.add(pid)
    return [f"pid {pid}" for pid in sorted(found)]


def language(node: str | None) -> str:
    return "Go" if CANDIDATES.get(node or "") in gonodes.GO_PROGRAMS else "Python"


def handovers(samples: list[HolderSample], faults: list[Fault]) -> dict[tuple[str, str], list]:
    """(direction, fault kind) -> hand-over seconds, for each change of holder per Consul
    that a fault on the old holder explains (the latest fault on it before the change)."""
    found: dict[tuple[str, str], list[float]] = defaultdict(list)
    previous: HolderSample | None = None
    for sample in samples:
        if not sample.session or not sample.node:
            continue
        if previous is not None and sample.session != previous.session:
            ended = [
                f
                for f in faults
                if f.node == previous.node
                and f.kind in ("kill", "term", "pause")
                and previous.time <= f.time <= sample.time
            ]
            if ended and sample.node != previous.node:
                fault = ended[-1]
                direction = f"{language(previous.node)}->{language(sample.node)}"
                found[(direction, fault.kind)].append(sample.time - fault.time)
        previous = sample
    return found


def handover_lines(found: dict[tuple[str, str], list[float]]) -> list[str]:
    lines = ["hand-over times by direction (fault on the leader -> new holder seen by the watch):"]
    directions = ["Python->Python", "Python->Go", "Go->Python", "Go->Go"]
    for direction in directions:
        for kind, label in (("term", "SIGTERM"), ("kill", "SIGKILL"), ("pause", "SIGSTOP")):
            times = found.get((direction, kind), [])
            if not times:
                lines.append(f"  {direction:<15} {label:<8} n=0")
                continue
            median = statistics.median(times)
            lines.append(
                f"  {direction:<15} {label:<8} n={len(times):<3} median {median:.2f} s"
                f"  max {max(times):.2f} s"
            )
    return lines


def run(args: argparse.Namespace) -> int:
    if not args.verbose:
        logging.getLogger("elect_helpers.devagent").setLevel(logging.ERROR)
    gonodes.build()
    rng = random.Random(args.seed)
    print(
        f"mixed chaos: seed={args.seed} duration={args.duration:g}s candidates="
        + ",".join(f"{n}:{p}" for n, p in CANDIDATES.items())
        + f" config={args.config} ttl={args.ttl} lock-delay={args.lock_delay}"
        f" session_ttl_min={args.session_ttl_min}",
        flush=True,
    )
    options = {"ttl": args.ttl, "lock_delay": args.lock_delay, "behavior": "delete"}
    if args.config == "tuned":
        options["tuned"] = True
    events_dir = tempfile.mkdtemp(prefix="mixed-chaos-run-")
    with DevAgent(port=0, session_ttl_min=args.session_ttl_min) as agent:
        cluster = Cluster(chaos.SERVICE, events_dir=events_dir, address=agent.address, **options)
        injector = MixedInjector(cluster, rng, args.ttl_s)
        watch = chaos.HolderWatch(agent.address, cluster.key)
        try:
            watch.start()
            injector.start_all(len(CANDIDATES))
            cluster.wait_for_leader(timeout=60)
            start = time.time()
            deadline = start + args.duration
            next_fault = time.time() + rng.uniform(args.fault_min, args.fault_max)
            while time.time() < deadline and injector.injected < args.max_faults:
                wake = min([next_fault, deadline, *injector.resume_at.values()])
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
            fenced = [chaos._write(r) for r in cluster.resource.fenced.history()]
            unfenced = [chaos._write(r) for r in cluster.resource.unfenced.history()]
        finally:
            watch.stop()
            cluster.close()
        events = cluster.timeline()
    orphans = find_orphans(injector.pids, events_dir)
    shutil.rmtree(events_dir, ignore_errors=True)
    history = History(
        start=start,
        end=end,
        bounds=chaos.bounds_for(args),
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
        + ", ".join(f"{k}={kinds.count(k)}" for k in ("kill", "term", "pause", "restart"))
        + f"; holder samples: {len(watch.samples)} (watch errors {watch.errors})"
    )
    led = sorted({e["node"] for e in events if e.get("event") == "elected"})
    print("nodes that led: " + ", ".join(f"{n} ({CANDIDATES[n]})" for n in led))
    for line in report.lines():
        print(line)
    for line in handover_lines(handovers(watch.samples, injector.faults)):
        print(line)
    violations = report.violations()
    print("result: " + ("SAFE" if not violations else "UNSAFE: " + "; ".join(violations)))
    return 1 if violations else 0


def main(argv: list[str] | None = None) -> int:
    args = chaos.parse_args(argv)
    missing = gonodes.go_missing()
    if missing:
        print(f"mixed chaos: needs the Go candidates: {missing}", file=sys.stderr)
        return 2
    try:
        return run(args)
    except ClusterError as exc:
        print(f"mixed chaos: could not run the cluster: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
