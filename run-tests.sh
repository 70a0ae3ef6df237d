#!/usr/bin/env bash
# Run every test: set up .venv like start-tutorial.sh, then `ruff check`, then (when `go` is on
# PATH) the Go module's tests in interop/go (HashiCorp's client against the embedded agent),
# then pytest on tests/ and on the notebooks (nbval, lax mode, in this interpreter), including
# the browser test and the mixed Go/Python elections of tests/interop (skipped without Go).
#
# The browser test (pytest marker `browser`) drives Debian's /usr/bin/chromium through Python
# playwright. When that browser is missing or does not start, the test is deselected with a
# message, unless REQUIRE_BROWSER=1 (as in CI), which makes it an error instead.
# Extra arguments go to pytest (e.g. ./run-tests.sh -k binder -x), and then the Go module's
# tests are left out.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/common.sh
source scripts/common.sh

CHROMIUM=/usr/bin/chromium

# Succeed when Python playwright can start $CHROMIUM headless (Debian's, never a downloaded one).
browser_launches() {
    "$ELECT_PY" - "$CHROMIUM" <<'PY'
import sys

from playwright.sync_api import sync_playwright

with sync_playwright() as playwright:
    playwright.chromium.launch(
        executable_path=sys.argv[1], args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
    ).close()
PY
}

elect_ensure_venv

elect_say "ruff check"
"$ELECT_VENV/bin/ruff" check .

if (($# > 0)); then
    elect_say "extra arguments given: only pytest runs (no go test in interop/go)"
elif command -v go >/dev/null 2>&1; then
    elect_say "go test ./... in interop/go ($(go version))"
    # -count=1: the results depend on the Python agent, which go test's cache cannot see
    (cd interop/go && ELECT_PYTHON="$ELECT_PY" go test -count=1 ./...)
else
    elect_say "skipping the Go tests (interop/go and tests/interop): go is not on PATH" \
        "(install Go 1.26.7 or newer: https://go.dev/dl/)"
fi

pytest_args=(tests)
if [[ -d notebooks ]]; then
    pytest_args+=(notebooks)
fi
pytest_args+=(--nbval-lax --nbval-current-env)
browser_problem=""
if [[ ! -x "$CHROMIUM" ]]; then
    browser_problem="$CHROMIUM not found (install it: apt-get update && apt-get install -y chromium)"
elif ! browser_launches; then
    browser_problem="playwright cannot launch $CHROMIUM (its error is above)"
fi
if [[ -n "$browser_problem" ]]; then
    if [[ "${REQUIRE_BROWSER:-0}" == 1 ]]; then
        elect_die "REQUIRE_BROWSER=1 but $browser_problem"
    fi
    elect_say "skipping the browser tests: $browser_problem"
    pytest_args+=(-m "not browser")
fi

elect_say "pytest ${pytest_args[*]} $*"
status=0
"$ELECT_VENV/bin/python" -m pytest "${pytest_args[@]}" "$@" || status=$?
if ((status == 5)); then
    # pytest's "no tests collected": nothing failed, so this command does not fail either.
    elect_say "pytest collected no tests"
    status=0
fi
exit "$status"
