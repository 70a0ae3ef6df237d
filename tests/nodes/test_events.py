"""The event log: intact lines from many writers, merged in time order."""

import json
import subprocess
import sys

from elect_helpers.events import EventLog, format_event, merge_timeline, read_events

WRITER = """
import sys
from elect_helpers.events import EventLog
log = EventLog(sys.argv[1], sys.argv[2])
for i in range(300):
    log.emit("tick", token=i, detail="x" * 200)
"""


def test_processes_sharing_one_file_never_tear_lines(tmp_path):
    path = tmp_path / "shared.events.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"n{i}"]) for i in range(4)]
    assert all(p.wait(timeout=30) == 0 for p in procs)
    lines = path.read_text().splitlines()
    assert len(lines) == 1200
    records = [json.loads(line) for line in lines]
    assert sorted(r["token"] for r in records if r["node"] == "n2") == list(range(300))
    assert set(records[0]) == {"time", "node", "event", "token", "session", "detail"}


def test_merge_orders_by_time_and_skips_torn_lines(tmp_path):
    a, b = tmp_path / "a.events.jsonl", tmp_path / "b.events.jsonl"
    a.write_text(
        '{"time": 3.0, "node": "a", "event": "x"}\n{"time": 1.0, "node": "a", "event": "y"}\n'
    )
    b.write_text('{"time": 2.0, "node": "b", "event": "z"}\n{"time": 4.0, "node": "b", "ev')
    merged = merge_timeline([a, b, tmp_path / "missing.jsonl"])
    assert [e["time"] for e in merged] == [1.0, 2.0, 3.0]
    assert read_events(tmp_path / "missing.jsonl") == []


def test_emit_returns_the_record_and_format_is_readable(tmp_path):
    with EventLog(tmp_path / "n.events.jsonl", "node01") as log:
        record = log.emit("elected", token=42, session="s-1", detail="holds the key")
    assert read_events(tmp_path / "n.events.jsonl") == [record]
    line = format_event(record, start=record["time"] - 1.5)
    assert "+1.500s" in line and "node01" in line and "token=42" in line
    assert "holds the key" in format_event(record)


def test_without_a_path_events_go_to_stdout():
    code = "from elect_helpers.events import EventLog; EventLog(None, 'n1').emit('started')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert json.loads(out.stdout)["event"] == "started"
