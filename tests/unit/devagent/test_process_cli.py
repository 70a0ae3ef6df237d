"""The command line and the child-process wrapper."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from elect_helpers.devagent import DevAgent, DevAgentProcess
from elect_helpers.devagent.cli import build_parser


def test_help_says_state_is_in_memory_only() -> None:
    text = build_parser().format_help()
    assert "memory only" in text
    assert "-http-port" in text and "-session-ttl-min" in text


def test_single_and_double_dash_flags() -> None:
    one = build_parser().parse_args(["-http-port", "0", "-node", "n1", "-session-ttl-min=1s"])
    two = build_parser().parse_args(["--http-port", "0", "--node", "n1", "--session-ttl-min", "1s"])
    assert vars(one) == vars(two)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["-session-ttl-min", "15"])


def test_process_serves_and_is_gone_after_stop() -> None:
    with DevAgentProcess(port=0, session_ttl_min=0.1, node_name="childnode") as proc:
        with urllib.request.urlopen(f"{proc.url}/v1/agent/self") as response:
            self_info = json.loads(response.read())
        assert self_info["Config"]["NodeName"] == "childnode"
        assert self_info["DebugConfig"]["SessionTTLMin"] == "100ms"
        pid = proc.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_process_start_failure_shows_the_childs_stderr() -> None:
    with DevAgent(port=0) as taken:
        failing = DevAgentProcess(port=taken.port)
        with pytest.raises(RuntimeError) as caught:
            failing.start()
    assert "exited with code 1" in str(caught.value)
    assert "cannot listen on 127.0.0.1" in str(caught.value)


def test_cli_exits_cleanly_on_sigterm() -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "elect_helpers.devagent", "-http-port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    for line in child.stdout:
        if "HTTP address:" in line:
            break
    child.send_signal(signal.SIGTERM)
    assert child.wait(10) == 0
    child.stdout.close()


def test_child_dies_with_its_parent() -> None:
    script = (
        "import time; from elect_helpers.devagent import DevAgentProcess\n"
        "p = DevAgentProcess(port=0).start(); print(p.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    parent.stdout.close()
    for _ in range(100):
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{child_pid}/stat") as stat:
            if stat.read().split()[2] == "Z":
                return
        time.sleep(0.05)
    pytest.fail("the dev agent child outlived its parent")
