"""Host figures (issue 12): how fast a datacenter notices a lost host; 20 hosts at rest.

    .venv/bin/python bench/hosts.py [--rounds 3] [--hosts 20] [--idle-seconds 10]
                                    [--only loss|paths|many]

Each part starts its own server (the embedded agent in a child process, session_ttl_min
500ms) and a :class:`~elect_helpers.cluster.Cluster` with ``hosts=True``: every node runs on
its own client agent.  Prints, asserts nothing.

- ``loss``: host-loss hand-over with a production agent's gossip (memberlist's LAN defaults:
  probe 1s, timeout 500ms, suspicion_mult 4) and with ``consul agent -dev``'s (100ms, 100ms,
  3): from the SIGKILL of the leader's host (agent + node) to its ``serfHealth`` critical,
  and to the new leader (TTL 10s, lock-delay 0, so the figure is the detection itself), next
  to the model's window from silence to "failed";
- ``paths``: the four hand-over paths side by side in one run (dev gossip, TTL 1s where the
  TTL decides, lock-delay 1s): process crash (TTL), hung process with a bound check, host
  crash, host freeze;
- ``many``: start N hosts (agent + node, article settings) at once, with dev and with LAN
  gossip; the time until all are registered, then the CPU (% of one core) of server +
  agents + nodes while idle.

Figures of one run on the 2-core development machine (shared with other work), 2026-12-02,
``.venv/bin/python bench/hosts.py``:

- host loss, LAN gossip (model window 5.0-6.0 s): SIGKILL -> serfHealth critical median
  5.66 s (5.65-5.66), -> new leader 5.66 s; dev gossip (window 0.40-0.50 s): 0.49 s
  (0.45-0.51), -> new leader 0.49 s;
- four paths (TTL 1 s for (a), 5 s after; lock-delay 1 s): (a) 2.98 s, (b) 3.15 s,
  (c) 1.59 s, (d) 1.61 s;
- 20 hosts: all registered in 5.1 s (dev gossip) / 5.8 s (LAN), within the 20 s target;
  idle CPU in total 50 % of one core with dev gossip (server 18.5 %, agents 20.6 %, nodes
  1.2 %, the controller's network links 10.1 %) and 9.4 % with LAN gossip (2.8 %, 3.9 %,
  1.2 %, 1.5 %).  With 100 ms probes the server pings every client 10 times a second, each
  over a new TCP connection (devagent/pingwire.py) that also crosses the host's link proxy:
  that is where the time goes.  The 15 % target holds with a production agent's 1 s probes;
  with ``consul agent -dev``'s 100 ms probes it does not (reported, not fixed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from elect_helpers.cluster import Cluster
from elect_helpers.devagent.gossip import DEV_GOSSIP, LAN_GOSSIP, GossipConfig
from elect_helpers.devagent.hostprocess import ServerAgentProcess

TICKS = os.sysconf("SC_CLK_TCK")
PATIENCE = 60.0


def wait_until(condition: Callable[[], object], timeout: float = PATIENCE) -> float:
    """Poll ``condition`` every 10 ms; return the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition still false after {timeout:g}s")
        time.sleep(0.01)
    return time.monotonic()


def settled_leader(cluster: Cluster) -> tuple[str, str]:
    """The leader Consul names once it also believes it leads, and its session."""
    info = cluster.wait_for_leader(timeout=PATIENCE)
    wait_until(lambda: cluster.status(info.node).believes == "leader")
    return info.node, info.session


def host_loss(gossip: GossipConfig, label: str, rounds: int) -> None:
    """SIGKILL the leader's host ``rounds`` times; print detection and hand-over times."""
    server = ServerAgentProcess(gossip=gossip, session_ttl_min="500ms", log_level="warn")
    with (
        server,
        Cluster(
            f"bench-loss-{label}",
            address=server.address,
            resource=False,
            hosts=True,
            ttl=10.0,
            lock_delay=0.0,
        ) as cluster,
    ):
        cluster.start_many(["node01", "node02", "node03"])
        critical, leader_after = [], []
        for _ in range(rounds):
            leader, _session = settled_leader(cluster)
            crashed = time.monotonic()
            cluster.crash_host(leader)
            seen = wait_until(lambda: cluster.status(leader).serf_health == "critical")  # noqa: B023
            cluster.wait_for_leader(timeout=PATIENCE, other_than=leader)
            critical.append(seen - crashed)
            leader_after.append(time.monotonic() - crashed)
            cluster.restart(leader)
    low, high = (ns / 1e9 for ns in gossip.detection_bounds_ns(4))
    print(
        f"host loss, {label} gossip (probe {gossip.probe_interval_ns / 1e9:g}s, suspicion_mult "
        f"{gossip.suspicion_mult}; model window {low:.2f}-{high:.2f}s), {rounds} rounds:"
    )
    print(f"  SIGKILL -> serfHealth critical: {_summary(critical)}")
    print(f"  SIGKILL -> new leader:          {_summary(leader_after)}")


def four_paths() -> None:
    """The four hand-over paths on one cluster of hosts, one after the other."""
    ttl, lock_delay, long_ttl = 1.0, 1.0, 5.0
    results: dict[str, float] = {}
    with (
        ServerAgentProcess(session_ttl_min="500ms", log_level="warn") as server,
        Cluster(
            "bench-paths",
            address=server.address,
            hosts=True,
            ttl=ttl,
            lock_delay=lock_delay,
        ) as cluster,
    ):
        cluster.start_many(["node01", "node02", "node03"])

        def measure(label: str, act: Callable[[str], object]) -> str:
            leader, _ = settled_leader(cluster)
            started = time.monotonic()
            act(leader)
            cluster.wait_for_leader(timeout=PATIENCE, other_than=leader)
            results[label] = time.monotonic() - started
            return leader

        node = measure("(a) process crash, TTL decides", cluster.kill)
        cluster.restart(node)
        for name in cluster.names():
            cluster.restart(name, ttl=long_ttl, bind_check=True, check_interval=1.0)
        node = measure("(b) hung process, bound check", cluster.pause)
        cluster.resume(node)
        node = measure("(c) host crash, serfHealth", cluster.crash_host)
        cluster.restart(node)
        node = measure("(d) host freeze, serfHealth", cluster.freeze_host)
        cluster.thaw_host(node)
    print(
        f"four paths, dev gossip, TTL {ttl:g}s for (a) and {long_ttl:g}s after, "
        f"lock-delay {lock_delay:g}s (kill/freeze -> new leader):"
    )
    for label, seconds in results.items():
        print(f"  {label:<34} {seconds:5.2f} s")


def many_hosts(count: int, idle_seconds: float, gossip: GossipConfig, label: str) -> None:
    """Start ``count`` hosts at once; print start time and idle CPU of every process."""
    server = ServerAgentProcess(gossip=gossip, session_ttl_min="500ms", log_level="warn")
    with (
        server,
        Cluster(
            "bench-many", address=server.address, resource=False, hosts=True, start_timeout=60
        ) as cluster,
    ):
        names = [f"node{i:02d}" for i in range(1, count + 1)]
        started = time.monotonic()
        cluster.start_many(names)
        took = time.monotonic() - started
        assert cluster.hosts is not None
        pids = {"server": [server.pid]}
        pids["agents"] = [h.process.pid for n in names if (h := cluster.hosts.get(n))]
        pids["nodes"] = [s.pid for s in cluster.nodes() if s.pid]
        pids["links"] = [os.getpid()]  # this process: the hosts' network links (proxies)
        time.sleep(2.0)  # let start-up work (first checks, campaigns) finish
        before = {kind: _cpu_ticks(p) for kind, p in pids.items()}
        time.sleep(idle_seconds)
        after = {kind: _cpu_ticks(p) for kind, p in pids.items()}
    print(f"{count} hosts (agent + node, article settings, {label} gossip):")
    print(f"  start, all registered: {took:.2f} s")
    total = 0.0
    for kind in pids:
        share = 100.0 * (after[kind] - before[kind]) / TICKS / idle_seconds
        total += share
        print(f"  idle CPU, {kind:<6} ({len(pids[kind]):>2} processes): {share:5.1f} % of one core")
    print(f"  idle CPU, total: {total:.1f} % of one core")


def _cpu_ticks(pids: list[int | None]) -> int:
    """utime + stime of the processes, in clock ticks."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total


def _summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.2f} s, min {min(values):.2f} s, "
        f"max {max(values):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--only", choices=("loss", "paths", "many"))
    args = parser.parse_args()
    if args.only in (None, "loss"):
        host_loss(LAN_GOSSIP, "production (LAN)", args.rounds)
        host_loss(DEV_GOSSIP, "consul agent -dev", args.rounds)
    if args.only in (None, "paths"):
        four_paths()
    if args.only in (None, "many"):
        many_hosts(args.hosts, args.idle_seconds, DEV_GOSSIP, "consul agent -dev")
        many_hosts(args.hosts, args.idle_seconds, LAN_GOSSIP, "production (LAN)")


if __name__ == "__main__":
    main()
