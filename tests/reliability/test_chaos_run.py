"""A short chaos run (``bench/chaos.py``) as a test: it must end safe.

Five node processes on the embedded agent, about 20 s of random SIGKILL / SIGTERM /
SIGSTOP+SIGCONT / partitions (cut off from the agent, then healed) / restarts.  The run's
own checker decides safety (exit status 0: no fenced write accepted out of order, no
Consul-side double holder, no orphan process, no stale unfenced write after a partition);
this test also makes sure the run really exercised fail-overs.  The seed is random and printed,
so a failure can be replayed with ``bench/chaos.py --seed N --duration 20``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def figure(output: str, label: str) -> int:
    match = re.search(re.escape(label) + r":\s*(\d+)", output)
    assert match, f"no {label!r} line in:\n{output}"
    return int(match.group(1))


def test_short_chaos_run_is_safe() -> None:
    result = subprocess.run(
        [sys.executable, "chaos.py", "--duration", "20"],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "result: SAFE" in output
    assert figure(output, "fenced writes accepted out of token or acquisition order") == 0
    assert figure(output, "Consul-side double holders") == 0
    assert figure(output, "orphan processes after the run") == 0
    # A cut-off leader steps down before Consul can give the lock away: it never writes stale.
    assert re.search(r"caused by: pause \d+, partition 0, other \d+", output), output
    faults = dict(re.findall(r"(kill|term|pause|partition|restart)=(\d+)", output))
    assert "partition" in faults, output
    assert sum(int(faults.get(k, 0)) for k in ("kill", "term", "pause")) >= 5, output
    assert figure(output, "leader changes per Consul") >= 2, output
