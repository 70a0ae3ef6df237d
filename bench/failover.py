"""Failover figures for simulated nodes (issue 3, "Performance"); prints, asserts nothing.

    .venv/bin/python bench/failover.py [--trials 20] [--crash-trials 6] [--nodes 50]
                                       [--idle-seconds 10] [--address HOST:PORT]

Without ``--address`` it runs an embedded dev agent in this process with
``session_ttl_min`` lowered to 100ms, so the article's configuration can be measured with
short TTLs.  Hand-over times are taken from the event timeline: from the controller's
signal to the leader until another node logs ``elected`` (it holds the lock).

- graceful hand-over (SIGTERM), article config: p50/p95, target p95 <= 100 ms;
- crash hand-over (SIGKILL), ``--tuned`` (1 s check, lock-delay 0): target p95 <= check
  interval + lock-delay + 250 ms;
- crash hand-over with the article's configuration scaled down (TTL 1s, lock-delay 1s):
  compared with 2 x TTL + lock-delay;
- N nodes: time to start all, then CPU (% of one core) and memory of the node processes
  while idle.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from elect_helpers.cluster import Cluster

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def summary(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50) * 1000:7.1f} ms   p95 {percentile(values, 95) * 1000:7.1f} ms"
        f"   max {max(values) * 1000:7.1f} ms   (n={len(values)})"
    )


def handover(cluster: Cluster, action: str, timeout: float) -> float:
    """Signal the current leader (stop or kill); seconds until another node is elected."""
    leader = cluster.wait_for_leader(timeout=timeout).node
    getattr(cluster, action)(leader)
    signalled = max(
        e["time"] for e in cluster.timeline() if e["node"] == leader and e["event"] == "signal"
    )
    successor = cluster.wait_for_leader(timeout=timeout, other_than=leader).node
    elected = cluster.wait_for_event(successor, "elected", timeout=timeout, after=signalled - 0.001)
    cluster.start(leader)  # back to full strength for the next trial
    return elected["time"] - signalled


def measure_handovers(
    address: str, action: str, trials: int, timeout: float, **options: object
) -> list[float]:
    service = f"bench-{action}-{os.getpid()}"
    with Cluster(service, address=address, **options) as cluster:
        cluster.start_many(3)
        return [handover(cluster, action, timeout) for _ in range(trials)]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def rss_bytes(pids: list[int]) -> int:
    return sum(int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE for pid in pids)


def measure_many(address: str, count: int, idle_seconds: float) -> None:
    with Cluster(f"bench-many-{os.getpid()}", address=address) as cluster:
        began = time.monotonic()
        statuses = cluster.start_many(count)
        started = time.monotonic() - began
        cluster.wait_for_leader(timeout=30)
        pids = [s.pid for s in statuses if s.pid]
        startup_cpu = cpu_seconds(pids) / count
        time.sleep(2)  # let start-up work (imports, first checks) settle
        cpu0, wall0 = cpu_seconds(pids), time.monotonic()
        time.sleep(idle_seconds)
        cpu = (cpu_seconds(pids) - cpu0) / (time.monotonic() - wall0)
        rss = rss_bytes(pids)
        print(f"{count} nodes (article config, resource writes on):")
        print(
            f"  start all (parallel, until registered): {started:.2f} s; each node used "
            f"{startup_cpu:.2f} CPU-s to get there ({os.cpu_count()} CPUs, load average "
            f"{os.getloadavg()[0]:.1f})"
        )
        print(
            f"  idle CPU of all node processes over {idle_seconds:g} s: "
            f"{cpu * 100:.2f} % of one core (target <= 10 %)"
        )
        print(f"  memory: {rss / 2**20:.0f} MiB RSS total, {rss / count / 2**20:.1f} MiB per node")


@contextlib.contextmanager
def agent(address: str | None) -> Iterator[str]:
    if address:
        print(f"agent: existing agent at {address}")
        yield address
        return
    from elect_helpers.devagent import DevAgent

    logging.getLogger("elect_helpers").setLevel(logging.ERROR)  # lock-delay refusals etc.
    with DevAgent(port=0, session_ttl_min="100ms") as dev:
        print(f"agent: embedded dev agent at {dev.address} (session_ttl_min 100ms)")
        yield dev.address


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="graceful and tuned trials")
    parser.add_argument("--crash-trials", type=int, default=6, help="article-config trials")
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--address", help="use this agent instead of an embedded one")
    args = parser.parse_args()
    with agent(args.address) as address:
        graceful = measure_handovers(address, "stop", args.trials, 20)
        print("graceful hand-over (SIGTERM, article config ttl 10s, lock-delay 15s):")
        print(f"  {summary(graceful)}   target p95 <= 100 ms")

        tuned = measure_handovers(address, "kill", args.trials, 20, tuned=True)
        print("crash hand-over (SIGKILL, --tuned: bound to a 1s check, lock-delay 0):")
        print(f"  {summary(tuned)}   target p95 <= 1250 ms (interval + lock-delay + 250 ms)")

        ttl, delay = 1.0, 1.0
        article = measure_handovers(
            address, "kill", args.crash_trials, 30, ttl=ttl, lock_delay=delay
        )
        bound = 2 * ttl + delay
        print(
            f"crash hand-over (SIGKILL, article config scaled: ttl {ttl:g}s, "
            f"lock-delay {delay:g}s):"
        )
        print(f"  {summary(article)}")
        print(
            f"  bound 2 x TTL + lock-delay = {bound:g} s; ratio p50 "
            f"{percentile(article, 50) / bound:.2f}, max {max(article) / bound:.2f}"
        )
        measure_many(address, args.nodes, args.idle_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
