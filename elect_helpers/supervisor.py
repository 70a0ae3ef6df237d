"""Process supervision: start child processes that die with us, signal them, reap them.

Every child gets its own process group (signals go to the whole group) and
``PR_SET_PDEATHSIG = SIGKILL`` (see :mod:`elect_helpers.children`), so the kernel kills it
when the controller dies, even by SIGKILL (a crashed notebook kernel).  The signal fires
when the *thread* that forked the child ends, so all children are forked from one
long-lived helper thread (:class:`Supervisor` owns it).

A child reports that it is ready by writing ``ready`` to an inherited pipe (the file
descriptor number is put into its command line by the caller); :meth:`Supervisor.await_ready`
waits for several children at once.  The states a :class:`ChildProcess` goes through:
``new``, ``running``, ``paused`` (SIGSTOP), ``stopped`` (exit 0 after SIGTERM), ``killed``
(SIGKILL from us) and ``exited`` (died on its own, or exited non-zero).
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from elect_helpers.children import die_with_parent
from elect_helpers.errors import NodeNotRunning

_T = TypeVar("_T")
STDERR_TAIL = 2000  # characters of a child's stderr quoted in an error message
ALIVE_STATES = ("running", "paused")


class _Spawner:
    """One long-lived daemon thread that forks every child (see the module docstring)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None]
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="cluster-spawner", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            func, future = item
            try:
                future.set_result(func())
            except BaseException as exc:
                future.set_exception(exc)

    def call(self, func: Callable[[], _T]) -> _T:
        future: Future[_T] = Future()
        self._queue.put((func, future))
        return future.result()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()


@dataclass
class ChildProcess:
    """One supervised process as the supervisor last saw it.

    ``on_signal(detail)`` is called just before each signal is sent (the cluster logs it
    as a ``signal`` event).  ``state`` is only refreshed by :meth:`refresh` (and by the
    supervisor's own actions): it is what we know, not what the kernel knows right now.
    """

    name: str
    stderr_path: Path
    on_signal: Callable[[str], None] = field(default=lambda detail: None, repr=False)
    proc: subprocess.Popen[bytes] | None = None
    state: str = "new"
    exit_code: int | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.state in ALIVE_STATES

    def refresh(self) -> None:
        """Notice a process that died on its own since we last looked."""
        if self.proc is not None and self.alive:
            code = self.proc.poll()
            if code is not None:
                self.state, self.exit_code = "exited", code

    def require_alive(self, action: str) -> None:
        """Raise :class:`NodeNotRunning` (saying how to restart it) unless alive."""
        if not self.alive:
            how = self.state + (
                f", exit status {self.exit_code}" if self.exit_code is not None else ""
            )
            raise NodeNotRunning(
                f"cannot {action} {self.name}: it is not running ({how}); "
                f"start it again with cluster.restart({self.name!r})"
            )

    def send(self, signum: signal.Signals, why: str) -> None:
        """Send ``signum`` to the child's process group (a gone process is no error)."""
        assert self.proc is not None
        self.on_signal(f"controller sent {signum.name} ({why})")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signum)

    def kill_quietly(self) -> None:
        """SIGKILL without a ``signal`` event (start-up failures), and reap."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.state, self.exit_code = "killed", self.proc.returncode

    def stderr_note(self) -> str:
        """``"; its stderr: ..."`` with the end of its stderr, or ``""`` if it wrote none."""
        try:
            text = self.stderr_path.read_text(errors="replace").strip()
        except OSError:
            return ""
        return f"; its stderr: {text[-STDERR_TAIL:]}" if text else ""


class Supervisor:
    """Launches :class:`ChildProcess` es from one thread and drives their signals."""

    def __init__(self) -> None:
        self._spawner = _Spawner()

    def launch(
        self, child: ChildProcess, argv_for: Callable[[int], list[str]], env: dict[str, str]
    ) -> int:
        """Start ``argv_for(ready_fd)``; return the read end of its ready pipe.

        Output goes to ``child.stderr_path``; stdin and stdout are /dev/null.
        """
        read_fd, write_fd = os.pipe()
        try:
            argv = argv_for(write_fd)
            die_with_us = die_with_parent(signal.SIGKILL, own_process_group=True)
            with open(child.stderr_path, "wb") as stderr:
                child.proc = self._spawner.call(
                    lambda: subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=stderr,
                        env=env,
                        pass_fds=(write_fd,),
                        preexec_fn=die_with_us,
                    )
                )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        child.state, child.exit_code = "running", None
        return read_fd

    def await_ready(self, pending: dict[int, ChildProcess], timeout: float) -> list[str]:
        """Wait until each child wrote ``ready`` to its pipe (keyed by the read end).

        Returns one message per child that exited first or did not get ready within
        ``timeout`` seconds (those are killed); closes every pipe.
        """
        deadline = time.monotonic() + timeout
        buffers = {fd: b"" for fd in pending}
        failures = []
        try:
            while pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    for child in pending.values():
                        child.kill_quietly()
                        failures.append(
                            f"{child.name} did not register within {timeout:g}s "
                            f"and was killed{child.stderr_note()}"
                        )
                    break
                readable, _, _ = select.select(list(pending), [], [], remaining)
                for fd in readable:
                    chunk = os.read(fd, 64)
                    buffers[fd] += chunk
                    if b"ready" in buffers[fd] or not chunk:
                        child = pending.pop(fd)
                        os.close(fd)
                        if not chunk and b"ready" not in buffers[fd]:
                            failures.append(self._start_failure(child))
        finally:
            for fd in pending:
                os.close(fd)
        return failures

    @staticmethod
    def _start_failure(child: ChildProcess) -> str:
        assert child.proc is not None
        try:
            code = child.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill_quietly()
            code = child.proc.returncode
        child.state, child.exit_code = "exited", code
        return f"{child.name} failed to start (exit status {code}){child.stderr_note()}"

    # -- signals --------------------------------------------------------------------------

    def terminate(self, children: Sequence[ChildProcess], timeout: float, why: str) -> None:
        """SIGTERM each (SIGCONT too if paused, so it can act on it), wait for them to
        exit; SIGKILL whoever is still there after ``timeout`` seconds."""
        for child in children:
            child.send(signal.SIGTERM, why)
            if child.state == "paused":
                child.send(signal.SIGCONT, "wake up to handle SIGTERM")
        deadline = time.monotonic() + timeout
        for child in children:
            assert child.proc is not None
            try:
                code = child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.send(signal.SIGKILL, f"did not exit within {timeout:g}s")
                child.proc.wait()
                child.state, child.exit_code = "killed", child.proc.returncode
                continue
            child.state = "stopped" if code == 0 else "exited"
            child.exit_code = code

    @staticmethod
    def kill(child: ChildProcess) -> None:
        """SIGKILL (a crash: no chance to clean up) and reap."""
        child.require_alive("kill")
        assert child.proc is not None
        child.send(signal.SIGKILL, "crash")
        child.proc.wait()
        child.state, child.exit_code = "killed", child.proc.returncode

    @staticmethod
    def pause(child: ChildProcess) -> None:
        """SIGSTOP: freeze it, as a long GC pause or a VM freeze would."""
        child.require_alive("pause")
        if child.state == "paused":
            raise NodeNotRunning(f"{child.name} is already paused; resume it with resume()")
        child.send(signal.SIGSTOP, "freeze")
        child.state = "paused"

    @staticmethod
    def resume(child: ChildProcess) -> None:
        """SIGCONT: wake a paused child."""
        child.require_alive("resume")
        if child.state != "paused":
            raise NodeNotRunning(f"{child.name} is not paused ({child.state}); nothing to resume")
        child.send(signal.SIGCONT, "wake up")
        child.state = "running"

    def close(self) -> None:
        """End the spawner thread (children already started are not touched)."""
        self._spawner.close()
