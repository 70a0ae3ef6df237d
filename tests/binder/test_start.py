"""binder/start: start an agent (consul binary, else embedded), wait for it, exec the command.

Each test runs binder/start in its own process group with a probe as the command, then stops
that group and checks that no process of it is left.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from binder_support import (
    PROBE,
    REPO,
    free_port,
    live_members,
    port_open,
    stop_group,
    write_fake_consul,
)

START = REPO / "binder" / "start"
SYSTEM_PATH = "/usr/bin:/bin"


class Started:
    """The outcome of one binder/start run whose process group is still to be stopped."""

    def __init__(self, result: subprocess.CompletedProcess, pgid: int) -> None:
        self.result = result
        self.pgid = pgid

    def probe(self) -> dict:
        """The probe's answer: {"leader": ..., "ttl_min": ...}."""
        assert self.result.returncode == 0, self.result.stdout + self.result.stderr
        return json.loads(self.result.stdout.strip().splitlines()[-1])


@pytest.fixture
def run_start(tmp_path: Path) -> Iterator:
    """Run binder/start with extra env and a command; stop its process group afterwards."""
    groups: list[int] = []

    def run(env: dict[str, str], *command: str) -> Started:
        full_env = {
            **os.environ,
            "PYTHON": sys.executable,
            "CONSUL_AGENT_LOG": str(tmp_path / "agent.log"),
            "ELECT_SESSION_TTL_MIN": "250ms",
            **env,
        }
        proc = subprocess.Popen(
            [str(START), *command],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        groups.append(proc.pid)
        stdout, stderr = proc.communicate(timeout=60)
        return Started(
            subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), proc.pid
        )

    yield run
    for pgid in groups:
        stop_group(pgid)
        assert live_members(pgid) == [], "binder/start left processes behind"


def assert_agent_left_running_then_stops(started: Started, port: int) -> None:
    """binder/start leaves the agent running for JupyterLab; stopping its group ends it."""
    assert live_members(started.pgid), "the agent should outlive binder/start's command"
    assert port_open(port)
    stop_group(started.pgid)
    assert live_members(started.pgid) == []
    assert not port_open(port)


def test_runs_consul_binary_with_lowered_session_ttl_min(tmp_path: Path, run_start) -> None:
    bin_dir = tmp_path / "bin"
    write_fake_consul(bin_dir, sys.executable)
    args_file = tmp_path / "consul-args.json"
    port = free_port()

    started = run_start(
        {
            "PATH": f"{bin_dir}:{SYSTEM_PATH}",
            "FAKE_CONSUL_ARGS": str(args_file),
            "CONSUL_HTTP_ADDR": f"127.0.0.1:{port}",
        },
        sys.executable,
        "-c",
        PROBE,
    )

    assert started.probe() == {"leader": "127.0.0.1:8300", "ttl_min": "250ms"}
    assert "agent -dev" in started.result.stdout
    assert json.loads(args_file.read_text()) == [
        "agent",
        "-dev",
        "-client",
        "127.0.0.1",
        "-http-port",
        str(port),
        "-hcl",
        'session_ttl_min = "250ms"',
    ]
    assert_agent_left_running_then_stops(started, port)


def test_without_consul_binary_starts_the_embedded_agent(run_start) -> None:
    if shutil.which("consul", path=SYSTEM_PATH):
        pytest.skip(f"a consul binary is installed in {SYSTEM_PATH}")
    port = free_port()

    started = run_start(
        {"PATH": SYSTEM_PATH, "CONSUL_HTTP_ADDR": f"127.0.0.1:{port}"},
        sys.executable,
        "-c",
        PROBE,
    )

    assert started.probe() == {"leader": "127.0.0.1:8300", "ttl_min": "250ms"}
    assert "embedded agent" in started.result.stdout
    assert_agent_left_running_then_stops(started, port)


def test_uses_an_agent_that_already_answers(tmp_path: Path, run_start) -> None:
    from elect_helpers.devagent import DevAgent

    bin_dir = tmp_path / "bin"
    write_fake_consul(bin_dir, sys.executable)
    args_file = tmp_path / "consul-args.json"
    with DevAgent(port=0, session_ttl_min="2s") as agent:
        started = run_start(
            {
                "PATH": f"{bin_dir}:{SYSTEM_PATH}",
                "FAKE_CONSUL_ARGS": str(args_file),
                "CONSUL_HTTP_ADDR": agent.address,
            },
            sys.executable,
            "-c",
            PROBE,
        )
        assert started.probe() == {"leader": "127.0.0.1:8300", "ttl_min": "2s"}

    assert "already answering" in started.result.stdout
    assert not args_file.exists(), "no consul should have been started"
    assert live_members(started.pgid) == []


def test_still_runs_the_command_when_no_agent_can_start(run_start) -> None:
    with socket.socket() as squatter:  # something that is not Consul holds the port
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        started = run_start(
            {"PATH": SYSTEM_PATH, "CONSUL_HTTP_ADDR": f"127.0.0.1:{port}"},
            sys.executable,
            "-c",
            "print('command ran')",
        )

    assert started.result.returncode == 0, started.result.stderr
    assert started.result.stdout.strip().endswith("command ran")
    assert f"port {port}" in started.result.stderr
    assert "notebooks will start the embedded one" in started.result.stderr
    assert live_members(started.pgid) == []
