"""Notebook display helpers: the helpers' errors as one line, and feedback during long waits.

``one_line_errors()`` makes IPython show an :class:`~elect_helpers.errors.ElectHelpersError`
as the single line it is (``InvalidTTL: session TTL ...``) instead of a traceback through
the helpers' internals.  Every other exception keeps its full traceback: a bug should still
show where it happened.  The error reaches Jupyter as a normal error (same name, same
message), so "Run All" stops at it and nbval compares its class and message as before.

``waiting(expected, what)`` shows a progress bar with the seconds elapsed while the code in
its ``with`` block waits for something, and ``countdown(seconds, what)`` waits a fixed time
behind such a bar.  Outside IPython they show nothing and only wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import ElectHelpersError

#: How often a progress bar is redrawn while a wait goes on.
REDRAW_EVERY = 0.2


def _shell() -> Any | None:
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python without IPython installed
        return None
    return get_ipython()


def _show_one_line(
    shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None
) -> list[str]:
    red, reset = "\x1b[0;31m", "\x1b[0m"
    lines = [f"{red}{type(value).__name__}{reset}: {value}"]
    shell._showtraceback(etype, value, lines)  # what IPython's own handlers call to show one
    return lines


def one_line_errors() -> None:
    """Show the helpers' errors as one line in this IPython kernel (nothing outside IPython)."""
    shell = _shell()
    if shell is not None:
        shell.set_custom_exc((ElectHelpersError,), _show_one_line)


class _Bar:
    """A progress bar with a label; the label says what is awaited and for how long so far."""

    def __init__(self, expected: float, what: str) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        self.what = what
        self.expected = expected
        self.bar = widgets.FloatProgress(value=0.0, min=0.0, max=expected, bar_style="info")
        self.label = widgets.Label(f"{what}: 0.0 s")
        display(widgets.HBox([self.bar, self.label]))

    def show(self, elapsed: float) -> None:
        self.bar.value = min(elapsed, self.expected)
        self.label.value = f"{self.what}: {elapsed:.1f} s (expected up to {self.expected:g} s)"

    def done(self, elapsed: float) -> None:
        self.bar.value = self.expected
        self.bar.bar_style = "success"
        self.label.value = f"{self.what}: done after {elapsed:.1f} s"


@contextmanager
def waiting(expected: float, what: str) -> Iterator[None]:
    """Show a bar counting the seconds while the ``with`` block waits for something.

    ``expected`` (seconds, > 0) is the bar's full length: how long the wait should take at
    most, as the prose explains; the block may end earlier or later, the bar only shows it.
    """
    if expected <= 0:
        raise ValueError(f"expected must be a positive number of seconds, not {expected!r}")
    if _shell() is None:
        yield
        return
    bar = _Bar(expected, what)
    started = time.monotonic()
    finished = threading.Event()

    def redraw() -> None:
        while not finished.wait(REDRAW_EVERY):
            bar.show(time.monotonic() - started)

    thread = threading.Thread(target=redraw, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        finished.set()
        thread.join()
    bar.done(time.monotonic() - started)


def countdown(seconds: float, what: str) -> None:
    """Wait ``seconds`` behind a progress bar (a plain sleep outside IPython)."""
    with waiting(seconds, what):
        time.sleep(seconds)
