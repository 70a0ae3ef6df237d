"""The gossip port's wire: acks, silence, and no late ack answering a later ping."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from elect_helpers.devagent.pingwire import Pinger, PingListener


def test_pings_on_one_connection_are_acked_in_order() -> None:
    seen: list[int] = []

    def answer(ping: dict[str, Any]) -> dict[str, Any]:
        seen.append(ping["Ping"])
        return {"Ack": ping["Ping"], "ID": "n1"}

    listener = PingListener(("127.0.0.1", 0), answer).start()
    pinger = Pinger(("127.0.0.1", listener.port))
    try:
        for seq in range(1, 4):
            assert pinger.ping({"Ping": seq}, 2.0) == {"Ack": seq, "ID": "n1"}
        assert seen == [1, 2, 3]
    finally:
        pinger.close()
        listener.stop()


def test_a_silent_peer_gives_none_in_time_and_a_late_ack_is_never_read() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept_and_answer_late() -> None:
        for _ in range(2):
            conn, _ = server.accept()
            accepted.append(conn)
            line = conn.makefile("rb").readline()
            time.sleep(0.3)
            conn.sendall(b'{"Ack": "late"}\n' if b'"Ping": 1' in line else b'{"Ack": 2}\n')

    thread = threading.Thread(target=accept_and_answer_late, daemon=True)
    thread.start()
    pinger = Pinger(server.getsockname())
    try:
        started = time.monotonic()
        assert pinger.ping({"Ping": 1}, 0.1) is None
        assert time.monotonic() - started < 0.25
        time.sleep(0.4)  # the late ack arrives on the dropped connection
        assert pinger.ping({"Ping": 2}, 2.0) == {"Ack": 2}
    finally:
        pinger.close()
        for conn in accepted:
            conn.close()
        server.close()


def test_nothing_listening_is_none_and_a_later_listener_is_reached() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    pinger = Pinger(("127.0.0.1", port))
    assert pinger.ping({"Ping": 1}, 0.5) is None
    listener = PingListener(("127.0.0.1", port), lambda p: {"Ack": p["Ping"]}).start()
    try:
        assert pinger.ping({"Ping": 2}, 2.0) == {"Ack": 2}
    finally:
        pinger.close()
        listener.stop()
