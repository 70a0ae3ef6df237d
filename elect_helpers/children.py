"""Child processes that cannot outlive the Python process that started them.

A notebook kernel that crashes or is killed must not leave agents or nodes running.  On
Linux, ``prctl(PR_SET_PDEATHSIG)`` asks the kernel to signal the child when its parent goes
away.  The kernel ties that to the *thread* that forked the child, so start children from a
thread that lives as long as they should (the main thread, or one long-lived spawner thread).
Elsewhere the callers' own ``stop()``/``close()`` and ``atexit`` hooks are the only guard.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
_PRCTL = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # Linux only


def die_with_parent(
    signum: int = signal.SIGTERM, *, own_process_group: bool = False
) -> Callable[[], None]:
    """Return a ``preexec_fn`` for :class:`subprocess.Popen` that binds the child to us.

    In the child, between fork and exec, it optionally moves the child into its own process
    group (so a Ctrl-C for the parent does not reach it and the group can be signalled as
    one), asks for ``signum`` when the parent dies, and exits at once if the parent already
    died before that request took effect.
    """
    parent = os.getpid()

    def in_child() -> None:
        if own_process_group:
            os.setpgid(0, 0)
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return in_child
