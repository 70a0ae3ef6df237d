"""Child processes of a dev datacenter: the server with scaled gossip, and client agents.

:class:`ServerAgentProcess` is :class:`~.process.DevAgentProcess` with ``-gossip-lan-*``
flags; :class:`ClientAgentProcess` runs ``python -m elect_helpers.devagent -join ...``.  Both
die with the thread that started them (``PR_SET_PDEATHSIG``), and offer the signals the
playground uses on a host: :meth:`kill` (SIGKILL), :meth:`freeze` (SIGSTOP), :meth:`thaw`
(SIGCONT) and :meth:`stop` (SIGTERM: a client leaves gracefully, then exits).
"""

from __future__ import annotations

import os
import signal

from ..durations import format_duration
from .gossip import DEV_GOSSIP, GossipConfig
from .process import DevAgentProcess


def gossip_flags(config: GossipConfig) -> list[str]:
    """The command-line flags that give an agent ``config``'s timings."""
    return [
        "-gossip-lan-probe-interval", format_duration(config.probe_interval_ns),
        "-gossip-lan-probe-timeout", format_duration(config.probe_timeout_ns),
        "-gossip-lan-suspicion-mult", str(config.suspicion_mult),
    ]  # fmt: skip


class _Signals:
    """Signals for a child process (``pid`` provided by the process class)."""

    pid: int

    def kill(self) -> None:
        """SIGKILL: the agent dies at once, without leaving (a host losing power)."""
        os.kill(self.pid, signal.SIGKILL)

    def freeze(self) -> None:
        """SIGSTOP: the agent stops answering anything (a host that hangs)."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: a frozen agent runs on."""
        os.kill(self.pid, signal.SIGCONT)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (a client leaves gracefully first), SIGKILL if it lingers; a frozen agent
        is thawed first so that it can act on the SIGTERM."""
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        super().stop(timeout)  # type: ignore[misc]


class ServerAgentProcess(_Signals, DevAgentProcess):
    """The datacenter's server in a child process, with the given gossip timings."""

    def __init__(self, gossip: GossipConfig | None = None, **kwargs: object) -> None:
        super().__init__(port=0, **kwargs)  # type: ignore[arg-type]
        self.gossip = gossip or DEV_GOSSIP

    def command(self) -> list[str]:
        """The server's command line with its gossip flags."""
        return super().command() + gossip_flags(self.gossip)


class ClientAgentProcess(_Signals, DevAgentProcess):
    """A client agent in a child process, joined to the agent at ``join`` (host:port)."""

    def __init__(
        self,
        join: str,
        node_name: str,
        gossip: GossipConfig | None = None,
        advertise_serf: str | None = None,
        node_id: str | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(port=0, node_name=node_name, **kwargs)  # type: ignore[arg-type]
        self.join = join
        self.advertise_serf = advertise_serf
        self.node_id = node_id
        self.gossip = gossip or DEV_GOSSIP

    def command(self) -> list[str]:
        """``python -m elect_helpers.devagent -join ... -node ...`` with the gossip flags."""
        extra = ["-advertise-serf-lan", self.advertise_serf] if self.advertise_serf else []
        extra += ["-node-id", self.node_id] if self.node_id else []
        return [*super().command(), "-join", self.join, *gossip_flags(self.gossip), *extra]
