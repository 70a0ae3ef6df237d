"""A widget panel over :class:`elect_helpers.cluster.Cluster`: buttons and a live view.

The panel is deliberately thin.  Every button calls one method of the cluster
(``start``/``stop``/``kill``/``pause``/``resume``), and :meth:`ClusterPanel.click` presses a
button from code, so a notebook (or a test) does exactly what a reader's click does::

    panel = ClusterPanel(cluster, ["node01", "node02", "node03"])
    panel                          # shows it in Jupyter
    panel.click("start", "node01")  # same as the button; same as cluster.start("node01")
    panel.click("kill", "node01")   # same as cluster.kill("node01")

The view shows who leads according to Consul, in an HTML widget whose text reads
``Leader (per Consul): node02`` (CSS class ``elect-leader``), and one row per node with its
process state and what the node itself believes.  A background thread refreshes it every
``refresh_every`` seconds until :meth:`close`.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as widgets

from elect_helpers.cluster import Cluster, NodeStatus
from elect_helpers.errors import ElectHelpersError

ACTIONS = ("start", "stop", "kill", "pause", "resume")
#: The host buttons, shown only for a cluster with hosts (``Cluster(..., hosts=True)``).
HOST_ACTIONS = ("crash_host", "freeze_host", "thaw_host", "cut_host", "heal_host")
_BUTTON_STYLE = {"start": "success", "stop": "info", "kill": "danger", "pause": "warning"}
_STATE_COLOR = {"running": "#2a7", "paused": "#a60", "stopped": "#777", "killed": "#c22"}


class ClusterPanel:
    """Buttons per node and a self-refreshing view of a :class:`Cluster`.

    ``nodes`` are the rows shown from the start (nodes the cluster starts later get a row
    when the view next refreshes).  ``node_options`` are passed to ``cluster.start`` by the
    start buttons.  The panel does not own the cluster: :meth:`close` stops the panel only,
    unless ``close_cluster=True``; the "shut down" button does both.
    """

    def __init__(
        self,
        cluster: Cluster,
        nodes: Iterable[str] = ("node01", "node02", "node03"),
        *,
        title: str = "Cluster",
        refresh_every: float = 0.5,
        node_options: dict[str, Any] | None = None,
    ) -> None:
        self.cluster = cluster
        self.node_options = dict(node_options or {})
        self.refresh_every = refresh_every
        self.last_error: Exception | None = None
        self.shown_leader: str | None = None
        self.shown: dict[str, NodeStatus] = {}
        self._lock = threading.RLock()
        self._closed = False
        self._stop = threading.Event()

        self.leader_html = widgets.HTML(_leader_text(None))
        self.leader_html.add_class("elect-leader")
        self.message = widgets.HTML("")
        self.message.add_class("elect-message")
        self.shutdown_button = widgets.Button(
            description="shut down", tooltip="stop every node and close this panel"
        )
        self.shutdown_button.on_click(lambda _b: self._run("shutdown", None))
        self._rows: dict[str, _NodeRow] = {}
        self._rows_box = widgets.VBox([])
        header = widgets.HTML(f"<b>{html.escape(title)}</b> &nbsp; service {cluster.service}")
        self.widget = widgets.VBox(
            [header, self.leader_html, self._rows_box, self.message, self.shutdown_button]
        )
        self.widget.add_class("elect-panel")
        for name in nodes:
            self._add_row(name)
        self.refresh()
        self._thread = threading.Thread(target=self._refresh_loop, name="panel", daemon=True)
        self._thread.start()

    # -- showing ----------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        # Where widgets cannot render (a saved notebook on GitHub), say what this is.
        bundle["text/plain"] = (
            f"ClusterPanel for service {self.cluster.service!r}: {self.leader_text()} "
            "(the buttons need a running Jupyter kernel)"
        )
        return bundle

    def _add_row(self, name: str) -> _NodeRow:
        row = _NodeRow(name, lambda action, node=name: self._run(action, node), self._actions())
        self._rows[name] = row
        self._rows_box.children = [r.box for r in self._rows.values()]
        return row

    def _actions(self) -> tuple[str, ...]:
        """The buttons of each row: the process ones, and the host ones if there are hosts."""
        return ACTIONS + (HOST_ACTIONS if self.cluster.hosts is not None else ())

    # -- acting -----------------------------------------------------------------------------

    def click(self, action: str, node: str | None = None) -> None:
        """Press the ``action`` button of ``node`` (or ``click("shutdown")``), as a reader would.

        Returns once the action is done and the view refreshed; an action that failed
        raises its error here (a reader sees it in the panel's message line instead).
        """
        if action == "shutdown":
            button = self.shutdown_button
        else:
            if action not in self._actions():
                hint = (
                    "; host buttons need Cluster(..., hosts=True)" if action in HOST_ACTIONS else ""
                )
                raise ValueError(
                    f"no {action!r} button; the buttons are {', '.join(self._actions())}{hint}"
                )
            if node not in self._rows:
                raise ValueError(
                    f"no row for node {node!r} in this panel (rows: {', '.join(self._rows)}); "
                    "add one with panel.add_node(name)"
                )
            button = self._rows[node].buttons[action]
        self.last_error = None
        button.click()
        if self.last_error is not None:
            raise self.last_error

    def add_node(self, name: str) -> None:
        """Add a row (with its buttons) for a node that is not shown yet."""
        with self._lock:
            if name not in self._rows:
                self._add_row(name)

    def _run(self, action: str, node: str | None) -> None:
        """What every button does: call the cluster, report the outcome, refresh the view."""
        if self._closed:
            self.last_error = RuntimeError("this panel is closed; create a new ClusterPanel")
            self._say(str(self.last_error), error=True)
            return
        if action == "shutdown":
            self.close(close_cluster=True)
            return
        assert node is not None
        with self._lock:
            try:
                status = self._call(action, node)
            except (ElectHelpersError, ValueError) as exc:
                self.last_error = exc
                self._say(f"{action} {node}: {exc}", error=True)
            else:
                self._say(f"{action} {node}: now {status.state}")
            self.refresh()

    def _call(self, action: str, node: str) -> NodeStatus:
        if action == "start":
            return self.cluster.start(node, **self.node_options)
        method: Callable[[str], NodeStatus] = getattr(self.cluster, action)
        return method(node)

    def _say(self, text: str, *, error: bool = False) -> None:
        color = "#c22" if error else "#333"
        self.message.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    # -- the live view ----------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the cluster and Consul once and update every widget."""
        with self._lock:
            if self._closed:
                return
            try:
                statuses = self.cluster.nodes()
                leader = self.cluster.leader()
            except Exception as exc:  # the view must survive an agent that went away
                self._say(f"view not updated: {exc}", error=True)
                return
            self.shown_leader = leader.node if leader else None
            self.shown = {s.name: s for s in statuses}
            self.leader_html.value = _leader_text(self.shown_leader)
            for status in statuses:
                if status.name not in self._rows:
                    self._add_row(status.name)
            by_name = {s.name: s for s in statuses}
            for name, row in self._rows.items():
                row.show(by_name.get(name))

    def wait_for_leader(self, timeout: float = 30.0, other_than: str | None = None) -> str:
        """Wait until the view shows a leader (not ``other_than``) that believes it leads.

        Consul naming a leader and that node's own event saying "elected" are two
        observations a few milliseconds apart; this returns once both are shown.  Raises
        :class:`TimeoutError` saying what the view shows after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            self.refresh()
            name = self.shown_leader
            status = self.shown.get(name) if name else None
            if name != other_than and status is not None and status.believes == "leader":
                return name
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"after {timeout:g}s the panel shows {self.leader_text()!r}"
                    + (f" and {name} believes: {status.believes}" if status else "")
                )
            time.sleep(0.05)

    def leader_text(self) -> str:
        """The leader line as a reader sees it, without markup."""
        return html.unescape(self.leader_html.value.replace("<b>", "").replace("</b>", ""))

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh_every):
            self.refresh()

    def close(self, close_cluster: bool = False) -> None:
        """Stop the live view and disable the buttons (and close the cluster if asked).

        With ``close_cluster`` the rows show the stopped processes one last time; without
        it the nodes keep running unwatched, so the rows and the leader line say "not
        watched" instead of showing a state that may no longer hold.
        """
        with self._lock:
            shut_down = close_cluster and not self._closed
            if shut_down:
                self._say("shutting down: stopping every node ...")
                self.cluster.close()
                self.refresh()  # one last look: every row shows its stopped process
            self._stop.set()
            self._closed = True
            if shut_down:
                self.leader_html.value = _leader_text(None) + " (panel closed)"
                self._say("cluster shut down; every node stopped")
            else:
                # The nodes may still run: show nothing that could be stale.
                self.leader_html.value = "Leader (per Consul): <b>not watched</b> (panel closed)"
                for row in self._rows.values():
                    row.status.value = '<span style="color:#777">not watched (panel closed)</span>'
            for row in self._rows.values():
                row.disable()
            self.shutdown_button.disabled = True
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> ClusterPanel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _leader_text(node: str | None) -> str:
    return f"Leader (per Consul): <b>{html.escape(node) if node else 'none'}</b>"


class _NodeRow:
    """One node: its name, a status line and its action buttons (five, or ten with a host)."""

    def __init__(
        self, name: str, on_action: Callable[[str], None], actions: tuple[str, ...] = ACTIONS
    ) -> None:
        self.name = name
        self.status = widgets.HTML("not started", layout=widgets.Layout(width="560px"))
        self.buttons: dict[str, widgets.Button] = {}
        for action in actions:
            button = widgets.Button(
                description=action.replace("_", " "),
                tooltip=f"{action.replace('_', ' ')} {name}",
                button_style=_BUTTON_STYLE.get(action, ""),
                layout=widgets.Layout(width="90px" if action in HOST_ACTIONS else "72px"),
            )
            button.on_click(lambda _b, action=action: on_action(action))
            self.buttons[action] = button
        label = widgets.HTML(f"<b>{html.escape(name)}</b>", layout=widgets.Layout(width="70px"))
        self.box = widgets.HBox([label, self.status, *self.buttons.values()])
        self.box.add_class("elect-node")
        self.box.add_class(f"elect-node-{name}")

    def show(self, status: NodeStatus | None) -> None:
        """Update the status line and enable only the buttons that make sense now."""
        self.status.value = _status_html(status)
        state = status.state if status else "new"
        alive = state in ("running", "paused")
        host = status.host if status else None
        enabled = {
            "start": not alive,
            "stop": alive,
            "kill": alive,
            "pause": state == "running",
            "resume": state == "paused",
            "crash_host": host in ("up", "frozen", "cut off"),
            "cut_host": host == "up",
            "heal_host": host == "cut off",
            "freeze_host": host == "up",
            "thaw_host": host == "frozen",
        }
        for action, button in self.buttons.items():
            button.disabled = not enabled[action]

    def disable(self) -> None:
        for button in self.buttons.values():
            button.disabled = True


def _status_html(status: NodeStatus | None) -> str:
    if status is None:
        return '<span style="color:#777">not started</span>'
    color = _STATE_COLOR.get(status.state, "#333")
    parts = [f'<span style="color:{color}">{status.state}</span>', html.escape(status.language)]
    if status.state in ("running", "paused"):
        belief = status.believes
        if status.token is not None:
            belief += f" (token #{status.token})"  # the sequence, see lock.FencingToken
        parts.append(f"believes: {html.escape(belief)}")
    if status.consul_leader:
        parts.append("<b>Consul: leader</b>")
    if status.check:
        parts.append(f"check {status.check}")
    if status.host is not None:
        parts.append(f"host {status.host}, serfHealth {status.serf_health or '-'}")
    return " · ".join(parts)
