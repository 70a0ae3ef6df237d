"""Shared helpers for the tests of binder/postBuild, binder/start and start-tutorial.sh."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def live_members(pgid: int) -> list[int]:
    """Return the pids of the processes in group ``pgid`` that are alive (not zombies)."""
    members = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text()
        except OSError:
            continue
        # Fields after the ")" closing the command name: state, ppid, pgrp, ...
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(int(stat_file.parent.name))
    return members


def stop_group(pgid: int, timeout: float = 10.0) -> None:
    """SIGTERM every process of group ``pgid``, SIGKILL what is left after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while live_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not live_members(pgid):
            return


def port_open(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


FAKE_CONSUL = """#!{python}
# Stand-in for the consul binary: records its arguments, then runs the embedded agent with
# the address and session_ttl_min that `consul agent -dev -client H -http-port P -hcl ...` got.
import json, os, re, sys

args = sys.argv[1:]
with open(os.environ["FAKE_CONSUL_ARGS"], "w") as record:
    json.dump(args, record)
if args[:2] != ["agent", "-dev"]:
    sys.exit("fake consul: expected 'agent -dev', got %r" % args)
options = dict(zip(args[2::2], args[3::2]))
ttl_min = re.fullmatch(r'session_ttl_min = "(.+)"', options["-hcl"]).group(1)
os.execv(sys.executable, [sys.executable, "-m", "elect_helpers.devagent",
    "-client", options["-client"], "-http-port", options["-http-port"],
    "-session-ttl-min", ttl_min])
"""

# Run by binder/start's `exec "$@"`: prints what the agent at CONSUL_HTTP_ADDR says.
PROBE = """
import json, os, urllib.request
base = "http://" + os.environ["CONSUL_HTTP_ADDR"]
def get(path):
    with urllib.request.urlopen(base + path, timeout=5) as response:
        return json.load(response)
print(json.dumps({"leader": get("/v1/status/leader"),
                  "ttl_min": get("/v1/agent/self")["DebugConfig"]["SessionTTLMin"]}))
"""


def write_fake_consul(bin_dir: Path, python: str) -> Path:
    """Create ``bin_dir/consul`` (the stand-in above, run by ``python``); return its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "consul"
    path.write_text(FAKE_CONSUL.replace("{python}", python))
    path.chmod(0o755)
    return path
