"""Cluster hosts: a client agent per node, host actions, and agents that cannot take hosts."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from elect_helpers.cluster import Cluster
from elect_helpers.devagent import DevAgent
from elect_helpers.errors import ClusterError
from elect_helpers.hosts import HostsUnavailable


@pytest.fixture(scope="module")
def server() -> Iterator[DevAgent]:
    with DevAgent(port=0, session_ttl_min="500ms") as agent:
        yield agent


@pytest.fixture
def not_a_dev_agent() -> Iterator[str]:
    """An HTTP server answering 404 everywhere, as a real Consul agent answers our path."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_hosts_need_the_embedded_agent_and_say_so(not_a_dev_agent: str) -> None:
    with pytest.raises(HostsUnavailable, match="not the embedded dev agent") as caught:
        Cluster("hosts-real", address=not_a_dev_agent, resource=False, hosts=True)
    assert "consul agent -join" in str(caught.value)
    assert "Cluster(hosts=False)" in str(caught.value)


def test_hosts_where_nothing_answers_is_one_clear_error() -> None:
    with pytest.raises(HostsUnavailable, match=r"no agent answers at 127\.0\.0\.1:9"):
        Cluster("hosts-none", address="127.0.0.1:9", resource=False, hosts=True)


def test_host_actions_on_a_cluster_without_hosts_say_how_to_get_them(server: DevAgent) -> None:
    with Cluster("hosts-without", address=server.address, resource=False) as cluster:
        for action in (cluster.crash_host, cluster.freeze_host, cluster.thaw_host):
            with pytest.raises(ClusterError, match=r"Cluster\(\.\.\., hosts=True\)"):
                action("node01")


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_each_node_talks_to_its_own_host_and_close_removes_the_hosts(server: DevAgent) -> None:
    cluster = Cluster("hosts-own", address=server.address, resource=False, hosts=True, ttl=1.0)
    try:
        cluster.start_many(["node01", "node02", "node03"])
        nodes = {n["Node"] for n in cluster.client.catalog.nodes()[1]}
        assert {"node01", "node02"} <= nodes
        _, instances = cluster.client.catalog.service("hosts-own")
        assert {(i["Node"], i["ServiceID"]) for i in instances} == {
            ("node01", "node01"),
            ("node02", "node02"),
            ("node03", "node03"),
        }
        assert [s.host for s in cluster.nodes()] == ["up", "up", "up"]
        cluster.crash_host("node02")
        status = cluster.status("node02")
        assert (status.state, status.host) == ("killed", "crashed")
    finally:
        cluster.close()
    nodes = {n["Node"] for n in cluster.client.catalog.nodes()[1]}
    assert not {"node01", "node02", "node03"} & nodes, "left hosts and a crashed one are gone"


def test_a_crashed_host_comes_back_with_restart(server: DevAgent) -> None:
    with Cluster("hosts-back", address=server.address, resource=False, hosts=True) as cluster:
        cluster.start("node01")
        cluster.crash_host("node01")
        status = cluster.restart("node01")
        assert (status.state, status.host) == ("running", "up")
        _wait(lambda: cluster.status("node01").serf_health == "passing", 5, "serfHealth")


def test_freeze_and_thaw_act_on_agent_and_node_together(server: DevAgent) -> None:
    with Cluster("hosts-freeze", address=server.address, resource=False, hosts=True) as cluster:
        cluster.start("node01")
        status = cluster.freeze_host("node01")
        assert (status.state, status.host) == ("paused", "frozen")
        with pytest.raises(ClusterError, match="host is frozen, not up"):
            cluster.freeze_host("node01")
        _wait(lambda: cluster.status("node01").serf_health == "critical", 5, "failure")
        status = cluster.thaw_host("node01")
        assert (status.state, status.host) == ("running", "up")
        _wait(lambda: cluster.status("node01").serf_health == "passing", 5, "the rejoin")


def test_the_panel_has_host_buttons_only_for_a_cluster_with_hosts(server: DevAgent) -> None:
    from elect_helpers.panel import HOST_ACTIONS, ClusterPanel

    with Cluster("hosts-panel", address=server.address, resource=False, hosts=True) as cluster:
        panel = ClusterPanel(cluster, ["node01"], refresh_every=60)
        try:
            row = panel._rows["node01"]
            assert [row.buttons[a].description for a in HOST_ACTIONS] == [
                "crash host",
                "freeze host",
                "thaw host",
                "cut host",
                "heal host",
            ]
            assert all(row.buttons[a].disabled for a in HOST_ACTIONS), "no host yet"
            panel.click("start", "node01")
            assert not row.buttons["freeze_host"].disabled
            assert row.buttons["thaw_host"].disabled
            panel.click("freeze_host", "node01")
            assert panel.shown["node01"].host == "frozen"
            assert not row.buttons["thaw_host"].disabled
            panel.click("thaw_host", "node01")
            panel.click("crash_host", "node01")
            assert (panel.shown["node01"].state, panel.shown["node01"].host) == (
                "killed",
                "crashed",
            )
            assert "host crashed" in row.status.value
        finally:
            panel.close()
    with Cluster("hosts-panel-no", address=server.address, resource=False) as cluster:
        panel = ClusterPanel(cluster, ["node01"], refresh_every=60)
        try:
            assert "crash_host" not in panel._rows["node01"].buttons
            with pytest.raises(ValueError, match=r"host buttons need Cluster"):
                panel.click("crash_host", "node01")
        finally:
            panel.close()


def test_a_cut_off_host_is_failed_by_gossip_and_rejoins_when_healed(server: DevAgent) -> None:
    with Cluster(
        "hosts-cut", address=server.address, resource=False, hosts=True, ttl=1.0, lock_delay=0
    ) as cluster:
        cluster.start_many(["node01", "node02"])
        leader = cluster.wait_for_leader(timeout=20)
        status = cluster.cut_host(leader.node)
        assert (status.state, status.host) == ("running", "cut off"), "the process runs on"
        with pytest.raises(ClusterError, match="host is cut off, not up"):
            cluster.cut_host(leader.node)
        _wait(lambda: cluster.status(leader.node).serf_health == "critical", 5, "failure")
        assert cluster.client.session.info(leader.session)[1] is None
        cluster.wait_for_leader(timeout=10, other_than=leader.node)
        _wait(lambda: cluster.status(leader.node).believes != "leader", 10, "it to step down")
        status = cluster.heal_host(leader.node)
        assert status.host == "up"
        _wait(lambda: cluster.status(leader.node).serf_health == "passing", 5, "the rejoin")
        with pytest.raises(ClusterError, match="not cut off"):
            cluster.heal_host(leader.node)
