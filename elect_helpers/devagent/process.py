"""``DevAgentProcess``: the embedded dev agent in a child process that cannot outlive us.

The child runs ``python -m elect_helpers.devagent``; on Linux it asks the kernel (through
``prctl(PR_SET_PDEATHSIG)``) to receive SIGTERM when its parent dies, so no orphan survives a
crashed test run.  :meth:`DevAgentProcess.stop` terminates it (SIGKILL if it lingers).
"""

from __future__ import annotations

import collections
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from types import TracebackType

from ..children import die_with_parent
from .server import DEFAULT_PORT

_ADDRESS_LINE = re.compile(r"^\s*HTTP address:\s*(http://\S+)\s*$")
READY_LEADER = "127.0.0.1:8300"


class DevAgentProcess:
    """Run the dev agent as a child process; a context manager with ``address``/``url``/``pid``.

    The parent-death signal is tied to the thread that starts the child: start it from a
    thread that lives as long as you need the agent (normally the main thread).
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        host: str = "127.0.0.1",
        session_ttl_min: str | float = "10s",
        node_name: str | None = None,
        datacenter: str = "dc1",
        log_level: str = "info",
        start_timeout: float = 20.0,
    ) -> None:
        self.port = port
        self.host = host
        self.session_ttl_min = (
            session_ttl_min if isinstance(session_ttl_min, str) else f"{float(session_ttl_min)}s"
        )
        self.node_name = node_name
        self.datacenter = datacenter
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.url: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: tempfile._TemporaryFileWrapper[bytes] | None = None
        self._stdout_tail: collections.deque[str] = collections.deque(maxlen=50)
        self._found = threading.Event()

    @property
    def address(self) -> str:
        """``host:port`` of the running child."""
        if self.url is None:
            raise RuntimeError("the dev agent process is not running; call start() first")
        return self.url.removeprefix("http://")

    @property
    def pid(self) -> int:
        """The child's process id."""
        if self._proc is None:
            raise RuntimeError("the dev agent process is not running; call start() first")
        return self._proc.pid

    def command(self) -> list[str]:
        """The child's command line."""
        cmd = [
            sys.executable, "-m", "elect_helpers.devagent",
            "-http-port", str(self.port),
            "-client", self.host,
            "-datacenter", self.datacenter,
            "-session-ttl-min", self.session_ttl_min,
            "-log-level", self.log_level,
        ]  # fmt: skip
        if self.node_name:
            cmd += ["-node", self.node_name]
        return cmd

    def start(self) -> DevAgentProcess:
        """Start the child and wait until it answers ``/v1/status/leader``; return ``self``."""
        if self._proc is not None:
            return self
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        threading.Thread(target=self._read_stdout, name="devagent-stdout", daemon=True).start()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self._stdout_tail.append(line)
            match = _ADDRESS_LINE.match(line)
            if match and self.url is None:
                self.url = match.group(1)
                self._found.set()

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(self._failure(f"exited with code {self._proc.returncode}"))
            if self._found.wait(0.05) and self._leader_ready():
                return
        raise RuntimeError(self._failure(f"did not become ready within {self.start_timeout}s"))

    def _leader_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v1/status/leader", timeout=2) as response:
                return json.loads(response.read()) == READY_LEADER
        except (OSError, ValueError):
            return False

    def _failure(self, what: str) -> str:
        stderr = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            stderr = self._stderr.read().decode(errors="replace").strip()
        stdout = "\n".join(self._stdout_tail).strip()
        return (
            f"The embedded dev agent process ({' '.join(self.command())}) {what}.\n"
            f"--- its stderr ---\n{stderr or '(empty)'}\n--- its stdout ---\n{stdout or '(empty)'}"
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the child (SIGTERM, then SIGKILL after ``timeout``) and reap it."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._proc = None
        self.url = None

    def __enter__(self) -> DevAgentProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
