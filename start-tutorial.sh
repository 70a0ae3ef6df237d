#!/usr/bin/env bash
# Open the tutorial: set up .venv (first run only), make sure a Consul agent answers, and start
# JupyterLab on notebooks/. An agent started here is stopped when JupyterLab exits.
#
# Agent, in this order: one already answering at CONSUL_HTTP_ADDR (default 127.0.0.1:8500);
# else `consul agent -dev` if `consul` is on PATH; else the embedded agent
# (python -m elect_helpers.devagent). Extra arguments go to `jupyter lab`
# (e.g. ./start-tutorial.sh --no-browser --port 8899).
# Settings: PYTHON, CONSUL_HTTP_ADDR, ELECT_SESSION_TTL_MIN (default 1s), see scripts/common.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/common.sh
source scripts/common.sh

elect_ensure_venv
trap elect_stop_agent EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
elect_ensure_agent "$ELECT_PY" "$ELECT_ROOT/.venv/consul-agent.log" detach || exit 1

extra=()
if [[ "$(id -u)" == 0 ]]; then
    extra+=(--allow-root) # JupyterLab refuses to run as root without it (containers, CI)
fi
notebooks="$ELECT_ROOT/notebooks"
[[ -d "$notebooks" ]] || notebooks="$ELECT_ROOT"
export CONSUL_HTTP_ADDR="${CONSUL_HTTP_ADDR:-$(elect_agent_address)}"
elect_say "starting JupyterLab on $notebooks (stop it with Ctrl-C, twice)"
"$ELECT_VENV/bin/jupyter" lab --ServerApp.root_dir="$notebooks" ${extra[@]+"${extra[@]}"} "$@"
