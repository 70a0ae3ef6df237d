"""start-tutorial.sh: an agent is ready, JupyterLab serves notebooks/, and the agent it
started is stopped when JupyterLab exits.

It runs the real script on this repository's .venv (already set up by run-tests.sh), with the
embedded agent on a free port, and stops it the way closing it does: a signal to its group.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from binder_support import REPO, free_port, live_members, port_open, stop_group

SCRIPT = REPO / "start-tutorial.sh"
SYSTEM_PATH = "/usr/bin:/bin"

pytestmark = pytest.mark.skipif(
    Path(sys.prefix).resolve() != (REPO / ".venv").resolve(),
    reason="start-tutorial.sh uses the repository's .venv: run this test with it (./run-tests.sh)",
)


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.load(response)


def wait_for(url: str, deadline: float) -> object:
    """GET ``url`` until it answers (as JSON) or ``deadline`` passes."""
    while True:
        try:
            return get_json(url)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_opens_jupyterlab_with_an_agent_and_stops_the_agent_on_exit(tmp_path: Path) -> None:
    if shutil.which("consul", path=SYSTEM_PATH):
        pytest.skip(f"a consul binary is installed in {SYSTEM_PATH}")
    agent_port, lab_port, token = free_port(), free_port(), secrets.token_hex(8)
    env = {
        **os.environ,
        "PATH": SYSTEM_PATH,
        "CONSUL_HTTP_ADDR": f"127.0.0.1:{agent_port}",
        "ELECT_SESSION_TTL_MIN": "250ms",
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    log = tmp_path / "start-tutorial.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                str(SCRIPT),
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={lab_port}",
                f"--IdentityProvider.token={token}",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        lab = f"http://127.0.0.1:{lab_port}"
        status = wait_for(f"{lab}/api/status?token={token}", deadline)
        assert status["kernels"] == 0
        assert get_json(f"http://127.0.0.1:{agent_port}/v1/status/leader") == "127.0.0.1:8300"
        self_info = get_json(f"http://127.0.0.1:{agent_port}/v1/agent/self")
        assert self_info["DebugConfig"]["SessionTTLMin"] == "250ms"
        listing = get_json(f"{lab}/api/contents/?token={token}")
        served = {entry["name"] for entry in listing["content"]}
        root = REPO / "notebooks" if (REPO / "notebooks").is_dir() else REPO
        assert {name for name in served if name.endswith(".ipynb")} == {
            path.name for path in root.glob("*.ipynb")
        }
        assert "README.md" not in served or root == REPO

        os.killpg(proc.pid, signal.SIGTERM)  # what closing the terminal or a kill does
        proc.wait(timeout=30)
    finally:
        stop_group(proc.pid)
        ready = re.search(r"agent ready at \S+ \(pid (\d+)\)", log.read_text())
        # The agent runs in its own session (so Ctrl-C reaches JupyterLab only): its group.
        agent_left = bool(ready) and live_members(int(ready[1])) != []
        if agent_left:
            stop_group(int(ready[1]))
    output = log.read_text()
    assert ready, output
    assert "embedded agent" in output
    assert f"stopped the embedded agent (pid {ready[1]})" in output
    assert not agent_left, "the agent outlived JupyterLab"
    assert not port_open(agent_port)
    assert live_members(proc.pid) == []
