#!/usr/bin/env bash
# Run every test: set up .venv like start-tutorial.sh, then `ruff check`, then pytest on tests/
# and on the notebooks (nbval, lax mode, in this interpreter), including the browser test.
#
# The browser test (pytest marker `browser`) drives Debian's /usr/bin/chromium. Without it the
# test is deselected with a message, unless REQUIRE_BROWSER=1 (as in CI), which fails instead.
# Extra arguments go to pytest (e.g. ./run-tests.sh -k binder -x).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/common.sh
source scripts/common.sh

CHROMIUM=/usr/bin/chromium

elect_ensure_venv

elect_say "ruff check"
"$ELECT_VENV/bin/ruff" check .

pytest_args=(tests)
if [[ -d notebooks ]]; then
    pytest_args+=(notebooks)
fi
pytest_args+=(--nbval-lax --nbval-current-env)
if [[ ! -x "$CHROMIUM" ]]; then
    if [[ "${REQUIRE_BROWSER:-0}" == 1 ]]; then
        elect_die "REQUIRE_BROWSER=1 but $CHROMIUM is missing; install it with: apt-get update && apt-get install -y chromium"
    fi
    elect_say "skipping the browser tests: $CHROMIUM not found (apt-get install -y chromium to run them)"
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
