"""Stop, crash or pause a candidate at every step of its life, and check the invariants.

Three candidates run the real ``Election`` generator against the dev agent's state machine
(see ``harness``).  For the first leader and for a follower, and for every step each takes
in its first :data:`STEPS` (session create, each acquire and read, every renew, and after a
stop the release, destroy and deregister), the run is repeated with one fault there:

* ``stop`` before the step (SIGTERM; the request already decided still goes out),
* ``crash-before`` (SIGKILL before the request leaves) and ``crash-after`` (the request
  reached Consul, its answer never reached the node),
* ``pause`` for 3 x TTL (SIGSTOP, then SIGCONT),
* and, after a stop, a crash at each step of the step-down.

The world raises on any breach: two believers at one instant, a destroy that leaves a
lock-delay behind, a graceful hand-over slower than read pacing, a crash costing more than
2 x TTL + lock-delay (+ the 250 ms lock-delay re-check), a session or service left behind
by a graceful stop, a node holding the key unknowingly for more than one read.  After each
run every node is stopped and must leave nothing behind.
"""

from __future__ import annotations

import pytest

from elect_helpers.settings import ElectionSettings

from .harness import PointFault, World

STEPS = 24  # each candidate's first steps: campaign, election, first renewals
NODES = ("node01", "node02", "node03")
SETTINGS = {
    "article-scaled": ElectionSettings(ttl=1.0, behavior="delete", lock_delay=1.5),
    "release-no-delay": ElectionSettings(ttl=1.0, behavior="release", lock_delay=0),
}


def world(settings: ElectionSettings, seed: int = 7) -> World:
    w = World(settings, seed=seed, horizon_s=4 * settings.crash_bound + 5)
    for name in NODES:
        w.add_node(name)
    return w


def first_leader_and_follower(settings: ElectionSettings) -> tuple[str, str]:
    """Who wins without faults (the schedule is seeded, so it is the same every run)."""
    w = world(settings)
    w.run()
    leader = next(n for n in w.nodes if n.election.is_leader)
    follower = next(n for n in w.nodes if n is not leader)
    return leader.name, follower.name


def run_with(settings: ElectionSettings, *faults: PointFault) -> World:
    w = world(settings)
    w.run(list(faults))
    w.stop_all()
    return w


@pytest.mark.parametrize("label", list(SETTINGS))
def test_the_fault_free_schedule_elects_one_leader_and_stops_clean(label: str) -> None:
    w = world(SETTINGS[label])
    w.run()
    assert len(w.believers()) == 1
    w.stop_all()
    assert w.holder() == "" and not w.lock_delay_active()


@pytest.mark.parametrize("label", list(SETTINGS))
@pytest.mark.parametrize("role", ["leader", "follower"])
@pytest.mark.parametrize("kind", ["stop", "crash-before", "crash-after", "pause"])
def test_one_fault_at_every_step(label: str, role: str, kind: str) -> None:
    settings = SETTINGS[label]
    leader, follower = first_leader_and_follower(settings)
    target = leader if role == "leader" else follower
    reached = 0
    for at in range(STEPS):
        fault = PointFault(target, at, kind, seconds=3 * settings.ttl)
        run_with(settings, fault)  # raises harness.Violation on any breach
        reached += fault.done
    assert reached == STEPS  # every step was really reached (the fault was applied)


@pytest.mark.parametrize("label", list(SETTINGS))
@pytest.mark.parametrize("kind", ["crash-before", "crash-after", "pause"])
def test_a_fault_during_the_step_down(label: str, kind: str) -> None:
    """Stop the leader at each early step, then hit it again 1..4 steps later: during
    the release, the destroy or the deregister."""
    settings = SETTINGS[label]
    leader, _ = first_leader_and_follower(settings)
    for at in range(0, STEPS, 3):
        for later in range(1, 5):
            stop = PointFault(leader, at, "stop")
            second = PointFault(leader, at + later, kind, seconds=3 * settings.ttl)
            run_with(settings, stop, second)
