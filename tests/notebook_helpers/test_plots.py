"""plots.py: intervals computed from event timelines, and figures that draw what they say."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

from matplotlib.figure import Figure

from elect_helpers.plots import (
    Handover,
    Interval,
    handover_bars,
    handovers,
    leadership_intervals,
    leadership_timeline,
)


def ev(t, node, event, token=None, detail=""):
    return {
        "time": t,
        "node": node,
        "event": event,
        "token": token,
        "session": None,
        "detail": detail,
    }


CRASH = [
    ev(100.0, "node01", "started"),
    ev(100.2, "node01", "elected", token=11),
    ev(100.3, "node02", "started"),
    ev(101.0, "node01", "signal", detail="controller sent SIGKILL (crash)"),
    ev(103.5, "node02", "elected", token=14),
    ev(104.0, "node02", "signal", detail="controller sent SIGSTOP (freeze)"),
    ev(106.0, "node03", "elected", token=17),
    ev(106.5, "node02", "signal", detail="controller sent SIGCONT (wake up to handle SIGTERM)"),
    ev(106.6, "node02", "write-rejected", token=14),
    ev(106.7, "node02", "lost", token=14, detail="session gone"),
]


def test_intervals_follow_beliefs_and_a_kill_ends_one():
    assert leadership_intervals(CRASH) == [
        Interval("node01", 100.2, 101.0, 11, "killed"),
        Interval("node02", 103.5, 106.7, 14, "lost"),
        Interval("node03", 106.0, None, 17, ""),
    ]


def test_paused_leader_and_new_leader_overlap_in_belief():
    node02, node03 = leadership_intervals(CRASH)[1:]
    assert node03.start < node02.end  # two believers at once: what fencing is for


def test_intervals_ignore_unsorted_input_order():
    assert leadership_intervals(reversed(CRASH)) == leadership_intervals(CRASH)


def test_timeline_draws_one_lane_per_node_and_a_bar_per_belief():
    fig = leadership_timeline(CRASH)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["node01", "node02", "node03"]
    assert len(ax.patches) == 3
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["killed", "paused", "resumed", "stale write rejected (fenced)"]


def test_timeline_refuses_an_empty_history_with_advice():
    with pytest.raises(ValueError, match="start some nodes"):
        leadership_timeline([])


def test_handover_bars_show_means_and_bounds():
    fig = handover_bars({"graceful stop": [0.05, 0.07], "crash": [3.1, 3.3]}, bounds={"crash": 3.5})
    ax = fig.axes[0]
    heights = [round(p.get_height(), 3) for p in ax.patches]
    assert heights == [0.06, 3.2]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["graceful stop\nmean 0.06 s", "crash\nmean 3.20 s"]
    assert len(ax.collections) == 1  # the one dashed bound


def test_handover_bars_need_a_trial_per_label():
    with pytest.raises(ValueError, match="at least one"):
        handover_bars({"crash": []})


def test_handovers_measure_from_the_signal_to_the_next_election():
    events = [*CRASH, ev(100.25, "node03", "signal", detail="controller sent SIGTERM (x)")]
    assert handovers(events) == [
        Handover("node01", "SIGKILL", 101.0, "node02", pytest.approx(2.5)),
        Handover("node02", "SIGSTOP", 104.0, "node03", pytest.approx(2.0)),
    ]  # node03 was no leader at 100.25, so its SIGTERM is no hand-over


def test_handover_without_a_successor_has_no_time():
    events = CRASH[:4]
    assert handovers(events) == [Handover("node01", "SIGKILL", 101.0, None, None)]


def test_a_stale_write_rejected_and_accepted_at_once_gets_two_visible_markers():
    events = [
        *CRASH,
        ev(106.6, "node02", "write-accepted", token=14, detail="stale: the store had seen 17"),
    ]
    ax = leadership_timeline(events).axes[0]
    spots = {line.get_label(): tuple(line.get_xydata()[0]) for line in ax.get_lines()}
    rejected = spots["stale write rejected (fenced)"]
    accepted = spots["stale write accepted (unfenced)"]
    assert rejected[0] == accepted[0]  # same moment ...
    assert abs(rejected[1] - accepted[1]) > 0.5  # ... drawn apart, on either side of the lane
