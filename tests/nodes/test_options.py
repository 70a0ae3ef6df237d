"""Node options: the article's defaults, --tuned, and clear errors for bad values."""

import subprocess
import sys

import pytest

from elect_helpers.errors import InvalidArgument, InvalidSetting, LockDelayCapped
from elect_helpers.node.options import NodeOptions, parse_options
from elect_helpers.settings import ARTICLE


def test_defaults_are_the_articles_configuration():
    opts = parse_options(["--name", "node01"])
    assert (opts.service, opts.key) == ("monitoring", "service/monitoring/leader")
    assert (opts.ttl, opts.behavior, opts.lock_delay) == (10.0, "delete", 15.0)
    assert (opts.check_interval, opts.bind_check) == (10.0, False)
    assert opts.settings == ARTICLE


def test_tuned_binds_the_check_and_explicit_options_still_win():
    tuned = parse_options(["--name", "n", "--tuned"])
    assert (tuned.bind_check, tuned.check_interval, tuned.lock_delay) == (True, 1.0, 0.0)
    assert tuned.check_timeout == 1.0
    assert tuned.settings.service_checks == ("service:n",)
    mixed = parse_options(["--name", "n", "--tuned", "--lock-delay", "2s", "--no-bind-check"])
    assert (mixed.bind_check, mixed.lock_delay, mixed.check_interval) == (False, 2.0, 1.0)
    keyed = parse_options(["--name", "n", "--service", "web", "--key", "locks/web"])
    assert keyed.key == "locks/web"


@pytest.mark.parametrize(
    "given",
    [
        {},
        {"tuned": True},
        {"ttl": "1.5s", "behavior": "release", "lock_delay": 0, "write_interval": "20ms"},
        {"events": "/tmp/x.jsonl", "resource": "http://h/f", "ready_fd": 3, "key": "k/l"},
    ],
)
def test_to_argv_and_from_argv_give_back_the_same_options(given):
    opts = NodeOptions.build(name="node07", **given)
    assert NodeOptions.from_argv(opts.to_argv()) == opts
    assert parse_options(opts.to_argv()) == opts


def test_build_names_an_unknown_option_and_the_bad_field():
    with pytest.raises(InvalidArgument, match=r"unknown node option.*lock_dealy"):
        NodeOptions.build(name="n", lock_dealy="1s")
    with pytest.raises(InvalidSetting, match=r"^ttl '25h'") as info:
        NodeOptions.build(name="n", ttl="25h")
    assert info.value.field == "ttl"


def test_a_lock_delay_over_consuls_cap_is_capped_and_said(capsys):
    with pytest.warns(LockDelayCapped, match="caps lock-delay at 60s"):
        opts = parse_options(["--name", "n", "--lock-delay", "90s"])
    assert opts.lock_delay == 60.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ttl", "10"], "missing unit"),
        (["--ttl", "0s"], "must be above 0"),
        (["--ttl", "25h"], "at most 24h"),
        (["--lock-delay", "500ns"], "below 1µs as seconds"),
        (["--check-interval", "200ms"], "at least 1s"),
        (["--behavior", "keep"], "invalid choice"),
        (["--check-interval", "1"], "--check-interval 1: is not a duration"),
        (["--write-interval", "0s"], "must be above 0"),
    ],
)
def test_bad_values_exit_2_with_a_one_line_reason(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        parse_options(["--name", "node01", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_name_is_refused_before_anything_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "elect_helpers.node", "--name", "no/slash"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "--name no/slash:" in proc.stderr and "Traceback" not in proc.stderr
