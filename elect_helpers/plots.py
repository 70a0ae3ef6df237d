"""Pictures for the notebooks: who believed it led when, and how long hand-overs took.

:func:`leadership_intervals` turns a merged event timeline (``Cluster.timeline()``, see
``elect_helpers.events``) into the stretches of time during which each node believed it was
the leader; :func:`leadership_timeline` draws them, one lane per node, with the signals the
controller sent and the writes a fenced resource rejected.  :func:`handover_bars` compares
measured hand-over times, optionally against the bound each one is expected to stay near.

Every plotting function returns a :class:`matplotlib.figure.Figure` (closed in pyplot, so a
notebook shows it once, where the figure is the cell's value) and draws nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

# Events after which a node no longer believes it leads.
_BELIEF_ENDS = frozenset({"lost", "resigned", "stopped", "exited", "error"})
_SIGNAL_MARKERS = {
    "SIGKILL": ("X", "tab:red", "killed"),
    "SIGTERM": ("s", "tab:blue", "stopped"),
    "SIGSTOP": ("v", "tab:purple", "paused"),
    "SIGCONT": ("^", "tab:green", "resumed"),
}


_SIGNAL = re.compile(r"\bSIG[A-Z]+")


@dataclass(frozen=True)
class Interval:
    """A stretch of time in which ``node`` believed it led (``end`` None: still believes).

    ``ended_by`` is the event that ended the belief (``"lost"``, ``"exited"``...), or ``""``.
    """

    node: str
    start: float
    end: float | None
    token: int | None
    ended_by: str = ""


def _signal_name(event: Mapping[str, Any]) -> str | None:
    """The signal a controller ``signal`` event names (e.g. ``"SIGKILL"``), if any."""
    if event.get("event") != "signal":
        return None
    # The first signal named is the one sent ("controller sent SIGCONT (wake up to handle
    # SIGTERM)" is a SIGCONT).
    match = _SIGNAL.search(str(event.get("detail", "")))
    return match.group(0) if match and match.group(0) in _SIGNAL_MARKERS else None


def leadership_intervals(events: Iterable[Mapping[str, Any]]) -> list[Interval]:
    """The intervals in which each node believed it was leader, in order of their start.

    A belief starts at an ``elected`` event and ends at the node's next ``lost``,
    ``resigned``, ``stopped``, ``exited`` or ``error`` event; a SIGKILL also ends it (a
    killed process believes nothing).  A belief with no end yet has ``end=None``.
    """
    open_: dict[str, Interval] = {}
    done: list[Interval] = []
    for event in sorted(events, key=lambda e: e["time"]):
        node, kind, when = event.get("node", ""), event.get("event"), float(event["time"])
        if kind == "elected":
            if node in open_:  # a second "elected" without an end: close the first one
                done.append(_closed(open_.pop(node), when, "elected"))
            open_[node] = Interval(node, when, None, event.get("token"))
        elif node in open_ and (kind in _BELIEF_ENDS or _signal_name(event) == "SIGKILL"):
            done.append(_closed(open_.pop(node), when, kind if kind != "signal" else "killed"))
    done.extend(open_.values())
    return sorted(done, key=lambda i: i.start)


def _closed(interval: Interval, end: float, ended_by: str) -> Interval:
    return Interval(interval.node, interval.start, end, interval.token, ended_by)


@dataclass(frozen=True)
class Handover:
    """What followed one signal to a node that believed it led.

    ``seconds`` runs from the controller's signal to the next ``elected`` event of another
    node (``new_leader``); both are None if no other node was elected afterwards.
    """

    node: str
    signal: str
    at: float
    new_leader: str | None
    seconds: float | None


def handovers(events: Iterable[Mapping[str, Any]]) -> list[Handover]:
    """Every SIGTERM, SIGKILL or SIGSTOP sent to a believing leader, and how long until the
    next node was elected: the hand-over times a notebook plots with :func:`handover_bars`.
    """
    ordered = sorted(events, key=lambda e: e["time"])
    intervals = leadership_intervals(ordered)
    result = []
    for event in ordered:
        signal, node, at = _signal_name(event), str(event.get("node", "")), float(event["time"])
        if signal not in ("SIGTERM", "SIGKILL", "SIGSTOP"):
            continue
        leading = any(
            i.node == node and i.start <= at and (i.end is None or at <= i.end) for i in intervals
        )
        if not leading:
            continue
        nxt = next(
            (
                e
                for e in ordered
                if e["time"] > at and e.get("event") == "elected" and e.get("node") != node
            ),
            None,
        )
        result.append(
            Handover(
                node,
                signal,
                at,
                None if nxt is None else str(nxt["node"]),
                None if nxt is None else float(nxt["time"]) - at,
            )
        )
    return result


def _new_figure(width: float, height: float) -> tuple[Figure, Any]:
    # pyplot (not a bare Figure) so that Jupyter's inline backend knows how to show it;
    # closing it at once keeps the notebook from showing it a second time.
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    plt.close(fig)
    return fig, ax


def leadership_timeline(
    events: Sequence[Mapping[str, Any]],
    *,
    start: float | None = None,
    end: float | None = None,
    title: str = "Who believed it led",
) -> Figure:
    """Draw one lane per node: bars where it believed it led, markers for signals.

    ``start`` (wall-clock seconds) is time zero on the x axis, default the first event;
    ``end`` closes beliefs that are still open, default the last event.  Stale writes are
    marked just above their node's lane: rejected by the fenced store (x) or accepted by the
    unfenced one (o, just below), so a frozen leader's late write is visible in both.
    """
    if not events:
        raise ValueError("no events to draw: start some nodes first, then call timeline()")
    times = [float(e["time"]) for e in events]
    t0 = min(times) if start is None else start
    t_end = max(times) if end is None else end
    nodes = sorted({str(e.get("node", "")) for e in events if e.get("node")})
    lane = {node: i for i, node in enumerate(nodes)}
    fig, ax = _new_figure(9, 0.6 * len(nodes) + 1.6)

    for interval in leadership_intervals(events):
        stop = t_end if interval.end is None else interval.end
        label = "" if interval.token is None else f"token #{interval.token}"
        ax.barh(
            lane[interval.node],
            stop - interval.start,
            left=interval.start - t0,
            height=0.5,
            color="tab:orange",
            edgecolor="black",
            linewidth=0.5,
        )
        if label:
            ax.text(interval.start - t0, lane[interval.node] + 0.33, label, fontsize=7)

    seen_labels: set[str] = set()
    for event in events:
        node = str(event.get("node", ""))
        if node not in lane:
            continue
        signal = _signal_name(event)
        x = float(event["time"]) - t0
        y = lane[node]
        if signal:
            marker, color, label = _SIGNAL_MARKERS[signal]
        elif event.get("event") == "write-rejected":
            marker, color, label = "x", "black", "stale write rejected (fenced)"
            y -= 0.38
        elif event.get("event") == "write-accepted" and "stale" in str(event.get("detail")):
            marker, color, label = "o", "tab:red", "stale write accepted (unfenced)"
            y += 0.4  # below the lane: the same write's rejection is drawn above it
        else:
            continue
        ax.plot(
            x,
            y,
            marker=marker,
            color=color,
            markersize=9,
            markeredgewidth=2 if marker == "x" else 1,
            linestyle="none",
            label=None if label in seen_labels else label,
        )
        seen_labels.add(label)

    ax.set_yticks(range(len(nodes)), nodes)
    ax.set_ylim(-0.75, len(nodes) - 0.4)
    ax.invert_yaxis()
    ax.set_xlim(min(0.0, min(times) - t0), max(t_end - t0, 0.1) * 1.02)
    ax.set_xlabel("seconds")
    ax.set_title(title + " (orange: believes it is leader)")
    ax.grid(axis="x", alpha=0.3)
    if seen_labels:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return fig


def handover_bars(
    measurements: Mapping[str, Sequence[float]],
    *,
    bounds: Mapping[str, float] | None = None,
    title: str = "Hand-over time",
) -> Figure:
    """One bar per kind of hand-over (its mean), every trial as a dot, bounds as dashes.

    ``measurements`` maps a label (``"graceful stop"``, ``"crash"``) to the measured seconds
    of each trial; ``bounds`` maps some of those labels to the time the hand-over is expected
    to stay near (e.g. ``2 × TTL + lock-delay``), drawn as a dashed line across the bar.
    """
    if not measurements or not all(measurements.values()):
        raise ValueError("handover_bars needs at least one measured trial for every label")
    labels = list(measurements)
    fig, ax = _new_figure(1.9 * len(labels) + 3, 3.2)
    tick_labels = []
    for i, label in enumerate(labels):
        values = list(measurements[label])
        mean = sum(values) / len(values)
        tick_labels.append(f"{label}\nmean {mean:.2f} s")
        ax.bar(i, mean, width=0.6, color="tab:blue", alpha=0.6)
        ax.plot([i] * len(values), values, "o", color="black", markersize=4)
        if bounds and label in bounds:
            ax.hlines(bounds[label], i - 0.4, i + 0.4, colors="tab:red", linestyles="dashed")
            ax.text(i + 0.42, bounds[label], "expected", color="tab:red", fontsize=8, va="center")
    ax.set_xticks(range(len(labels)), tick_labels)
    ax.set_ylabel("seconds until a new leader holds the lock")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return fig
