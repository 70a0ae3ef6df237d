"""One simulated node's life: health endpoint, registration, campaign, step-down.

The main thread sets things up and then only waits for SIGTERM/SIGINT; the campaign
(waiting for a bound check to pass, then :class:`elect_helpers.election.Election`) and the
leader's writes run on background threads.  Every step is an event in the node's log.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from elect_helpers import connection, election, lock, service
from elect_helpers.durations import seconds_to_go
from elect_helpers.errors import AgentUnreachable, ElectHelpersError, NodeFailure
from elect_helpers.events import EventLog
from elect_helpers.node.options import NodeOptions
from elect_helpers.node.writer import LeaderWriter

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
AGENT_GRACE = 2.0  # seconds a node keeps asking an agent that resets or refuses at start-up


class NodeRunner:
    """Runs one node with validated :class:`NodeOptions` until asked to stop."""

    def __init__(self, options: NodeOptions, log: EventLog) -> None:
        self.options = options
        self.log = log
        self.stop_requested = threading.Event()
        self._lock = threading.Lock()
        self._client = connection.consul_client()
        self._health: service.HealthEndpoint | None = None
        self._registration: service.Registration | None = None
        self._election: election.Election | None = None
        self._writer: LeaderWriter | None = None
        self._token: int | None = None
        self.failure: str | None = None

    # -- start-up ---------------------------------------------------------------------

    def check_agent(self) -> None:
        """Fail early and clearly if the agent is unreachable or refuses our TTL.

        A single reset connection does not end the node: it asks again for
        ``AGENT_GRACE`` seconds before giving up with the agent's address in the message.
        """
        deadline = time.monotonic() + AGENT_GRACE
        while True:
            try:
                ttl_min = connection.agent_session_ttl_min(self._client)
                break
            except AgentUnreachable as exc:  # says where and what to do
                if time.monotonic() >= deadline:
                    raise NodeFailure(str(exc)) from None
                time.sleep(0.2)
            except ElectHelpersError as exc:
                raise NodeFailure(str(exc)) from None
        if self.options.ttl < ttl_min:
            raise NodeFailure(
                f"--ttl {seconds_to_go(self.options.ttl)} is below this agent's session_ttl_min "
                f"({seconds_to_go(ttl_min)}); Consul accepts TTLs from session_ttl_min to 24h. "
                "Use a longer --ttl or start the agent with a lower session_ttl_min"
            )

    def register(self) -> None:
        """Serve /_health and register the node as a service with an HTTP check on it."""
        opts = self.options
        self._health = service.HealthEndpoint()
        self.log.emit("started", detail=f"pid {os.getpid()}, health {self._health.url}")
        self._registration = service.register_node(
            self._client,
            opts.name,
            opts.service,
            health_url=self._health.url,
            address="127.0.0.1",
            port=self._health.port,
            interval=opts.check_interval,
            timeout=opts.check_timeout,
        )
        self.log.emit(
            "registered",
            detail=f"service {opts.service} id {self._registration.service_id}, "
            f"check {self._registration.check_id} every {seconds_to_go(opts.check_interval)}",
        )

    def start_campaign(self) -> None:
        """Campaign on a background thread (after the bound check passes, if bound)."""
        threading.Thread(target=self._campaign, name="campaign", daemon=True).start()

    def _campaign(self) -> None:
        opts = self.options
        assert self._registration is not None and self._health is not None
        try:
            if opts.bind_check:
                service.wait_for_check(
                    self._client,
                    opts.service,
                    self._registration.check_id,
                    timeout=max(30.0, 3 * opts.check_interval),
                )
                self.log.emit("check-passing", detail=f"{self._registration.check_id}")
            urls = {"fenced": opts.resource, "unfenced": opts.unfenced_resource}
            urls = {kind: url for kind, url in urls.items() if url}
            with self._lock:
                if self.stop_requested.is_set():
                    return
                if urls:
                    self._writer = LeaderWriter(
                        opts.name, urls, opts.write_interval, self.log, self._session
                    )
                    self._writer.start()
                self._election = election.Election(
                    self._client,
                    opts.key,
                    opts.name,
                    address=f"127.0.0.1:{self._health.port}",
                    settings=opts.settings,
                    on_elected=self._on_elected,
                    on_lost=self._on_lost,
                    on_leader_observed=self._on_leader_observed,
                    on_error=self._on_error,
                )
                self.log.emit(
                    "campaigning",
                    detail=f"key {opts.key}, ttl {seconds_to_go(opts.ttl)}, "
                    f"behavior {opts.behavior}, lock-delay {seconds_to_go(opts.lock_delay)}, "
                    + ("bound to its check" if opts.bind_check else "not bound to its check"),
                )
                self._election.start()
        except Exception as exc:  # the node cannot go on: say why, then step down
            self.failure = str(exc) or type(exc).__name__
            self.log.emit("error", detail=f"campaign failed: {self.failure}")
            print(f"{opts.name}: campaign failed: {self.failure}", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGTERM)  # the main thread steps down

    # -- election callbacks ---------------------------------------------------------------

    def _session(self) -> str | None:
        return self._election.session_id if self._election else None

    def _on_elected(self, term: election.Term) -> None:
        number = int(term)  # the sequence: grows with every new leader, see lock.FencingToken
        self._token = number
        self.log.emit(
            "elected",
            token=number,
            session=term.session,
            detail=f"holds {self.options.key} (lock index {term.lock_index})",
        )
        if self._writer:
            self._writer.lead(term)  # it writes until the term ends

    def _on_lost(self, reason: str) -> None:
        if not self.stop_requested.is_set():  # a resignation gets its own "resigned" event
            self.log.emit("lost", token=self._token, session=self._session(), detail=reason)
        self._token = None

    def _on_error(self, exc: Exception) -> None:
        self.log.emit("error", session=self._session(), detail=str(exc))
        if self._election is not None and self._election.failure is not None:
            self.failure = str(exc)  # the election gave up for good: stop the node
            os.kill(os.getpid(), signal.SIGTERM)

    def _on_leader_observed(self, info: lock.LeaderInfo | None) -> None:
        if info is None:
            self.log.emit("leader-observed", detail="no leader")
        else:
            self.log.emit("leader-observed", session=info.session, detail=f"leader is {info.node}")

    # -- shutdown -------------------------------------------------------------------------

    def step_down(self) -> bool:
        """Stop writing, resign (release the key if the session may hold it, then destroy
        the session), then deregister: release -> destroy -> deregister, so a graceful stop
        leaves no lock-delay, no session and no service behind.  True if all went well."""
        ok = True
        with self._lock:
            self.stop_requested.set()
        if self._writer:
            self._writer.stop()
        if self._election is not None:
            token, session = self._token, self._session()
            try:
                self._election.resign()
                self.log.emit(
                    "resigned",
                    token=token,
                    session=session,
                    detail=self._election.stepped_down or "had no session",
                )
            except ElectHelpersError as exc:
                ok = False
                self.log.emit("error", session=session, detail=f"resign failed: {exc}")
        if self._registration is not None:
            try:
                service.deregister_node(self._client, self._registration.service_id)
                self.log.emit("deregistered", detail=self._registration.service_id)
            except ElectHelpersError as exc:
                ok = False
                self.log.emit("error", detail=f"deregister failed: {exc}")
        # The health endpoint is left to die with the process: it is deregistered already,
        # and shutting its server down would only add a poll interval to every exit.
        return ok


def run(options: NodeOptions) -> int:
    """Run a node until SIGTERM/SIGINT; return the process exit status."""
    # Block SIGTERM/SIGINT before any thread exists (threads inherit the mask) and take
    # them with sigwait() in the main thread.  A Python handler would not do: after
    # SIGSTOP/SIGCONT the kernel may hand a pending SIGTERM to any thread, and the main
    # thread, asleep in a lock wait, would never run the handler.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    log = EventLog(options.events, options.name)
    runner = NodeRunner(options, log)
    try:
        runner.check_agent()
        runner.register()
    except ElectHelpersError as exc:  # NodeFailure included
        print(f"{options.name}: {exc}", file=sys.stderr, flush=True)
        log.emit("error", detail=str(exc))
        runner.step_down()
        return 1
    if options.ready_fd is not None:
        os.write(options.ready_fd, b"ready\n")
        os.close(options.ready_fd)
    runner.start_campaign()
    signal.sigwait(STOP_SIGNALS)
    ok = runner.step_down() and runner.failure is None
    log.emit("stopped", detail="graceful step-down" if ok else "stepped down after errors")
    log.close()
    return 0 if ok else 1
