"""Step 1 of the recipe: register a node as a service with an HTTP health check it serves.

Each node runs a tiny HTTP endpoint, :class:`HealthEndpoint`, answering ``GET /_health``
(200 while healthy, 503 when told it is not).  :func:`register_node` registers the node
with the local agent as an instance of ``service`` whose check polls that endpoint, so
Consul's view of the node's health comes from the node itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import consul

from .connection import consul_call
from .durations import seconds_to_go
from .errors import (
    ConsulError,
    ElectHelpersError,
    InvalidArgument,
    ServiceNotFound,
    duration_argument,
)
from .watch import BlockingReader, health_checks_fetch

HEALTH_PATH = "/_health"
CHECK_STATUSES = ("passing", "warning", "critical")  # what Consul reports for a check


class HealthEndpoint:
    """Serve ``GET /_health`` on a loopback port in a background thread.

    Answers 200 ``ok`` while healthy and 503 ``unhealthy`` after ``set_healthy(False)``;
    any other path is 404.  ``port=0`` picks a free port; ``.url`` is the full check URL.
    Use as a context manager or call :meth:`stop`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        endpoint = self
        self._healthy = True
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != HEALTH_PATH:
                    self._answer(404, b"not found\n")
                    return
                endpoint.requests += 1
                if endpoint._healthy:
                    self._answer(200, b"ok\n")
                else:
                    self._answer(503, b"unhealthy\n")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # Consul polls this; do not fill the notebook with access logs

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise ElectHelpersError(f"cannot serve {HEALTH_PATH} on {host}:{port}: {exc}") from None
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}{HEALTH_PATH}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name=f"health-{self.port}",
            daemon=True,
        )
        self._thread.start()

    @property
    def healthy(self) -> bool:
        return self._healthy

    def set_healthy(self, healthy: bool) -> None:
        """Answer 200 (True) or 503 (False) from now on."""
        self._healthy = bool(healthy)

    def stop(self) -> None:
        """Stop serving (the check then fails with connection refused)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> HealthEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Registration:
    """What :func:`register_node` registered: the service ID and its check's ID."""

    service_id: str
    check_id: str


def register_node(
    client: consul.Consul,
    node: str,
    service: str,
    *,
    health_url: str,
    address: str = "127.0.0.1",
    port: int = 0,
    interval: str | float = "10s",
    timeout: str | float = "2s",
) -> Registration:
    """Register ``node`` as an instance of ``service`` with an HTTP check on ``health_url``.

    The service ID is the node name and the check ID ``service:<node>``.  Consul starts the
    check as ``critical`` and runs it every ``interval`` (first run within one interval);
    use :func:`wait_for_check` before binding a session to it.  Registering the same node
    again updates it.
    """
    if not node or "/" in node:
        raise InvalidArgument(f"node name must be non-empty and without '/', got {node!r}")
    if not service:
        raise InvalidArgument("service name must be non-empty")
    if not health_url.startswith(("http://", "https://")):
        raise InvalidArgument(f"health_url must be an http(s) URL, got {health_url!r}")
    interval_s = duration_argument("interval", interval)
    timeout_s = duration_argument("timeout", timeout)
    if interval_s <= 0 or timeout_s <= 0:
        raise InvalidArgument("interval and timeout must be positive durations")
    check = consul.Check.http(
        health_url, seconds_to_go(interval_s), timeout=seconds_to_go(timeout_s)
    )
    with consul_call(client, f"registering node {node} as service {service}"):
        client.agent.service.register(
            service, service_id=node, address=address, port=port or None, check=check
        )
    return Registration(service_id=node, check_id=f"service:{node}")


def deregister_node(client: consul.Consul, service_id: str) -> None:
    """Remove a service (and its check) from the local agent.

    Sessions bound to its check are invalidated.  Raises :class:`ServiceNotFound` for an
    unknown ID.
    """
    if not service_id:
        raise InvalidArgument("deregister_node needs a service ID, got an empty one")
    try:
        with consul_call(client, f"deregistering service {service_id}"):
            done = client.agent.service.deregister(service_id)
    except ConsulError as exc:
        if exc.status == 404:
            done = False
        else:
            raise
    if not done:
        raise ServiceNotFound(
            f"the agent has no service with ID {service_id!r} (IDs are the node names "
            "given to register_node)"
        )


def check_status(client: consul.Consul, check_id: str) -> str | None:
    """The status of a check on the local agent (``passing``/``warning``/``critical``),
    or ``None`` if there is no such check."""
    with consul_call(client, f"reading check {check_id}"):
        checks = client.agent.checks()
    check = checks.get(check_id)
    return None if check is None else check.get("Status")


def wait_for_check(
    client: consul.Consul,
    service: str,
    check_id: str,
    status: str = "passing",
    timeout: str | float = "30s",
) -> None:
    """Block until ``check_id`` of ``service`` has ``status`` in the catalog, using blocking
    health queries (no polling).  Raises :class:`~.errors.WaitTimeout` after ``timeout``, and
    :class:`InvalidArgument` for a status Consul never reports or a timeout that is not a
    duration."""
    if status not in CHECK_STATUSES:
        raise InvalidArgument(f"status must be one of {', '.join(CHECK_STATUSES)}, got {status!r}")
    limit = duration_argument("timeout", timeout)

    def current(checks: list[dict] | None) -> str | None:
        return next((c.get("Status") for c in checks or [] if c.get("CheckID") == check_id), None)

    with BlockingReader(client) as reader:
        reader.wait_until(
            health_checks_fetch(service),
            lambda checks: True if current(checks) == status else None,
            limit,
            what=f"waiting for check {check_id}",
            on_timeout=lambda checks: (
                f"check {check_id} of service {service} did not become {status} within "
                f"{seconds_to_go(limit)} (it is {current(checks) or 'not registered'}); is "
                "the health endpoint answering?"
            ),
        )
