"""The agent's local state: services and checks registered through ``/v1/agent/...``.

Consul keeps these on the agent and pushes them to the catalog by anti-entropy.  Here every
registration and every status change is pushed to the catalog at once, in the calling thread,
so a check that turns critical has invalidated its sessions before the call that caused it
returns.  Output-only changes are deferred like Consul's ``check_update_interval`` (5 min).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace

from .catalog import Catalog, HealthCheck, Service
from .checks import (
    CheckSpec,
    IntervalRunner,
    Runner,
    TTLRunner,
    http_probe,
    script_probe,
    tcp_probe,
)
from .errors import Failure, NotFound, go_quote
from .store import Store, WriteTxn
from .timers import Timer, TimerService

log = logging.getLogger("elect_helpers.devagent")

CHECK_UPDATE_INTERVAL_NS = 5 * 60 * 1_000_000_000


def _unknown_check(check_id: str) -> NotFound:
    """The 404 of ``vetCheckUpdateWithAuthorizer`` for a check this agent does not have."""
    return NotFound(
        f"Unknown check ID {go_quote(check_id)}. Ensure that the check ID is passed, "
        "not the check name."
    )


@dataclass
class LocalCheck:
    """An agent check: its local record, how it runs, and a pending deferred sync."""

    check: HealthCheck
    spec: CheckSpec | None
    runner: Runner | None = None
    ttl: TTLRunner | None = None
    deferred: Timer | None = None


class LocalAgent:
    """Services and checks owned by this agent, kept in sync with the catalog."""

    def __init__(
        self,
        node_name: str,
        store: Store,
        catalog: Catalog,
        timers: TimerService,
        check_update_interval_ns: int = CHECK_UPDATE_INTERVAL_NS,
        rng: random.Random | None = None,
        start_runners: bool = True,
        enable_script_checks: bool = False,
    ) -> None:
        self.node_name = node_name
        self.enable_script_checks = enable_script_checks
        self._store = store
        self._catalog = catalog
        self._timers = timers
        self._update_interval = check_update_interval_ns
        self._rng = rng or random.Random()
        self._start_runners = start_runners
        self._services: dict[str, Service] = {}
        self._checks: dict[str, LocalCheck] = {}

    # ----- views ------------------------------------------------------------------------

    def services(self) -> dict[str, Service]:
        """Copies of the local services keyed by ID."""
        with self._store.lock:
            return {k: replace(v) for k, v in sorted(self._services.items())}

    def checks(self) -> dict[str, HealthCheck]:
        """Copies of the local checks keyed by ID."""
        with self._store.lock:
            return {k: replace(v.check) for k, v in sorted(self._checks.items())}

    # ----- registration -----------------------------------------------------------------

    def add_service(
        self,
        service: Service,
        checks: list[tuple[HealthCheck, CheckSpec]],
        replace_existing_checks: bool = False,
    ) -> None:
        """Register (or re-register) a service with its checks and sync it to the catalog.

        A check that already existed keeps its status and output.  With
        ``replace_existing_checks`` the service's other checks are removed.
        """
        for _, spec in checks:
            self._refuse_scripts(spec)
        with self._store.lock:
            keep = {c.check_id for c, _ in checks}
            stale = [
                cid
                for cid, lc in self._checks.items()
                if lc.check.service_id == service.id and cid not in keep
            ]
            self._services[service.id] = service
            with self._store.write() as txn:
                self._catalog.ensure_service(txn, self.node_name, replace(service))
                for check, spec in checks:
                    self._put_check(txn, check, spec)
                if replace_existing_checks:
                    for cid in stale:
                        self._drop_check(txn, cid)

    def remove_service(self, service_id: str) -> None:
        """Deregister a service and its checks (sessions bound to them are invalidated)."""
        with self._store.lock:
            if service_id not in self._services:
                raise NotFound(
                    f"Unknown service ID {go_quote(service_id)}. Ensure that the service ID is "
                    "passed, not the service name."
                )
            del self._services[service_id]
            with self._store.write() as txn:
                for cid in [
                    c for c, lc in self._checks.items() if lc.check.service_id == service_id
                ]:
                    self._drop_check(txn, cid)
                self._catalog.delete_service(txn, self.node_name, service_id)

    def add_check(self, check: HealthCheck, spec: CheckSpec | None) -> None:
        """Register a standalone (or service-attached) check; ``ServiceID`` must exist.

        ``spec`` None is a check nothing runs (a maintenance check): its status stays."""
        with self._store.lock:
            if check.service_id:
                service = self._services.get(check.service_id)
                if service is None:
                    raise NotFound(f"ServiceID {go_quote(check.service_id)} does not exist")
                check.service_name = service.service
                check.service_tags = list(service.tags)
            self._refuse_scripts(spec)
            with self._store.write() as txn:
                self._put_check(txn, check, spec)

    def remove_check(self, check_id: str) -> None:
        """Deregister a check (sessions bound to it are invalidated)."""
        with self._store.lock:
            if check_id not in self._checks:
                raise _unknown_check(check_id)
            with self._store.write() as txn:
                self._drop_check(txn, check_id)

    def _refuse_scripts(self, spec: CheckSpec | None) -> None:
        """``addCheck``: script checks from the HTTP API need ``enable_script_checks``."""
        if spec is not None and spec.is_script() and not self.enable_script_checks:
            raise Failure(
                "Scripts are disabled on this agent from remote calls; to enable, configure "
                "'enable_script_checks' to true"
            )

    def _put_check(self, txn: WriteTxn, check: HealthCheck, spec: CheckSpec | None) -> None:
        previous = self._checks.pop(check.check_id, None)
        if previous is not None:
            check.status, check.output = previous.check.status, previous.check.output
            self._stop(previous)
        local = LocalCheck(check=check, spec=spec)
        self._checks[check.check_id] = local
        self._catalog.ensure_check(txn, replace(check))
        self._start(local)

    def _drop_check(self, txn: WriteTxn, check_id: str) -> None:
        local = self._checks.pop(check_id)
        self._stop(local)
        self._catalog.delete_check(txn, self.node_name, check_id)

    def _start(self, local: LocalCheck) -> None:
        spec = local.spec
        check_id = local.check.check_id
        if spec is None:
            return

        def update(status: str, output: str) -> None:
            self.update_check(check_id, status, output, runner=local)

        kind = spec.type()
        if kind == "ttl":
            local.ttl = TTLRunner(check_id, spec.ttl, self._timers, update)
            local.ttl.start()
        elif not self._start_runners:
            return
        elif kind == "http":
            local.runner = IntervalRunner(
                check_id, lambda: http_probe(spec), spec.interval, update, self._rng
            )
        elif kind == "tcp":
            local.runner = IntervalRunner(
                check_id, lambda: tcp_probe(spec), spec.interval, update, self._rng
            )
        elif kind == "script":
            local.runner = IntervalRunner(
                check_id, lambda: script_probe(spec), spec.interval, update, self._rng
            )
        else:
            log.warning(
                "check %r of type %r is stored but not run by the embedded agent",
                check_id,
                kind or "unknown",
            )
        if local.runner is not None:
            local.runner.start()

    def _stop(self, local: LocalCheck) -> None:
        if local.runner is not None:
            local.runner.stop()
        if local.ttl is not None:
            local.ttl.stop()
        self._timers.cancel(local.deferred)

    # ----- status updates -------------------------------------------------------------

    def update_ttl(self, check_id: str, status: str, output: str) -> None:
        """``/v1/agent/check/{pass,warn,fail,update}``: set a TTL check and reset its timer."""
        with self._store.lock:
            local = self._checks.get(check_id)
            if local is None:
                raise _unknown_check(check_id)
            if local.ttl is None:
                raise Failure(f"CheckID {go_quote(check_id)} does not have associated TTL")
            local.ttl.set_status(status, output)

    def update_check(
        self, check_id: str, status: str, output: str, runner: LocalCheck | None = None
    ) -> None:
        """Apply a new status/output (``local.State.UpdateCheck``).

        A status change reaches the catalog immediately; an output-only change is deferred
        by the check update interval.  Updates from a runner that was replaced are dropped.
        """
        with self._store.lock:
            local = self._checks.get(check_id)
            if local is None or (runner is not None and local is not runner):
                return
            check = local.check
            if check.status == status and check.output == output:
                return
            if self._update_interval > 0 and check.status == status:
                check.output = output
                if local.deferred is None:
                    delay = self._update_interval // 2 + int(
                        self._rng.random() * self._update_interval
                    )
                    local.deferred = self._timers.call_later(
                        delay,
                        lambda: self._deferred_sync(check_id, local),
                        name=f"deferred sync {check_id}",
                    )
                return
            if status != check.status:
                log.info("check %r is now %s", check_id, status)
            check.status, check.output = status, output
            self._sync(local)

    def _deferred_sync(self, check_id: str, local: LocalCheck) -> None:
        with self._store.lock:
            if self._checks.get(check_id) is local:
                self._sync(local)

    def _sync(self, local: LocalCheck) -> None:
        self._timers.cancel(local.deferred)
        local.deferred = None
        with self._store.write() as txn:
            self._catalog.ensure_check(txn, replace(local.check))

    def close(self) -> None:
        """Stop every check runner."""
        with self._store.lock:
            for local in self._checks.values():
                self._stop(local)
