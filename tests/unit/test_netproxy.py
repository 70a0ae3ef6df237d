"""netproxy.LinkProxy: forwards faithfully, cuts as a black hole, heals, leaks nothing."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from elect_helpers.connection import consul_call, consul_client
from elect_helpers.errors import AgentUnreachable, InvalidArgument, ProxyError
from elect_helpers.netproxy import LinkProxy

QUIET = 0.4  # seconds of silence that count as "no answer"


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(4096):
                self.server.received.append(data)  # type: ignore[attr-defined]
                self.request.sendall(data)
        except ConnectionResetError:  # the proxy passed a reset on
            pass


class EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.received: list[bytes] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[LinkProxy]:
    with LinkProxy(echo.address, name="test").start() as link:
        yield link


def connect(link: LinkProxy) -> socket.socket:
    sock = socket.create_connection((link.host, link.port), timeout=5)
    sock.settimeout(QUIET)
    return sock


def silent(sock: socket.socket) -> bool:
    """True if nothing (no data, no end, no reset) arrives for QUIET seconds."""
    try:
        sock.recv(1)
    except TimeoutError:
        return True
    return False


def test_forwards_both_ways_and_passes_the_end_of_stream_on(proxy: LinkProxy) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"hello")
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        assert sock.recv(100) == b"hello"
        assert sock.recv(100) == b""  # the echo server closed after our end of stream


def test_a_cut_is_a_black_hole_for_open_connections_and_heal_delivers_late(
    proxy: LinkProxy, echo: EchoServer
) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"before")
        assert sock.recv(100) == b"before"
        proxy.cut()
        assert proxy.is_cut
        sock.sendall(b"during")
        assert silent(sock)  # no answer, no reset, no end: a partition
        assert echo.received == [b"before"]  # and nothing reached the other side
        proxy.heal()
        sock.settimeout(5)
        assert sock.recv(100) == b"during"  # what was sent meanwhile arrives now


def test_new_connections_during_a_cut_hang_until_the_heal(proxy: LinkProxy) -> None:
    proxy.cut()
    with connect(proxy) as sock:  # the kernel's backlog completes the handshake
        sock.sendall(b"late")
        assert silent(sock)
        assert proxy.connections == 0  # the proxy itself has not taken it
        proxy.heal()
        sock.settimeout(5)
        assert sock.recv(100) == b"late"


def test_a_request_given_up_on_during_the_cut_still_arrives_after_the_heal(
    proxy: LinkProxy, echo: EchoServer, wait_until
) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"
        proxy.cut()
        sock.sendall(b"renew")  # the client times out and closes, as requests does
    proxy.heal()
    wait_until(lambda: b"renew" in echo.received, what="the late request to arrive")


def test_what_an_http_client_sees_of_a_cut_is_a_read_timeout(dev_agent) -> None:
    with LinkProxy(dev_agent.address, name="agent").start() as link:
        client = consul_client(link.address, timeout=0.5)
        with consul_call(client, "reading the leader"):
            assert client.status.leader()  # through the link
        link.cut()
        began = time.monotonic()
        with (
            pytest.raises(AgentUnreachable, match=r"no answer within 0\.5s"),
            consul_call(client, "reading the leader"),
        ):
            client.status.leader()
        assert time.monotonic() - began >= 0.5  # it waited for its own timeout
        link.heal()
        with consul_call(client, "reading the leader"):
            assert client.status.leader()
        client.http.session.close()


def test_nothing_behind_the_link_is_a_reset(free_port) -> None:
    # The reset may even beat the end of connect() on loopback.
    with (
        LinkProxy(f"127.0.0.1:{free_port()}", name="nowhere").start() as link,
        pytest.raises(ConnectionResetError),
        connect(link) as sock,
    ):
        sock.settimeout(5)
        sock.sendall(b"x")
        sock.recv(1)


def test_connections_beyond_the_limit_are_reset(echo: EchoServer) -> None:
    with LinkProxy(echo.address, name="small", max_connections=2).start() as link:
        first, second = connect(link), connect(link)
        for sock in (first, second):
            sock.sendall(b"a")
            assert sock.recv(1) == b"a"
        with pytest.raises(ConnectionResetError), connect(link) as third:
            third.settimeout(5)
            third.recv(1)
        first.close()
        second.close()


def test_close_closes_every_socket_and_joins_the_thread(echo: EchoServer) -> None:
    link = LinkProxy(echo.address, name="leak").start()
    socks = [connect(link) for _ in range(3)]
    for sock in socks:
        sock.sendall(b"z")
        assert sock.recv(1) == b"z"
    owned = [link._listener, link._wake_r, link._wake_w, *link._pipes]
    assert len(owned) == 3 + 2 * len(socks)
    link.cut()
    link.close()
    link.close()  # idempotent
    for sock in socks:
        sock.settimeout(5)
        with pytest.raises(ConnectionResetError):
            sock.recv(1)
        sock.close()
    assert not [t for t in threading.enumerate() if t.name == "link-leak"]
    assert [s for s in owned if s.fileno() != -1] == []
    with pytest.raises(ProxyError, match="closed"):
        link.heal()


def test_bad_target_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgument, match="not host:port"):
        LinkProxy("localhost")
