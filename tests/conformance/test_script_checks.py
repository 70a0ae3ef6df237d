"""Script checks (``Args``): refused by default, run as processes with -enable-script-checks.

Sources: agent/agent.go :: addCheck (the 500 text when remote script checks are off),
agent/checks/check.go :: CheckMonitor.check (exit 0 passing, 1 warning, else critical;
stdout+stderr in one tail buffer of OutputMaxSize with "Captured N of M bytes"; Timeout
default 30 s, "Timed out (<t>) running check").

The refusal runs against any agent.  The running tests start an embedded agent with
``enable_script_checks=True``; against a real agent they run only when
CONSUL_SCRIPT_CHECKS_ENABLED=1 says it was started with ``-enable-script-checks``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Registrations
from .support import AgentUnderTest, Api, wait_for

SCRIPTS_OFF = (
    "Scripts are disabled on this agent from remote calls; to enable, configure "
    "'enable_script_checks' to true"
)
ENABLED_VARIABLE = "CONSUL_SCRIPT_CHECKS_ENABLED"


def test_script_checks_are_refused_by_default(api: Api, uid: str) -> None:
    """A dev agent has enable_script_checks off: check and service registration with Args
    both answer 500 with addCheck's text, and nothing is registered."""
    response = api.put(
        "/v1/agent/check/register",
        json_body={"Name": uid, "Args": ["/bin/true"], "Interval": "10s"},
    )
    assert (response.status_code, response.text) == (500, SCRIPTS_OFF)
    assert api.agent_check(uid) is None
    response = api.put(
        "/v1/agent/service/register",
        json_body={"Name": uid, "Check": {"Args": ["/bin/true"], "Interval": "10s"}},
    )
    assert (response.status_code, response.text) == (500, SCRIPTS_OFF)
    assert uid not in api.get("/v1/agent/services").json()


@pytest.fixture
def script_api(agent: AgentUnderTest) -> Iterator[Api]:
    """An agent that runs script checks."""
    if not agent.embedded:
        if os.environ.get(ENABLED_VARIABLE) != "1":
            pytest.skip(
                f"needs an agent started with -enable-script-checks: set {ENABLED_VARIABLE}=1 "
                "if the agent at CONSUL_CONFORMANCE_ADDR was"
            )
        yield Api(agent.url)
        return
    from elect_helpers.devagent import DevAgent

    with DevAgent(port=0, enable_script_checks=True) as dev:
        yield Api(dev.url)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def settled(api: Api, check_id: str) -> dict[str, Any]:
    """The check once its first run has reported (its output is no longer empty)."""
    return wait_for(
        lambda: (c := api.agent_check(check_id)) and c["Output"] and c,
        timeout=10,
        what=f"check {check_id} to run",
    )


@pytest.mark.parametrize(("exit_code", "status"), [(0, "passing"), (1, "warning"), (2, "critical")])
def test_exit_codes_map_to_statuses(script_api: Api, uid: str, exit_code: int, status: str) -> None:
    """CheckMonitor.check: 0 passing, 1 warning, anything else critical; stdout and stderr
    both end up in the output; the check's Type is ``script``."""
    tracker = Registrations(script_api)
    code = (
        "import sys; print('out'); print('err', file=sys.stderr, flush=True); "
        f"sys.exit({exit_code})"
    )
    response = tracker.check({"Name": uid, "Args": python(code), "Interval": "1s"})
    try:
        assert response.status_code == 200, response.text
        check = settled(script_api, uid)
        assert check["Status"] == status
        assert check["Type"] == "script"
        assert "out\n" in check["Output"] and "err\n" in check["Output"]
    finally:
        tracker.remove_all()


def test_long_output_keeps_its_tail(script_api: Api, uid: str) -> None:
    """The output buffer holds the last OutputMaxSize bytes, prefixed with
    ``Captured <size> of <total> bytes`` and ``...``."""
    tracker = Registrations(script_api)
    code = "print('a' * 100 + 'END')"
    body = {"Name": uid, "Args": python(code), "Interval": "1s", "OutputMaxSize": 10}
    try:
        assert tracker.check(body).status_code == 200
        check = settled(script_api, uid)
        assert check["Output"] == "Captured 10 of 104 bytes\n...\naaaaaaEND\n"
    finally:
        tracker.remove_all()


def test_timeout_kills_the_script(script_api: Api, uid: str) -> None:
    """After Timeout the process is killed and the check is critical with
    ``Timed out (<timeout>) running check``, a blank line, then what it printed."""
    tracker = Registrations(script_api)
    code = "import time; print('started', flush=True); time.sleep(30)"
    body = {"Name": uid, "Args": python(code), "Interval": "1s", "Timeout": "500ms"}
    try:
        assert tracker.check(body).status_code == 200
        check = settled(script_api, uid)
        assert check["Status"] == "critical"
        assert check["Output"] == "Timed out (500ms) running check\n\nstarted\n"
    finally:
        tracker.remove_all()


def test_a_missing_program_is_critical_with_gos_start_error(script_api: Api, uid: str) -> None:
    """cmd.Start fails: critical with the error text (exec.LookPath's for a bare name)."""
    tracker = Registrations(script_api)
    body = {"Name": uid, "Args": [uid + "-no-such-program"], "Interval": "1s"}
    try:
        assert tracker.check(body).status_code == 200
        check = settled(script_api, uid)
        assert check["Status"] == "critical"
        assert check["Output"] == (
            f'exec: "{uid}-no-such-program": executable file not found in $PATH'
        )
    finally:
        tracker.remove_all()
