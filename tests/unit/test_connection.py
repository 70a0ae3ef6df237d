"""connection: CLI-style client configuration and error translation."""

from __future__ import annotations

import pytest

from elect_helpers.connection import (
    MAX_BLOCKING_WAIT,
    agent_session_ttl_min,
    consul_call,
    consul_client,
    parse_address,
)
from elect_helpers.errors import AgentUnreachable, InvalidArgument


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


def test_unreachable_agent_names_address_and_remedy(clean_env, free_port) -> None:
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
