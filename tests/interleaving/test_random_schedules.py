"""Hundreds of seeded random schedules of the real Election against the dev agent's state
machine: random interleavings, stops, crashes, pauses and restarts (see ``harness``).

The base seed is printed (``-s`` shows it; pytest shows it on failure too) and can be set
with ``INTERLEAVING_SEED``; a failing schedule names its own seed and the command that
replays it.  ``bench/interleavings.py`` runs thousands.
"""

from __future__ import annotations

import os
import random

from .harness import random_schedule

SCHEDULES = 300


def test_random_schedules_keep_every_invariant() -> None:
    base = int(os.environ.get("INTERLEAVING_SEED") or random.SystemRandom().randrange(2**32))
    print(f"interleaving base seed {base} (INTERLEAVING_SEED={base} to repeat)")
    steps = 0
    for offset in range(SCHEDULES):
        world = random_schedule(base + offset)
        steps += world.steps_taken
    assert steps > SCHEDULES * 20  # the schedules really ran
