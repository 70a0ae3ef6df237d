"""Randomized interleavings of the election recipe: schedules per second and violations.

    .venv/bin/python bench/interleavings.py [--schedules 10000] [--seed N] [--trace]

Runs seeded random schedules of the real ``Election`` generator against the dev agent's
state machine on a manual clock (``tests/interleaving/harness.py``): 2-4 candidates,
random interleavings, stops, crashes, pauses and restarts, then every node stopped; the
invariants are checked after every step.  Prints the seed range, schedules per second,
steps per second and the number of violations (with the first one's seed and message).
``--seed N --schedules 1 --trace`` replays one schedule and prints all its steps.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from interleaving.harness import Violation, random_schedule


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--seed", type=int, help="first seed (default: random, printed)")
    parser.add_argument("--trace", action="store_true", help="print every step (one schedule)")
    args = parser.parse_args()
    base = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"seeds {base} .. {base + args.schedules - 1}")
    violations: list[str] = []
    steps = 0
    began = time.perf_counter()
    for seed in range(base, base + args.schedules):
        try:
            world = random_schedule(seed)
        except Violation as exc:
            violations.append(str(exc))
            continue
        steps += world.steps_taken
        if args.trace:
            print("\n".join(world.trace))
    elapsed = time.perf_counter() - began
    print(
        f"{args.schedules} schedules in {elapsed:.1f} s: {args.schedules / elapsed:.0f} "
        f"schedules/s, {steps / elapsed:.0f} steps/s"
    )
    print(f"invariant violations: {len(violations)}")
    if violations:
        print(f"first: {violations[0]}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
