# shellcheck shell=bash
# Shell functions shared by start-tutorial.sh, run-tests.sh, .ci/run and binder/start.
# Source this file (it defines functions and a few variables, and runs nothing on its own).
#
# Settings read from the environment:
#   PYTHON                 interpreter used to create .venv (default: first python3 >= 3.11 found)
#   CONSUL_HTTP_ADDR       agent address, host:port with or without http:// (default 127.0.0.1:8500)
#   ELECT_SESSION_TTL_MIN  session_ttl_min of an agent started here (default 1s; Consul's own
#                          default is 10s, which makes the demos slow)

ELECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ELECT_VENV="$ELECT_ROOT/.venv"
: "${ELECT_SESSION_TTL_MIN:=1s}"
ELECT_AGENT_PID=""

elect_say() { printf '==> %s\n' "$*"; }
elect_warn() { printf 'warning: %s\n' "$*" >&2; }
elect_error() { printf 'error: %s\n' "$*" >&2; }
elect_die() {
    elect_error "$@"
    exit 1
}

# Print the path of a Python >= 3.11 ($PYTHON if set), or fail saying how to get one.
# The pinned requirements (numpy, matplotlib) need 3.11.
elect_find_python() {
    local candidate
    for candidate in ${PYTHON:-python3 python3.13 python3.12 python3.11}; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    elect_die "Python 3.11 or newer is needed (tried: ${PYTHON:-python3 python3.13 python3.12 python3.11}); install it or set PYTHON=/path/to/python3.11"
}

# Create .venv if missing and install `-r requirements.txt -e .` into it whenever
# requirements.txt or pyproject.toml changed since the last install. Exports ELECT_PY.
elect_ensure_venv() {
    local stamp="$ELECT_VENV/.elect-install-stamp" want
    if [[ ! -x "$ELECT_VENV/bin/python" ]]; then
        local python
        python="$(elect_find_python)" || exit 1
        elect_say "creating $ELECT_VENV with $python"
        "$python" -m venv "$ELECT_VENV" || elect_die "could not create $ELECT_VENV (on Debian: apt-get install python3-venv)"
    fi
    want="$(cat "$ELECT_ROOT/requirements.txt" "$ELECT_ROOT/pyproject.toml" | cksum)"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        elect_say "installing requirements.txt and elect_helpers (editable) into .venv"
        "$ELECT_VENV/bin/python" -m pip install --quiet -r "$ELECT_ROOT/requirements.txt" -e "$ELECT_ROOT" ||
            elect_die "pip install failed (see above); fix it and run this command again"
        printf '%s\n' "$want" >"$stamp"
    fi
    elect_quiet_jupyterlab_news
    export ELECT_PY="$ELECT_VENV/bin/python"
}

# Turn off JupyterLab's news and update pop-up in .venv (it asks to reach the internet).
elect_quiet_jupyterlab_news() {
    local dir="$ELECT_VENV/share/jupyter/lab/settings"
    [[ -f "$dir/overrides.json" ]] && return 0
    mkdir -p "$dir"
    printf '%s\n' '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' \
        >"$dir/overrides.json"
}

# Print the agent address as host:port (CONSUL_HTTP_ADDR without its scheme, or the default).
elect_agent_address() {
    local addr="${CONSUL_HTTP_ADDR:-127.0.0.1:8500}"
    addr="${addr#http://}"
    addr="${addr#https://}"
    printf '%s\n' "${addr%/}"
}

# Succeed when the agent at host:port ($2) answers /v1/status/leader with a leader.
# $1 is the Python to use (only the standard library is needed).
elect_agent_answers() {
    "$1" - "$2" <<'PY' 2>/dev/null
import json
import os
import sys
import urllib.request

scheme = "https" if os.environ.get("CONSUL_HTTP_ADDR", "").startswith("https://") else "http"
url = f"{scheme}://{sys.argv[1]}/v1/status/leader"
try:
    with urllib.request.urlopen(url, timeout=1) as response:
        leader = json.load(response)
except Exception:
    sys.exit(1)
sys.exit(0 if leader else 1)
PY
}

# Wait up to $3 seconds for the agent at $2 (python $1) to answer with a leader. If $4 is a
# pid, give up as soon as that process has died. Succeeds once the agent answers.
elect_wait_for_agent() {
    local python="$1" addr="$2" seconds="$3" pid="${4:-}" deadline
    deadline=$((SECONDS + seconds))
    while ((SECONDS < deadline)); do
        elect_agent_answers "$python" "$addr" && return 0
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.2
    done
    elect_agent_answers "$python" "$addr"
}

# Make sure an agent answers at CONSUL_HTTP_ADDR (default 127.0.0.1:8500):
#   1. one already answering there is used as it is;
#   2. else `consul agent -dev` if the consul binary is on PATH;
#   3. else the embedded agent (python -m elect_helpers.devagent).
# Args: python (with elect_helpers installed), log file, "detach" to start the agent in its own
# session (so Ctrl-C in the terminal reaches JupyterLab only) or "attach", and how many seconds
# to wait for it to answer (default 15).
# Sets ELECT_AGENT_PID to the pid of an agent started here (empty if an existing one is used)
# and ELECT_AGENT_KIND to existing | consul-binary | embedded. On failure it prints why, leaves
# no agent behind and returns 1.
elect_ensure_agent() {
    local python="$1" log="$2" mode="$3" wait_s="${4:-15}" addr host port client
    addr="$(elect_agent_address)"
    if elect_agent_answers "$python" "$addr"; then
        ELECT_AGENT_KIND=existing
        elect_say "using the Consul agent already answering at $addr"
        return 0
    fi
    host="${addr%:*}"
    port="${addr##*:}"
    case "$host" in
        127.* | localhost | "[::1]") ;;
        *)
            elect_error "no Consul agent answers at $addr (CONSUL_HTTP_ADDR); start it, or unset CONSUL_HTTP_ADDR to get a local one"
            return 1
            ;;
    esac
    case "$host" in
        localhost) client=127.0.0.1 ;;
        "[::1]") client=::1 ;;
        *) client="$host" ;;
    esac
    if [[ ! "$port" =~ ^[0-9]+$ ]]; then
        elect_error "CONSUL_HTTP_ADDR=$addr has no port; use host:port, e.g. 127.0.0.1:8500"
        return 1
    fi
    if elect_port_busy "$python" "$host" "$port"; then
        elect_error "port $port on $host is in use by something that is not a ready Consul agent; stop it, or set CONSUL_HTTP_ADDR=127.0.0.1:<free port>"
        return 1
    fi

    local -a command
    if command -v consul >/dev/null 2>&1; then
        ELECT_AGENT_KIND=consul-binary
        command=(consul agent -dev -client "$client" -http-port "$port"
            -hcl "session_ttl_min = \"$ELECT_SESSION_TTL_MIN\"")
        elect_say "starting '$(command -v consul) agent -dev' at $addr (session_ttl_min $ELECT_SESSION_TTL_MIN), log: $log"
    else
        ELECT_AGENT_KIND=embedded
        command=("$python" -m elect_helpers.devagent -client "$client" -http-port "$port"
            -session-ttl-min "$ELECT_SESSION_TTL_MIN")
        elect_say "no consul binary on PATH: starting the embedded agent (elect_helpers.devagent, in memory like 'consul agent -dev') at $addr (session_ttl_min $ELECT_SESSION_TTL_MIN), log: $log"
    fi
    mkdir -p "$(dirname "$log")"
    if [[ "$mode" == detach ]] && command -v setsid >/dev/null 2>&1; then
        setsid "${command[@]}" >"$log" 2>&1 </dev/null &
    else
        "${command[@]}" >"$log" 2>&1 </dev/null &
    fi
    ELECT_AGENT_PID=$!
    if ! elect_wait_for_agent "$python" "$addr" "$wait_s" "$ELECT_AGENT_PID"; then
        elect_stop_agent
        tail -n 20 "$log" >&2 || true
        elect_error "the $ELECT_AGENT_KIND agent did not answer at $addr within $wait_s s (its log is above and in $log)"
        return 1
    fi
    elect_say "agent ready at $addr (pid $ELECT_AGENT_PID)"
}

# Succeed when something accepts TCP connections at host $2, port $3 (python $1).
elect_port_busy() {
    "$1" - "$2" "$3" <<'PY'
import socket
import sys

host = sys.argv[1].strip("[]")
try:
    socket.create_connection((host, int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

# Stop the agent started by elect_ensure_agent, if any: SIGTERM, then SIGKILL after 10 s.
elect_stop_agent() {
    local pid="$ELECT_AGENT_PID" waited=0
    [[ -n "$pid" ]] || return 0
    ELECT_AGENT_PID=""
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && ((waited < 50)); do
        sleep 0.2
        waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        elect_warn "agent (pid $pid) ignored SIGTERM; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    elect_say "stopped the $ELECT_AGENT_KIND agent (pid $pid)"
}
