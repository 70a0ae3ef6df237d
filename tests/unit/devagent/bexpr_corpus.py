"""The expressions ``test_bexpr.py`` compares with go-bexpr, and the Go reference program.

``python -m tests.unit.devagent.bexpr_corpus`` (Go installed) rebuilds the reference program
in ``bexpr_reference/`` and records its answers for the curated and seeded corpus in
``data/bexpr_parse_golden.jsonl``.
"""

from __future__ import annotations

import json
import random
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
GOLDEN = HERE / "data" / "bexpr_parse_golden.jsonl"
REFERENCE = HERE / "bexpr_reference"

CURATED = [
    "", " ", "Node==host-name", "Meta.a == 1 and", "Status ==", "(Node == a", 'Node == "x',
    "Node == 1x", "ExposedPort == 80a", "a in", "not in Tags", 'x == "\\q"', "a[ == c",
    'a["b" == c', "a[1] == c", "((a == b))", "(a == b) or (c == d)", "not not a == b",
    "a == b and(c == d)", "a == b AND c == d", "Service.Tags contains web", "a is empty",
    "a is not empty", "a is", "a not matches `x`", "a == -0", "a == 01", "a == 1.", "a == .5",
    'a == "\\u00e9\\x41\\101"', "a == `multi\nline`", "a ==\n\tb", "\na == b", "é == b",
    'a == "é', '"" in Node.Meta.consul-network-segment', "a == b)", "(a == b", "a.b.c == `d`",
]  # fmt: skip

TOKENS = [
    "Service", "Tags", ".", "Meta", "[", "]", '"k"', "`raw`", '"', "`", "==", "!=", " ", "  ",
    "\t", "\n", "in", "not", "and", "or", "contains", "matches", "is", "empty", "(", ")", "0",
    "12", "-3", "1.5", "1.", "x", "a_b", '"a\\nb"', '"\\q"', '"\\x41"', "-", "=", "!", "é",
    '"é"', "_x", "9a", "0x1", '"\\u00e9"', '"\\101"', "\\", "\r",
]  # fmt: skip
TEMPLATES = [
    "{s} == {v}", "{s} != {v}", "{v} in {s}", "{v} not in {s}", "{s} contains {v}",
    "{s} not contains {v}", "{s} is empty", "{s} is not empty", "{s} matches {v}",
    "{s} not matches {v}",
]  # fmt: skip
SELECTORS = ["Service", "Service.Tags", 'Meta["a b"]', "Meta.k", "Checks.Status", 'x[ "y" ]']
VALUES = ["web", '"web"', "`web`", "80", "-1", "1.5", "a.b", '"a\\"b"', '""', '"\\t"', "08"]


def random_expressions(seed: int, count: int) -> list[str]:
    """Token soup and mutated well-formed expressions (half each), reproducible by seed."""
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        if rnd.random() < 0.5:
            out.append("".join(rnd.choice(TOKENS) for _ in range(rnd.randint(0, 9))))
            continue
        text = ""
        for index in range(rnd.randint(1, 3)):
            part = rnd.choice(TEMPLATES).format(s=rnd.choice(SELECTORS), v=rnd.choice(VALUES))
            if rnd.random() < 0.3:
                part = "not " + part
            if rnd.random() < 0.3:
                part = f"({part})"
            text += (rnd.choice([" and ", " or ", " and", "or "]) if index else "") + part
        if rnd.random() < 0.3:
            cut = rnd.randrange(len(text) + 1)
            text = text[:cut] + rnd.choice(TOKENS) + text[cut + 1 :]
        out.append(text)
    return out


def build_reference(binary: Path) -> Path:
    """Build the Go reference program (go-bexpr v0.1.2 via the module proxy) at ``binary``."""
    build = subprocess.run(
        ["go", "build", "-o", str(binary), "."],
        cwd=REFERENCE,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if build.returncode != 0:
        raise RuntimeError(f"building {REFERENCE} failed:\n{build.stderr}")
    return binary


def ask_go(binary: Path, requests: list[dict[str, str]]) -> list[dict[str, str]]:
    """The reference program's answers, one per request."""
    lines = "".join(json.dumps(r) + "\n" for r in requests)
    done = subprocess.run(
        [str(binary)], input=lines, capture_output=True, text=True, timeout=120, check=True
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def record() -> None:
    """Rewrite the golden file from the reference program's answers."""
    expressions = CURATED + random_expressions(2026, 300)
    with tempfile.TemporaryDirectory() as scratch:
        binary = build_reference(Path(scratch) / "bexprreference")
        answers = ask_go(binary, [{"parse": e} for e in expressions])
    records = [{"parse": e, **a} for e, a in zip(expressions, answers, strict=True)]
    GOLDEN.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    print(f"recorded {len(records)} answers in {GOLDEN}")


if __name__ == "__main__":
    record()
