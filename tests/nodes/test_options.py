"""Node options: the article's defaults, --tuned, and clear errors for bad values."""

import subprocess
import sys

import pytest

from elect_helpers.node.options import parse_options


def test_defaults_are_the_articles_configuration():
    opts = parse_options(["--name", "node01"])
    assert (opts.service, opts.key) == ("monitoring", "service/monitoring/leader")
    assert (opts.ttl, opts.behavior, opts.lock_delay) == ("10s", "delete", "15s")
    assert (opts.check_interval, opts.bind_check) == ("10s", False)


def test_tuned_binds_the_check_and_explicit_options_still_win():
    tuned = parse_options(["--name", "n", "--tuned"])
    assert (tuned.bind_check, tuned.check_interval, tuned.lock_delay) == (True, "1s", "0s")
    assert tuned.check_timeout == "1s"
    mixed = parse_options(["--name", "n", "--tuned", "--lock-delay", "2s", "--no-bind-check"])
    assert (mixed.bind_check, mixed.lock_delay, mixed.check_interval) == (False, "2s", "1s")
    keyed = parse_options(["--name", "n", "--service", "web", "--key", "locks/web"])
    assert keyed.key == "locks/web"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ttl", "10"], "missing unit"),
        (["--ttl", "0s"], "must be above 0"),
        (["--ttl", "25h"], "at most 24h"),
        (["--lock-delay", "90s"], "caps lock-delay at 60s"),
        (["--lock-delay", "500ns"], "below 1µs as seconds"),
        (["--check-interval", "200ms"], "at least 1s"),
        (["--behavior", "keep"], "invalid choice"),
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
    assert "--name 'no/slash'" in proc.stderr and "Traceback" not in proc.stderr
