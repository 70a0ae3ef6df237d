"""A network link you can cut: a loopback TCP forwarder with ``cut()`` and ``heal()``.

:class:`LinkProxy` listens on a free loopback port and forwards every connection to one
target (``host:port``), byte for byte, in both directions, with half-closes and resets
passed on.  A client pointed at the proxy instead of the target (for a node:
``CONSUL_HTTP_ADDR``) talks to the target through this one link.

``cut()`` makes the link a black hole, which is what a network partition looks like to a
client: nothing is refused or reset, nothing arrives.  Open connections stay open but no
byte moves either way; new connections are neither accepted nor refused (the kernel may
complete a few handshakes into the listen backlog; beyond it, connection attempts go
unanswered).  An HTTP client therefore sees its request *sent* and then no answer until
its own read timeout.  ``heal()`` lets the bytes flow again, and everything the two sides
sent meanwhile is delivered late, as TCP's retransmissions would deliver it after a short
partition: a request the client gave up on may still reach the target after the heal (its
answer then meets a closed socket).

One proxy is one direction of connection set-up (clients on one side connect to a
server on the other); to cut a host off completely, cut every link that reaches it.
Bounded: at most ``max_connections`` at once (more are reset at once) and
``BUFFER_LIMIT`` bytes buffered per direction per connection.  One thread per proxy;
:meth:`LinkProxy.close` closes every socket and joins it.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import struct
import threading

from elect_helpers.errors import InvalidArgument, ProxyError

BUFFER_LIMIT = 256 * 1024  # bytes buffered per direction of one connection
CHUNK = 64 * 1024  # bytes read at a time
MAX_CONNECTIONS = 128
BACKLOG = 16
COMMAND_TIMEOUT = 5.0  # seconds cut()/heal()/close() wait for the forwarding thread


def _parse_target(target: str) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"proxy target {target!r} is not host:port, e.g. 127.0.0.1:8500")
    return host, int(port)


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), so the peer sees a reset, not an orderly end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Pipe:
    """One proxied connection: ``down`` is the client's socket, ``up`` the target's."""

    def __init__(self, down: socket.socket, up: socket.socket) -> None:
        self.down = down
        self.up = up
        self.connecting = True
        self.to_up = bytearray()  # read from down, not yet written to up
        self.to_down = bytearray()
        self.down_eof = False  # down sent FIN (everything it will send is in to_up)
        self.up_eof = False
        self.up_shut = False  # we passed down's FIN on to up
        self.down_shut = False

    def interest(self, sock: socket.socket) -> int:
        """The selector events ``sock`` needs now (0: none)."""
        if sock is self.up and self.connecting:
            return selectors.EVENT_WRITE
        if sock is self.down:
            reads = not self.down_eof and len(self.to_up) < BUFFER_LIMIT and not self.connecting
            writes = bool(self.to_down)
        else:
            reads = not self.up_eof and len(self.to_down) < BUFFER_LIMIT
            writes = bool(self.to_up)
        return (selectors.EVENT_READ if reads else 0) | (selectors.EVENT_WRITE if writes else 0)

    def done(self) -> bool:
        return self.up_shut and self.down_shut

    def close(self, *, reset: bool = False) -> None:
        for sock in (self.down, self.up):
            if reset:
                _reset(sock)
            else:
                sock.close()


class LinkProxy:
    """Forward loopback connections to ``target`` (``host:port``) until cut or closed.

    ``address`` (``127.0.0.1:<port>``) is where clients connect; it is fixed from
    construction on, so it can go into a child's environment before :meth:`start`.
    ``name`` only labels the thread.  Connections made before :meth:`start` wait in the
    backlog.  See the module docstring for what ``cut()`` and ``heal()`` do.
    """

    def __init__(
        self,
        target: str,
        *,
        name: str = "link",
        host: str = "127.0.0.1",
        port: int = 0,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.target = target
        self._target = _parse_target(target)
        self.name = name
        self.max_connections = max_connections
        self._listener = socket.create_server((host, port), backlog=BACKLOG)
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()[:2]
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._pipes: dict[socket.socket, _Pipe] = {}
        self._registered: dict[socket.socket, int] = {}
        self._lock = threading.Lock()
        self._cut = False
        self._closing = False
        self._applied = threading.Condition(self._lock)
        self._generation = 0  # commands asked for
        self._done_generation = 0  # commands the thread has applied
        self._thread = threading.Thread(target=self._run, name=f"link-{name}", daemon=True)
        self._started = False
        self._closed = False

    @property
    def address(self) -> str:
        """``host:port`` clients connect to."""
        return f"{self.host}:{self.port}"

    @property
    def is_cut(self) -> bool:
        """True between :meth:`cut` and :meth:`heal`."""
        return self._cut

    @property
    def connections(self) -> int:
        """Connections open through the proxy right now (for tests and status)."""
        with self._lock:
            return len({id(pipe) for pipe in self._pipes.values()})

    def start(self) -> LinkProxy:
        """Start forwarding in a daemon thread; returns self."""
        with self._lock:
            if self._started or self._closed:
                raise ProxyError(f"proxy {self.name} was already started or closed")
            self._started = True
        self._thread.start()
        return self

    def cut(self) -> None:
        """Black-hole the link; returns once no byte moves any more."""
        self._command(cut=True)

    def heal(self) -> None:
        """Let bytes flow again (what was sent meanwhile is delivered now)."""
        self._command(cut=False)

    def _command(self, *, cut: bool) -> None:
        with self._lock:
            if self._closed:
                raise ProxyError(f"proxy {self.name} is closed")
            self._cut = cut
            if not self._started:
                return  # the thread applies it when it starts
            self._generation += 1
            wanted = self._generation
        self._wake_w.send(b"x")
        with self._lock:
            if not self._applied.wait_for(
                lambda: self._done_generation >= wanted or self._closed, COMMAND_TIMEOUT
            ):
                raise ProxyError(f"proxy {self.name} did not answer within {COMMAND_TIMEOUT}s")

    def close(self) -> None:
        """Close every connection (with a reset) and the listener; join the thread.
        Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closing = True
            started = self._started
        if started:
            self._wake_w.send(b"x")
            self._thread.join(COMMAND_TIMEOUT)
        else:
            self._shutdown()

    def __enter__(self) -> LinkProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "cut" if self._cut else "open"
        return f"LinkProxy({self.name!r}, {self.address} -> {self.target}, {state})"

    # -- the forwarding thread --------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._refresh_all()
            while True:
                for key, mask in self._selector.select():
                    sock = key.fileobj
                    if sock is self._wake_r:
                        self._drain_wake()
                    elif sock is self._listener:
                        self._accept()
                    elif sock in self._pipes:
                        self._service(self._pipes[sock], sock, mask)  # type: ignore[arg-type]
                with self._lock:
                    closing = self._closing
                    generation = self._generation
                if closing:
                    return
                self._refresh_all()
                with self._lock:
                    self._done_generation = generation
                    self._applied.notify_all()
        finally:
            self._shutdown()

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass

    def _want(self, sock: socket.socket, events: int) -> None:
        """Make the selector watch ``sock`` for exactly ``events`` (0: not at all)."""
        if self._cut:
            events = 0
        current = self._registered.get(sock, 0)
        if events == current:
            return
        if events == 0:
            self._selector.unregister(sock)
            del self._registered[sock]
        elif current == 0:
            self._selector.register(sock, events)
            self._registered[sock] = events
        else:
            self._selector.modify(sock, events)
            self._registered[sock] = events

    def _refresh_all(self) -> None:
        self._want(self._listener, selectors.EVENT_READ)
        for sock, pipe in list(self._pipes.items()):
            self._want(sock, pipe.interest(sock))

    def _accept(self) -> None:
        try:
            down, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if len(self._pipes) // 2 >= self.max_connections:
            _reset(down)
            return
        down.setblocking(False)
        up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        up.setblocking(False)
        for sock in (down, up):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = up.connect_ex(self._target)
        if code not in (0, errno.EINPROGRESS):
            up.close()
            _reset(down)  # nothing listens behind the link: the client sees a reset
            return
        pipe = _Pipe(down, up)
        with self._lock:
            self._pipes[down] = self._pipes[up] = pipe

    def _service(self, pipe: _Pipe, sock: socket.socket, mask: int) -> None:
        try:
            if sock is pipe.up and pipe.connecting:
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise ConnectionRefusedError(code, "connect failed")
                pipe.connecting = False
                return
            if mask & selectors.EVENT_READ:
                self._read(pipe, sock)
            if mask & selectors.EVENT_WRITE:
                self._write(pipe, sock)
        except OSError:
            self._drop(pipe, reset=True)  # a reset on one side is passed on to the other
            return
        if pipe.done():
            self._drop(pipe, reset=False)

    def _read(self, pipe: _Pipe, sock: socket.socket) -> None:
        try:
            data = sock.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        if sock is pipe.down:
            if data:
                pipe.to_up += data
            else:
                pipe.down_eof = True
        elif data:
            pipe.to_down += data
        else:
            pipe.up_eof = True
        self._pass_eofs(pipe)

    def _write(self, pipe: _Pipe, sock: socket.socket) -> None:
        buffer = pipe.to_up if sock is pipe.up else pipe.to_down
        try:
            sent = sock.send(buffer)
        except (BlockingIOError, InterruptedError):
            return
        del buffer[:sent]
        self._pass_eofs(pipe)

    @staticmethod
    def _pass_eofs(pipe: _Pipe) -> None:
        """Pass a FIN on once everything before it has been delivered."""
        if pipe.down_eof and not pipe.to_up and not pipe.up_shut:
            pipe.up.shutdown(socket.SHUT_WR)
            pipe.up_shut = True
        if pipe.up_eof and not pipe.to_down and not pipe.down_shut:
            pipe.down.shutdown(socket.SHUT_WR)
            pipe.down_shut = True

    def _drop(self, pipe: _Pipe, *, reset: bool) -> None:
        for sock in (pipe.down, pipe.up):
            if self._registered.pop(sock, 0):
                self._selector.unregister(sock)
        with self._lock:
            self._pipes.pop(pipe.down, None)
            self._pipes.pop(pipe.up, None)
        pipe.close(reset=reset)

    def _shutdown(self) -> None:
        with self._lock:
            pipes = {id(p): p for p in self._pipes.values()}.values()
            self._pipes.clear()
            self._closed = True
            self._applied.notify_all()
        for pipe in pipes:
            pipe.close(reset=True)
        self._registered.clear()
        self._selector.close()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()
