"""Node programs a :class:`~elect_helpers.cluster.Cluster` can run, the Go ones included.

Three programs take part in the same election with the same command line and the same
JSON-line events (see :mod:`elect_helpers.events`):

* ``python``: ``python -m elect_helpers.node`` (:class:`~elect_helpers.election.Election`);
* ``article``: ``interop/go/cmd/article``, the article's four steps written with HashiCorp's
  Go client (register with an HTTP check, session, acquire, ``RenewPeriodic``);
* ``golock``: ``interop/go/cmd/golock``, a candidate built on the Go client's ``api.Lock``.

The Go programs are built from this repository's ``interop/go`` module into
``interop/go/build/`` by :func:`build` (``go build`` caches, so building again is quick).
Go is needed only for them: :func:`go_missing` says why they cannot be built here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from elect_helpers.errors import ClusterError

#: Program name -> how it is shown (the panel's language column).
PROGRAMS = {"python": "Python", "article": "Go (article)", "golock": "Go (api.Lock)"}
GO_PROGRAMS = ("article", "golock")
MODULE_DIR = Path(__file__).resolve().parent.parent / "interop" / "go"
BUILD_DIR = MODULE_DIR / "build"
BUILD_TIMEOUT = 600.0  # seconds; the first build downloads the module's dependencies


def go_missing() -> str | None:
    """Why the Go programs cannot be built here (``None``: they can)."""
    if not (MODULE_DIR / "go.mod").is_file():
        return f"{MODULE_DIR}/go.mod not found (the Go programs live in this repository)"
    if shutil.which("go") is None:
        return "go is not on PATH (install Go 1.26.7 or newer from https://go.dev/dl/)"
    return None


def build() -> Path:
    """Build the Go programs into :data:`BUILD_DIR`; return it.  Raises :class:`ClusterError`
    with go's output if the build fails or Go is missing."""
    missing = go_missing()
    if missing:
        raise ClusterError(f"cannot build the Go node programs: {missing}")
    BUILD_DIR.mkdir(exist_ok=True)
    try:
        result = subprocess.run(
            ["go", "build", "-o", str(BUILD_DIR) + os.sep, "./cmd/..."],
            cwd=MODULE_DIR,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise ClusterError(f"go build in {MODULE_DIR} took over {BUILD_TIMEOUT:g}s") from None
    if result.returncode != 0:
        raise ClusterError(f"go build in {MODULE_DIR} failed:\n{result.stderr.strip()}")
    return BUILD_DIR


def command(program: str) -> list[str]:
    """The command that starts ``program`` (its options follow).  Raises
    :class:`ClusterError` for an unknown program or a Go program that is not built."""
    if program == "python":
        return [sys.executable, "-m", "elect_helpers.node"]
    if program not in GO_PROGRAMS:
        raise ClusterError(f"unknown node program {program!r}; use one of {', '.join(PROGRAMS)}")
    binary = BUILD_DIR / program
    if not os.access(binary, os.X_OK):
        raise ClusterError(
            f"the Go node program {program!r} is not built ({binary} missing); build it with "
            "elect_helpers.gonodes.build() or `go build -o build/ ./cmd/...` in interop/go"
        )
    return [str(binary)]


def main() -> int:
    """``python -m elect_helpers.gonodes``: build the Go programs, print where they are."""
    try:
        print(build())
    except ClusterError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
