"""connection: CLI-style client configuration, error translation and ensure_agent()."""

from __future__ import annotations

import os
import socket
import stat
import sys
from pathlib import Path

import pytest

from elect_helpers import connection
from elect_helpers.connection import (
    MAX_BLOCKING_WAIT,
    agent_session_ttl_min,
    consul_call,
    consul_client,
    parse_address,
)
from elect_helpers.errors import AgentStartFailed, AgentUnreachable, InvalidArgument

ENV_VARS = ("CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_SSL", "CONSUL_HTTP_SSL_VERIFY")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8500", ("http", "127.0.0.1", 8500)),
        ("http://localhost:8501", ("http", "localhost", 8501)),
        ("https://consul.example:443/", ("https", "consul.example", 443)),
    ],
)
def test_parse_address_accepts_cli_forms(text: str, expected: tuple) -> None:
    addr = parse_address(text)
    assert (addr.scheme, addr.host, addr.port) == expected


@pytest.mark.parametrize("text", ["localhost", "unix:///tmp/c.sock", "127.0.0.1:abc", "h:0", ":80"])
def test_parse_address_rejects_other_forms(text: str) -> None:
    with pytest.raises(InvalidArgument, match=r"127\.0\.0\.1:8500|port|scheme"):
        parse_address(text)


def test_client_defaults_and_timeout(clean_env: pytest.MonkeyPatch) -> None:
    client = consul_client()
    assert client.http.base_uri == "http://127.0.0.1:8500"
    assert client.token is None
    # Longer than the longest blocking wait plus Consul's jitter (wait/16).
    assert client.http.timeout > MAX_BLOCKING_WAIT * 17 / 16


def test_client_reads_cli_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CONSUL_HTTP_ADDR", "10.0.0.5:8501")
    clean_env.setenv("CONSUL_HTTP_TOKEN", "secret")
    clean_env.setenv("CONSUL_HTTP_SSL", "true")
    clean_env.setenv("CONSUL_HTTP_SSL_VERIFY", "false")
    client = consul_client()
    assert client.http.base_uri == "https://10.0.0.5:8501"
    assert client.token == "secret"
    assert client.http.verify is False


def test_explicit_arguments_win_over_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CONSUL_HTTP_ADDR", "http://10.0.0.5:8501")
    clean_env.setenv("CONSUL_HTTP_TOKEN", "from-env")
    client = consul_client("127.0.0.1:9999", token="explicit", timeout=3)
    assert client.http.base_uri == "http://127.0.0.1:9999"
    assert client.token == "explicit"
    assert client.http.timeout == 3


def test_malformed_environment_is_a_clear_error(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CONSUL_HTTP_ADDR", "consul-without-port")
    with pytest.raises(InvalidArgument, match="CONSUL_HTTP_ADDR"):
        consul_client()


def test_unreachable_agent_names_address_and_remedy(clean_env: pytest.MonkeyPatch) -> None:
    port = free_port()
    client = consul_client(f"127.0.0.1:{port}", timeout=2)
    with pytest.raises(AgentUnreachable) as info, consul_call(client, "reading x"):
        client.kv.get("x")
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "ensure_agent" in message and "\n" not in message
    assert info.value.address == f"127.0.0.1:{port}"


def test_agent_session_ttl_min(client) -> None:
    assert agent_session_ttl_min(client) == pytest.approx(0.1)


# --------------------------------------------------------------------------- ensure_agent


@pytest.fixture
def fresh_ensure(clean_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """ensure_agent() with nothing started before and a default address nobody uses."""
    clean_env.setattr(connection, "_started", None)
    clean_env.setattr(connection, "DEFAULT_ADDRESS", f"127.0.0.1:{free_port()}")
    handles: list = []
    original = connection.ensure_agent

    def tracked(*args, **kwargs):
        handle = original(*args, **kwargs)
        handles.append(handle)
        return handle

    clean_env.setattr(connection, "ensure_agent", tracked)
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
    handle = connection.ensure_agent()
    assert handle.kind == "existing"
    assert handle.address == dev_agent.address
    assert handle.session_ttl_min == pytest.approx(0.1)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "already running" in out[0] and dev_agent.address in out[0]
    handle.stop()  # does not stop someone else's agent
    assert handle.client().status.leader()


def test_configured_address_that_does_not_answer_is_an_error(fresh_ensure) -> None:
    port = free_port()
    fresh_ensure.setenv("CONSUL_HTTP_ADDR", f"127.0.0.1:{port}")
    with pytest.raises(AgentUnreachable) as info:
        connection.ensure_agent()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "unset CONSUL_HTTP_ADDR" in message
    assert connection._started is None  # nothing was started instead


def test_ensure_agent_starts_consul_binary_from_path(fresh_ensure, tmp_path, capsys) -> None:
    args_file = install_fake_consul(tmp_path, fresh_ensure)
    handle = connection.ensure_agent(session_ttl_min="250ms")
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
    assert connection.ensure_agent() is handle
    handle.stop()
    assert not handle.is_running()


def test_consul_binary_that_fails_shows_its_output(fresh_ensure, tmp_path) -> None:
    failing = "echo 'bind: address in use' >&2; exit 1"
    install_fake_consul(tmp_path, fresh_ensure, exit_early=failing)
    with pytest.raises(AgentStartFailed, match=r"(?s)exited with code 1.*address in use"):
        connection.ensure_agent()


def test_ensure_agent_falls_back_to_embedded_agent(fresh_ensure, tmp_path, capsys) -> None:
    fresh_ensure.setenv("PATH", str(tmp_path))  # no consul binary anywhere
    handle = connection.ensure_agent(session_ttl_min="100ms")
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
        handle = connection.ensure_agent()
        assert handle.kind == "embedded"
        assert handle.address != connection.DEFAULT_ADDRESS
        assert handle.client().status.leader()
