"""JupyterLab as a child process for the browser test, and the process-tree bookkeeping.

:class:`LabServer` starts ``jupyter lab`` headless on 127.0.0.1 with a random port and token,
with every per-user directory (settings, workspaces, runtime, config, IPython) in a temporary
folder, so a test run neither reads nor writes the user's real JupyterLab set-up.  Its
:meth:`LabServer.stop` shuts the server down through the REST API (which shuts down the
kernels, whose ``Cluster`` objects then stop their nodes), and kills by pid whatever the
server had started and is still alive afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
NOTEBOOK = REPO / "notebooks" / "07-a-cluster-you-can-break.ipynb"
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach the (closed) internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# User settings the test needs: no news or update pop-up (JupyterLab would ask to go online).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def descendants(root: int) -> dict[int, str]:
    """Map every live descendant of ``root`` to its start time (to tell a reused pid apart)."""
    children: dict[int, list[int]] = {}
    start: dict[int, str] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        pid = int(stat_file.parent.name)
        fields = _stat_fields(pid)
        if fields is None or fields[0] == "Z":
            continue
        children.setdefault(int(fields[1]), []).append(pid)
        start[pid] = fields[19]  # field 22 of stat: start time since boot
    found: dict[int, str] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found[pid] = start[pid]
        todo.extend(children.get(pid, []))
    return found


def still_alive(processes: dict[int, str]) -> list[int]:
    """The pids of ``processes`` (pid -> start time) that still run (zombies count as gone)."""
    alive = []
    for pid, started in processes.items():
        fields = _stat_fields(pid)
        if fields is not None and fields[0] != "Z" and fields[19] == started:
            alive.append(pid)
    return alive


def _command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


class LabServer:
    """``jupyter lab`` serving ``root_dir`` on 127.0.0.1; ``env`` is added to its environment.

    ``state_dir`` (an empty temporary directory) receives the settings, workspaces, runtime
    files and the server's log (``lab.log``).
    """

    def __init__(self, root_dir: Path, state_dir: Path, env: dict[str, str]) -> None:
        self.root_dir = root_dir
        self.state_dir = state_dir
        self.extra_env = env
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.log_path = state_dir / "lab.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        """The browser URL of ``path`` (e.g. ``lab/tree/x.ipynb``), with the token."""
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def _write_settings(self) -> Path:
        settings_dir = self.state_dir / "lab-settings"
        for name, values in LAB_SETTINGS.items():
            path = settings_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        return settings_dir

    def launch(self) -> LabServer:
        """Start ``jupyter lab`` (without waiting for it: see :meth:`wait_ready`)."""
        env = {
            **os.environ,
            **self.extra_env,
            "JUPYTER_CONFIG_DIR": str(self.state_dir / "config"),
            "JUPYTER_RUNTIME_DIR": str(self.state_dir / "runtime"),
            "IPYTHONDIR": str(self.state_dir / "ipython"),
        }
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            f"--LabApp.user_settings_dir={self._write_settings()}",
            f"--LabApp.workspaces_dir={self.state_dir / 'workspaces'}",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                command,
                cwd=self.root_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the server's API answers; raise with its log if it exits or times out."""
        if self._proc is None:
            raise RuntimeError("the JupyterLab server is not running; call launch() first")
        deadline = time.monotonic() + timeout
        while not self._api_answers():
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with code {self._proc.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"jupyter lab did not answer within {timeout:g}s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _request(self, method: str, path: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status

    def _api_answers(self) -> bool:
        try:
            return self._request("GET", "api/status") == 200
        except OSError:  # refused, or an HTTP error (HTTPError is an OSError too)
            return False

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def stop(self, timeout: float = 15.0) -> list[str]:
        """Shut the server and its kernels down; return the processes that had to be killed.

        Asks the server to shut down (it shuts its kernels down first), falls back to
        SIGKILL of its process group, then SIGKILLs any process the server had
        started (kernel, nodes) that is still alive.  An empty list means a clean exit.
        """
        proc = self._proc
        if proc is None:
            return []
        self._proc = None
        started = descendants(proc.pid)
        with contextlib.suppress(OSError):  # not answering: the SIGKILL below takes over
            self._request("POST", "api/shutdown")
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        deadline = time.monotonic() + timeout
        while still_alive(started) and time.monotonic() < deadline:
            time.sleep(0.1)
        killed = []
        for pid in still_alive(started):
            killed.append(f"{pid}: {_command_line(pid)}")
            os.kill(pid, signal.SIGKILL)
        return killed
