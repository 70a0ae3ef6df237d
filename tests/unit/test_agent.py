"""agent: ensure_agent() finds an agent, or starts the consul binary or the embedded one."""

from __future__ import annotations

import os
import socket
import stat
import sys
from pathlib import Path

import pytest

from elect_helpers import agent, connection
from elect_helpers.errors import AgentStartFailed, AgentUnreachable


def test_ensure_agent_is_also_importable_from_connection() -> None:
    from elect_helpers.connection import AgentHandle, ensure_agent

    assert ensure_agent is agent.ensure_agent and AgentHandle is agent.AgentHandle


@pytest.fixture
def fresh_ensure(clean_env: pytest.MonkeyPatch, free_port) -> pytest.MonkeyPatch:
    """ensure_agent() with nothing started before and a default address nobody uses."""
    clean_env.setattr(agent, "_started", None)
    clean_env.setattr(connection, "DEFAULT_ADDRESS", f"127.0.0.1:{free_port()}")
    handles: list = []
    original = agent.ensure_agent

    def tracked(*args, **kwargs):
        handle = original(*args, **kwargs)
        handles.append(handle)
        return handle

    clean_env.setattr(agent, "ensure_agent", tracked)
    yield clean_env
    for handle in handles:
        handle.stop()


FAKE_CONSUL = """#!/bin/sh
# Stands in for the consul binary: records its arguments, then runs the embedded agent.
printf '%s\\n' "$@" > "{args_file}"
port=8500
ttl=10s
while [ $# -gt 0 ]; do
  case "$1" in
    -http-port) port=$2; shift 2 ;;
    -hcl) ttl=$(printf '%s' "$2" | sed 's/.*"\\(.*\\)".*/\\1/'); shift 2 ;;
    *) shift ;;
  esac
done
{exit_early}
exec "{python}" -m elect_helpers.devagent -http-port "$port" -session-ttl-min "$ttl"
"""


def install_fake_consul(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exit_early: str = ""
) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    args_file = tmp_path / "args.txt"
    script = bin_dir / "consul"
    script.write_text(
        FAKE_CONSUL.format(args_file=args_file, python=sys.executable, exit_early=exit_early)
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return args_file


def test_ensure_agent_uses_existing_agent(fresh_ensure, dev_agent, capsys) -> None:
    fresh_ensure.setenv("CONSUL_HTTP_ADDR", dev_agent.address)
    handle = agent.ensure_agent()
    assert handle.kind == "existing"
    assert handle.address == dev_agent.address
    assert handle.session_ttl_min == pytest.approx(0.1)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "already running" in out[0] and dev_agent.address in out[0]
    handle.stop()  # does not stop someone else's agent
    assert handle.client().status.leader()


def test_configured_address_that_does_not_answer_is_an_error(fresh_ensure, free_port) -> None:
    port = free_port()
    fresh_ensure.setenv("CONSUL_HTTP_ADDR", f"127.0.0.1:{port}")
    with pytest.raises(AgentUnreachable) as info:
        agent.ensure_agent()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "unset CONSUL_HTTP_ADDR" in message
    assert agent._started is None  # nothing was started instead


def test_ensure_agent_starts_consul_binary_from_path(fresh_ensure, tmp_path, capsys) -> None:
    args_file = install_fake_consul(tmp_path, fresh_ensure)
    handle = agent.ensure_agent(session_ttl_min="250ms")
    port = int(connection.DEFAULT_ADDRESS.rsplit(":", 1)[1])
    assert handle.kind == "consul-binary"
    assert handle.address == f"127.0.0.1:{port}"
    assert args_file.read_text().splitlines() == [
        "agent",
        "-dev",
        "-http-port",
        str(port),
        "-hcl",
        'session_ttl_min = "250ms"',
    ]
    assert handle.session_ttl_min == pytest.approx(0.25)
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "consul agent -dev" in line
    # A second call reuses it instead of starting another.
    assert agent.ensure_agent() is handle
    handle.stop()
    assert not handle.is_running()


def test_consul_binary_that_fails_shows_its_output(fresh_ensure, tmp_path) -> None:
    failing = "echo 'bind: address in use' >&2; exit 1"
    install_fake_consul(tmp_path, fresh_ensure, exit_early=failing)
    with pytest.raises(AgentStartFailed, match=r"(?s)exited with code 1.*address in use"):
        agent.ensure_agent()


def test_ensure_agent_falls_back_to_embedded_agent(fresh_ensure, tmp_path, capsys) -> None:
    fresh_ensure.setenv("PATH", str(tmp_path))  # no consul binary anywhere
    handle = agent.ensure_agent(session_ttl_min="100ms")
    assert handle.kind == "embedded"
    assert handle.address == connection.DEFAULT_ADDRESS
    assert handle.session_ttl_min == pytest.approx(0.1)
    assert "embedded dev agent" in capsys.readouterr().out
    handle.stop()
    assert not handle.is_running()


def test_embedded_agent_moves_to_free_port_when_default_is_taken(fresh_ensure, tmp_path) -> None:
    fresh_ensure.setenv("PATH", str(tmp_path))
    with socket.socket() as squatter:  # something that is not Consul holds the port
        host, port = connection.DEFAULT_ADDRESS.rsplit(":", 1)
        squatter.bind((host, int(port)))
        handle = agent.ensure_agent()
        assert handle.kind == "embedded"
        assert handle.address != connection.DEFAULT_ADDRESS
        assert handle.client().status.leader()
