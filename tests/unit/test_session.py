"""session: creation with validation, destruction, and the background renewer."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from elect_helpers.connection import consul_client
from elect_helpers.errors import ConsulError, InvalidArgument, InvalidTTL
from elect_helpers.session import (
    SESSION_GONE,
    SessionRenewer,
    create_session,
    destroy_session,
    session_info,
)


def test_create_through_library_path(client) -> None:
    sid = create_session(client, name="lib", ttl="10s", behavior="delete", lock_delay="2s")
    info = session_info(client, sid)
    assert (info["Name"], info["TTL"], info["Behavior"]) == ("lib", "10s", "delete")
    assert info["LockDelay"] == 2_000_000_000
    assert info["NodeChecks"] == ["serfHealth"]


def test_short_ttl_allowed_by_agent(client) -> None:
    """python-consul2 refuses TTLs below 10s; the agent's session_ttl_min (100ms) allows them."""
    sid = create_session(client, name="short", ttl=0.5, lock_delay=0, node_checks=[])
    info = session_info(client, sid)
    assert info["TTL"] == "500ms"
    assert info["LockDelay"] == 0
    assert info["NodeChecks"] == []


@pytest.mark.parametrize(
    ("ttl", "detail"),
    [("50ms", "too short"), ("25h", "longer than 24h"), ("abc", "not a duration"), (0, "positive")],
)
def test_invalid_ttl_names_limits(client, ttl, detail) -> None:
    with pytest.raises(InvalidTTL) as info:
        create_session(client, name="bad", ttl=ttl)
    message = str(info.value)
    assert detail in message and "session_ttl_min" in message and "24h" in message
    assert "\n" not in message
    if ttl == "50ms":
        assert "100ms on this agent" in message
        assert "-hcl 'session_ttl_min = \"50ms\"'" in message


def test_bad_behaviour_and_lock_delay(client) -> None:
    with pytest.raises(InvalidArgument, match="behavior"):
        create_session(client, name="x", behavior="keep")
    with pytest.raises(InvalidArgument, match="lock_delay"):
        create_session(client, name="x", lock_delay="-1s")


def test_binding_to_a_missing_check_is_refused(client) -> None:
    with pytest.raises(ConsulError, match="Missing check"):
        create_session(client, name="x", service_checks=["service:nope"])


def test_destroy_is_idempotent(client) -> None:
    sid = create_session(client, name="d", ttl="10s")
    destroy_session(client, sid)
    assert session_info(client, sid) is None
    destroy_session(client, sid)


def test_renewer_keeps_session_alive_and_destroys_on_stop(client, wait_until) -> None:
    started = time.monotonic()
    sid = create_session(client, name="r", ttl=0.2, lock_delay=0)
    renewer = SessionRenewer(client, sid, 0.2, created_at=started).start()
    wait_until(lambda: renewer.renewals >= 6, what="several renewals")  # > 2 TTLs
    assert session_info(client, sid) is not None
    assert renewer.healthy and renewer.lost_reason is None
    renewer.stop(destroy=True)
    assert session_info(client, sid) is None
    assert not any(t.name.startswith("renew-") and t.is_alive() for t in threading.enumerate())


def test_renewer_reports_expired_on_404(client, wait_until) -> None:
    sid = create_session(client, name="r", ttl=0.2, lock_delay=0)
    reasons: list[str] = []
    renewer = SessionRenewer(client, sid, 0.2, on_lost=reasons.append).start()
    destroy_session(client, sid)
    wait_until(lambda: reasons, what="on_lost")
    assert reasons == [SESSION_GONE] and renewer.lost_reason == SESSION_GONE
    assert not renewer.healthy
    renewer.stop(destroy=False)


def test_renewer_gives_up_after_a_whole_ttl_without_renewing(wait_until) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = consul_client(f"127.0.0.1:{sock.getsockname()[1]}", timeout=1)
        reasons: list[str] = []
        started = time.monotonic()
        renewer = SessionRenewer(
            dead,
            "11111111-1111-1111-1111-111111111111",
            0.3,
            on_lost=reasons.append,
            retry_interval=0.05,
            created_at=started,
        ).start()
        wait_until(lambda: reasons, what="give-up")
        gave_up_after = time.monotonic() - started
    assert reasons[0].startswith("gave-up: ") and "connection refused" in reasons[0]
    assert gave_up_after >= 0.3  # never before a whole TTL since the last good renew
    assert renewer.renewals == 0
    renewer.stop(destroy=False)


def test_renewer_rejects_bad_arguments(client) -> None:
    with pytest.raises(InvalidArgument):
        SessionRenewer(client, "", 1.0)
    with pytest.raises(InvalidTTL):
        SessionRenewer(client, "abc", 0)
    with pytest.raises(InvalidTTL, match="not a duration"):
        SessionRenewer(client, "abc", "ten seconds")
