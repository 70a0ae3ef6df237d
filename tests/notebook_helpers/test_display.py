"""The notebook display helpers in a real IPython shell: one-line errors, progress bars."""

from __future__ import annotations

import re
import time

import pytest
from IPython.core.interactiveshell import InteractiveShell

from elect_helpers import display
from elect_helpers.errors import InvalidTTL


@pytest.fixture
def shell(monkeypatch):
    """An in-process IPython shell that records what it would show for an error."""
    ip = InteractiveShell.instance()
    shown = []
    monkeypatch.setattr(ip, "_showtraceback", lambda etype, value, stb: shown.append((etype, stb)))
    ip.set_custom_exc((), None)
    yield ip, shown
    ip.set_custom_exc((), None)


def test_a_helpers_error_is_shown_as_one_line_and_still_fails_the_cell(shell):
    ip, shown = shell
    display.one_line_errors()
    result = ip.run_cell("from elect_helpers.errors import InvalidTTL\nraise InvalidTTL('ttl 1s')")
    assert not result.success
    assert isinstance(result.error_in_exec, InvalidTTL)
    assert shown == [(InvalidTTL, ["\x1b[0;31mInvalidTTL\x1b[0m: ttl 1s"])]


def test_other_errors_keep_their_full_traceback(shell):
    ip, shown = shell
    display.one_line_errors()
    result = ip.run_cell("def f():\n    return 1 / 0\nf()")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    ((etype, stb),) = shown
    assert etype is ZeroDivisionError
    plain = re.sub(r"\x1b\[[0-9;]*m", "", "".join(stb))
    assert "f()" in plain
    assert "ZeroDivisionError: division by zero" in plain
    assert len(stb) > 1


def test_outside_ipython_waiting_only_waits(monkeypatch):
    monkeypatch.setattr(display, "_shell", lambda: None)
    display.one_line_errors()  # nothing to install into: no error either
    started = time.monotonic()
    display.countdown(0.2, "a short wait")
    assert time.monotonic() - started >= 0.2


def test_the_bar_ends_full_and_says_how_long_the_wait_took(monkeypatch):
    monkeypatch.setattr(display, "_shell", lambda: object())
    bars = []
    real_bar = display._Bar

    def recording_bar(expected, what):
        bars.append(real_bar(expected, what))
        return bars[-1]

    monkeypatch.setattr(display, "_Bar", recording_bar)
    monkeypatch.setattr(display, "REDRAW_EVERY", 0.02)
    with display.waiting(5.0, "a new leader"):
        time.sleep(0.1)
        midway = bars[0].label.value
    assert midway.startswith("a new leader: 0.")
    assert "expected up to 5 s" in midway
    assert bars[0].bar.value == 5.0
    assert bars[0].label.value.startswith("a new leader: done after 0.1")


@pytest.mark.parametrize("expected", [0, -1.0])
def test_a_wait_must_expect_some_time(expected):
    with (
        pytest.raises(ValueError, match="positive number of seconds"),
        display.waiting(expected, "nothing"),
    ):
        pass


def test_nbval_still_compares_a_one_line_error_with_the_saved_one(tmp_path):
    """Run a two-cell notebook for real, then let nbval check it: the saved error passes,
    a saved error with another message fails on the message (nbval's ``evalue``)."""
    import subprocess
    import sys

    import nbformat
    from nbclient import NotebookClient

    failing = nbformat.v4.new_code_cell(
        "# NBVAL_CHECK_OUTPUT\nfrom elect_helpers.errors import InvalidTTL\n"
        "raise InvalidTTL('session TTL 1ms is too short')",
        metadata={"tags": ["raises-exception"]},
    )
    first = nbformat.v4.new_code_cell(
        "from elect_helpers.display import one_line_errors\none_line_errors()"
    )
    nb = nbformat.v4.new_notebook(cells=[first, failing])
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    (error,) = nb.cells[1].outputs
    assert (error.ename, error.evalue) == ("InvalidTTL", "session TTL 1ms is too short")
    assert len(error.traceback) == 1

    def nbval(notebook) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "one-line.ipynb"
        nbformat.write(notebook, path)
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--nbval-lax",
                "--nbval-current-env",
                str(path),
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )

    assert nbval(nb).returncode == 0
    error.evalue = "session TTL 2ms is too short"
    tampered = nbval(nb)
    assert tampered.returncode != 0
    assert "mismatch 'evalue'" in tampered.stdout
