"""The cluster panel driven like a reader would, but from pytest: click -> state change.

Real node processes on the session's embedded agent (tests/conftest.py); short TTLs and no
lock-delay keep it quick.
"""

from __future__ import annotations

import time
import uuid

import pytest

from elect_helpers.cluster import Cluster, NodeStatus
from elect_helpers.errors import NodeNotRunning, UnknownNode
from elect_helpers.panel import ClusterPanel, _status_html


@pytest.fixture
def cluster(dev_agent):
    service = f"panel-test-{uuid.uuid4().hex[:8]}"
    with Cluster(
        service,
        address=dev_agent.address,
        resource=False,
        ttl="500ms",
        lock_delay="0s",
        check_interval="1s",
    ) as running:
        yield running


@pytest.fixture
def panel(cluster):
    shown = ClusterPanel(cluster, ["node01", "node02"], refresh_every=0.1)
    yield shown
    shown.close()


def enabled(panel, node):
    return sorted(a for a, b in panel._rows[node].buttons.items() if not b.disabled)


def eventually(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_new_panel_shows_no_leader_and_only_start_buttons(panel):
    assert panel.leader_text() == "Leader (per Consul): none"
    assert enabled(panel, "node01") == ["start"]
    shown = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in shown
    assert "Leader (per Consul): none" in shown["text/plain"]


def test_start_button_starts_the_process_and_the_view_names_the_leader(panel, cluster):
    panel.click("start", "node01")
    assert cluster.status("node01").state == "running"
    assert panel.wait_for_leader(timeout=15) == "node01"
    assert panel.leader_text() == "Leader (per Consul): node01"
    assert "<b>node01</b>" in panel.leader_html.value
    assert enabled(panel, "node01") == ["kill", "pause", "stop"]


def test_killing_the_leader_by_button_shows_a_different_leader(panel, cluster):
    panel.click("start", "node01")
    panel.click("start", "node02")
    first = panel.wait_for_leader(timeout=15)
    panel.click("kill", first)
    assert cluster.status(first).state == "killed"
    second = panel.wait_for_leader(timeout=15, other_than=first)
    assert second != first
    assert panel.leader_text() == f"Leader (per Consul): {second}"
    assert enabled(panel, first) == ["start"]


def test_stop_pause_and_resume_buttons_change_the_process_state(panel, cluster):
    panel.click("start", "node02")
    panel.click("pause", "node02")
    assert cluster.status("node02").state == "paused"
    assert enabled(panel, "node02") == ["kill", "resume", "stop"]
    panel.click("resume", "node02")
    assert cluster.status("node02").state == "running"
    panel.click("stop", "node02")
    assert cluster.status("node02").state == "stopped"


def test_an_impossible_click_raises_and_shows_the_message(panel):
    with pytest.raises(UnknownNode, match="no node named 'node01'"):
        panel.click("kill", "node01")  # never started
    panel.click("start", "node01")
    with pytest.raises(NodeNotRunning, match="not paused"):
        panel.click("resume", "node01")
    assert "resume node01" in panel.message.value
    with pytest.raises(ValueError, match="no row for node 'node09'"):
        panel.click("kill", "node09")
    with pytest.raises(ValueError, match="the buttons are start, stop, kill, pause, resume"):
        panel.click("explode", "node01")


def test_the_view_refreshes_on_its_own(panel, cluster):
    cluster.start("node03")  # behind the panel's back
    eventually(lambda: "node03" in panel._rows and panel.shown.get("node03") is not None)
    eventually(lambda: panel.leader_text() == "Leader (per Consul): node03")


def test_close_stops_the_refresher_and_disables_every_button(panel):
    panel.close()
    assert not panel._thread.is_alive()
    assert enabled(panel, "node01") == []
    assert panel.leader_text().endswith("(panel closed)")
    with pytest.raises(RuntimeError, match="closed"):
        panel.click("start", "node01")


def test_a_closed_panel_shows_no_stale_leader_while_its_nodes_run_on(panel, cluster):
    panel.click("start", "node01")
    panel.wait_for_leader(timeout=15)
    panel.close()
    assert cluster.status("node01").state == "running"
    assert panel.leader_text() == "Leader (per Consul): not watched (panel closed)"
    assert all("not watched" in row.status.value for row in panel._rows.values())
    assert not any("leader" in row.status.value for row in panel._rows.values())


def test_closing_with_the_cluster_shows_the_stopped_nodes(panel, cluster):
    panel.click("start", "node01")
    panel.wait_for_leader(timeout=15)
    panel.close(close_cluster=True)
    assert panel.leader_text() == "Leader (per Consul): none (panel closed)"
    assert "stopped" in panel._rows["node01"].status.value
    assert "believes" not in panel._rows["node01"].status.value


def test_shut_down_button_stops_every_node(panel, cluster):
    panel.click("start", "node01")
    panel.click("shutdown")
    assert all(s.state == "stopped" for s in cluster.nodes())
    assert panel.shutdown_button.disabled


@pytest.mark.parametrize(
    ("program", "shown"),
    [("python", "Python"), ("article", "Go (article)"), ("golock", "Go (api.Lock)")],
)
def test_a_node_row_says_which_language_the_node_runs(program: str, shown: str) -> None:
    status = NodeStatus(
        name="node04",
        pid=1,
        state="running",
        exit_code=None,
        believes="follower",
        token=None,
        session=None,
        consul_leader=False,
        check="passing",
        program=program,
    )
    assert shown in _status_html(status)
