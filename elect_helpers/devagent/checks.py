"""Check definitions and the runners that keep their status current.

:class:`CheckSpec` is Consul's ``CheckType`` (what kind of check, how often, which target);
the runners reproduce ``agent/checks/check.go``: HTTP checks (2xx passing, 429 warning, else
critical, Consul's output text), TCP checks and TTL checks ("TTL expired").  Runners report
through a callback ``update(status, output)``; they never touch the state directly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import ssl
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..durations import SECOND, format_duration
from ..settings import CHECK_INTERVAL_MIN_NS
from .catalog import CRITICAL, PASSING, WARNING
from .errors import go_quote
from .timers import MAX_SLEEP_S, Timer, TimerService

log = logging.getLogger("elect_helpers.devagent")

DEFAULT_TIMEOUT_NS = 10 * SECOND
SCRIPT_TIMEOUT_NS = 30 * SECOND
KILLED_OUTPUT_WAIT_S = 1.0  # a grandchild outside the group may keep the pipe open
DEFAULT_OUTPUT_MAX = 4096
USER_AGENT = "Consul Health Check"
ACCEPT = "text/plain, text/*, */*"

StatusUpdate = Callable[[str, str], None]


@dataclass
class CheckSpec:
    """The runnable part of a check definition (Consul's ``CheckType``); durations in ns."""

    http: str = ""
    method: str = ""
    header: dict[str, list[str]] = field(default_factory=dict)
    body: str = ""
    disable_redirects: bool = False
    tcp: str = ""
    udp: str = ""
    grpc: str = ""
    h2ping: str = ""
    os_service: str = ""
    script_args: list[str] = field(default_factory=list)
    docker_container_id: str = ""
    alias_node: str = ""
    alias_service: str = ""
    interval: int = 0
    timeout: int = 0
    ttl: int = 0
    tls_skip_verify: bool = False
    deregister_critical_service_after: int = 0
    output_max_size: int = 0
    failures_before_warning: int = 0
    failures_before_critical: int = 0

    def _interval_kind(self) -> bool:
        return bool(
            self.script_args
            or self.http
            or self.tcp
            or self.udp
            or self.grpc
            or self.h2ping
            or self.os_service
        )

    def _alias(self) -> bool:
        return bool(self.alias_node or self.alias_service)

    def validate(self) -> str | None:
        """Consul's ``CheckType.Validate`` message, or None when the check is valid."""
        interval_kind = self._interval_kind()
        if self.interval > 0 and self.ttl > 0:
            return "Interval and TTL cannot both be specified"
        if interval_kind and self.interval <= 0:
            return "Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks"
        if interval_kind and self._alias():
            return "Interval cannot be set for Alias checks"
        if self._alias() and self.ttl > 0:
            return "TTL must be not be set for Alias checks"
        if not interval_kind and not self._alias() and self.ttl <= 0:
            return "TTL must be > 0 for TTL checks"
        if self.output_max_size < 0:
            return "MaxOutputMaxSize must be positive"
        if self.failures_before_warning > self.failures_before_critical:
            return "FailuresBeforeWarning can't be higher than FailuresBeforeCritical"
        return None

    def type(self) -> str:
        """Consul's ``CheckType.Type()``: ``http``, ``ttl``, ``tcp``... or ``""``."""
        timed = self.interval > 0
        if self.grpc and timed:
            return "grpc"
        if self.http and timed:
            return "http"
        if self.ttl > 0:
            return "ttl"
        if self.tcp and timed:
            return "tcp"
        if self.udp and timed:
            return "udp"
        if self._alias():
            return "alias"
        if self.script_args and self.docker_container_id and timed:
            return "docker"
        if self.script_args and timed:
            return "script"
        if self.h2ping and timed:
            return "h2ping"
        if self.os_service and timed:
            return "os_service"
        return ""

    def is_script(self) -> bool:
        """Whether the check would execute a script (refused unless script checks are on)."""
        return bool(self.script_args)


class Runner(Protocol):
    """Something that keeps one check's status up to date until stopped."""

    def start(self) -> None:
        """Begin checking."""
        ...

    def stop(self) -> None:
        """Stop checking; no further updates are sent."""
        ...


def _go_method_op(method: str) -> str:
    return method[:1].upper() + method[1:].lower()


def _dial_error(address: str, error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return f"dial tcp {address}: connect: connection refused"
    if isinstance(error, socket.timeout | TimeoutError):
        return f"dial tcp {address}: i/o timeout"
    if isinstance(error, socket.gaierror):
        host = address.rsplit(":", 1)[0]
        return f"dial tcp: lookup {host}: no such host"
    reason = getattr(error, "strerror", None) or str(error)
    return f"dial tcp {address}: {reason}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        """Refuse to follow redirects (``DisableRedirects``)."""
        return None


def http_probe(spec: CheckSpec) -> tuple[str, str]:
    """Run one HTTP check request; return ``(status, output)`` as Consul's CheckHTTP does."""
    method = spec.method or "GET"
    timeout_ns = spec.timeout if spec.timeout > 0 else DEFAULT_TIMEOUT_NS
    limit = spec.output_max_size if spec.output_max_size > 0 else DEFAULT_OUTPUT_MAX
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    for name, values in spec.header.items():
        if values:
            headers[name] = ", ".join(values)
    data = spec.body.encode() if spec.body else None
    request = urllib.request.Request(spec.http, data=data, headers=headers, method=method)
    handlers: list[urllib.request.BaseHandler] = []
    if spec.disable_redirects:
        handlers.append(_NoRedirect())
    if spec.tls_skip_verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    op = f"{_go_method_op(method)} {go_quote(spec.http)}"
    try:
        response = opener.open(request, timeout=timeout_ns / 1e9)
    except urllib.error.HTTPError as error:
        response = error
    except TimeoutError:
        return CRITICAL, (
            f"{op}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )
    except urllib.error.URLError as error:
        parsed = urllib.parse.urlsplit(spec.http)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        reason = error.reason
        if isinstance(reason, TimeoutError):
            return CRITICAL, (
                f"{op}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            )
        if isinstance(reason, BaseException):
            return CRITICAL, f"{op}: {_dial_error(f'{parsed.hostname}:{port}', reason)}"
        return CRITICAL, f"{op}: {reason}"
    except (OSError, ValueError) as error:
        return CRITICAL, f"{op}: {error}"
    with response:
        code = response.status
        try:
            body = response.read(limit)
        except OSError:
            body = b""
        status_line = f"{code} {response.reason}"
    output = f"HTTP {method} {spec.http}: {status_line} Output: {body.decode(errors='replace')}"
    if 200 <= code <= 299:
        return PASSING, output
    if code == 429:
        return WARNING, output
    return CRITICAL, output


def tcp_probe(spec: CheckSpec) -> tuple[str, str]:
    """Connect once to ``spec.tcp``; return ``(status, output)`` as Consul's CheckTCP does."""
    timeout_ns = spec.timeout if spec.timeout > 0 else DEFAULT_TIMEOUT_NS
    host, _, port = spec.tcp.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_ns / 1e9):
            pass
    except (OSError, ValueError) as error:
        return CRITICAL, _dial_error(spec.tcp, error)
    return PASSING, f"TCP connect {spec.tcp}: Success"


class _TailBuffer:
    """``circbuf.Buffer``: keeps the last ``size`` bytes written and counts them all."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.total = 0
        self._data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._data += chunk
        del self._data[: max(0, len(self._data) - self.size)]

    def text(self) -> str:
        """The output as ``truncateAndLogOutput`` reports it."""
        out = self._data.decode(errors="replace")
        if self.total > self.size:
            out = f"Captured {self.size} of {self.total} bytes\n...\n{out}"
        return out


def _start_error(program: str, error: OSError) -> str:
    """Go's ``exec.Cmd.Start`` error text for a program that cannot be started."""
    if isinstance(error, FileNotFoundError) and "/" not in program:
        return f"exec: {go_quote(program)}: executable file not found in $PATH"
    reason = (error.strerror or str(error)).lower()
    return f"fork/exec {program}: {reason}"


def script_probe(spec: CheckSpec) -> tuple[str, str]:
    """Run ``spec.script_args`` once as ``CheckMonitor.check`` does.

    stdout and stderr share one buffer of ``OutputMaxSize`` (4096) bytes that keeps the tail;
    exit 0 is passing, 1 warning, anything else (or death by a signal) critical; after
    ``Timeout`` (30 s by default) the process group is killed and the check is critical with
    ``Timed out (<timeout>) running check`` followed by any output.
    """
    limit = spec.output_max_size if spec.output_max_size > 0 else DEFAULT_OUTPUT_MAX
    timeout_ns = spec.timeout if spec.timeout > 0 else SCRIPT_TIMEOUT_NS
    program = spec.script_args[0]
    try:
        process = subprocess.Popen(
            spec.script_args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        return CRITICAL, _start_error(program, error)
    buffer = _TailBuffer(limit)
    assert process.stdout is not None
    stream = process.stdout

    def drain() -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            buffer.write(chunk)

    reader = threading.Thread(target=drain, name=f"script output {program}", daemon=True)
    reader.start()
    try:
        code = process.wait(timeout_ns / 1e9)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        reader.join(KILLED_OUTPUT_WAIT_S)
        message = f"Timed out ({format_duration(timeout_ns)}) running check"
        output = buffer.text()
        return CRITICAL, f"{message}\n\n{output}" if output else message
    reader.join()
    stream.close()
    if code == 0:
        return PASSING, buffer.text()
    if code == 1:
        return WARNING, buffer.text()
    return CRITICAL, buffer.text()


class IntervalRunner:
    """Runs a probe every interval on a daemon thread (first run after a random stagger)."""

    def __init__(
        self,
        check_id: str,
        probe: Callable[[], tuple[str, str]],
        interval_ns: int,
        update: StatusUpdate,
        rng: random.Random | None = None,
    ) -> None:
        self.check_id = check_id
        self._probe = probe
        self._interval_ns = max(interval_ns, CHECK_INTERVAL_MIN_NS)
        self._update = update
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the probing thread."""
        self._thread = threading.Thread(
            target=self._loop, name=f"check {self.check_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop probing; an in-flight probe's result is discarded."""
        self._stop.set()

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` (in steps the OS can handle); return True if stopped meanwhile."""
        while seconds > MAX_SLEEP_S:
            if self._stop.wait(MAX_SLEEP_S):
                return True
            seconds -= MAX_SLEEP_S
        return self._stop.wait(seconds)

    def _loop(self) -> None:
        delay = self._rng.random() * self._interval_ns / 1e9
        while not self._sleep(delay):
            try:
                status, output = self._probe()
            except Exception as error:  # a bug in a probe must not kill the runner
                log.exception("check %s probe failed", self.check_id)
                status, output = CRITICAL, f"check failed: {error}"
            if self._stop.is_set():
                return
            try:
                self._update(status, output)
            except Exception:  # nor a bug in applying its result
                log.exception("check %s: applying its result failed", self.check_id)
            delay = self._interval_ns / 1e9


class TTLRunner:
    """A TTL check: critical with "TTL expired" unless :meth:`set_status` comes in time."""

    def __init__(
        self,
        check_id: str,
        ttl_ns: int,
        timers: TimerService,
        update: StatusUpdate,
        output_max_size: int = DEFAULT_OUTPUT_MAX,
    ) -> None:
        self.check_id = check_id
        self.ttl_ns = ttl_ns
        self._timers = timers
        self._update = update
        self._output_max = output_max_size
        self._last_output = ""
        self._timer: Timer | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        """Arm the expiry timer."""
        self._arm()

    def stop(self) -> None:
        """Disarm the expiry timer for good."""
        with self._lock:
            self._stopped = True
            self._timers.cancel(self._timer)

    def _arm(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._timers.cancel(self._timer)
            self._timer = self._timers.call_later(
                self.ttl_ns, self._expire, name=f"ttl check {self.check_id}"
            )

    def _expire(self) -> None:
        with self._lock:
            if self._stopped:
                return
            last = self._last_output
        log.warning(
            "check %r missed its TTL (%s), now critical",
            self.check_id,
            format_duration(self.ttl_ns),
        )
        expired = "TTL expired"
        self._update(
            CRITICAL, f"{expired} (last output before timeout follows): {last}" if last else expired
        )

    def set_status(self, status: str, output: str) -> str:
        """Record an update from pass/warn/fail/update and restart the TTL; return the output."""
        total = len(output)
        if total > self._output_max:
            output = (
                f"{output[: self._output_max]} ... (captured {self._output_max} of {total} bytes)"
            )
        self._update(status, output)
        with self._lock:
            self._last_output = output
        self._arm()
        return output
