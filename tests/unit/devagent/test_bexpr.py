"""The ``?filter`` language (elect_helpers/devagent/bexpr.py) against go-bexpr v0.1.2.

Three kinds of check:

* a recorded corpus (``data/bexpr_parse_golden.jsonl``): expressions with the tree or the
  error text go-bexpr v0.1.2 itself gave for them, recorded with ``bexpr_reference/``
  (a small Go program of ours); regenerate with
  ``.venv/bin/python -m tests.unit.devagent.bexpr_corpus``;
* where ``go`` is installed, the same program built on the spot and asked about a fresh,
  seeded random corpus of expressions and integers (else skipped with one message);
* property tests (hypothesis) and semantics tests of validation and evaluation.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elect_helpers.devagent import bexpr
from elect_helpers.devagent.bexpr import (
    BOOL,
    INT,
    STRING,
    BexprError,
    Binary,
    Evaluator,
    Map,
    Match,
    NilPointer,
    Not,
    Ptr,
    Slice,
    go_parse_int,
    struct,
)

from .bexpr_corpus import GOLDEN, ask_go, build_reference, random_expressions


def tree(node: bexpr.Expression) -> str:
    """A tree in the reference program's notation (Go-quoted strings)."""
    if isinstance(node, Not):
        return f"not({tree(node.operand)})"
    if isinstance(node, Binary):
        return f"{node.operator}({tree(node.left)},{tree(node.right)})"
    value = "nil" if node.raw is None else bexpr.go_quote(node.raw)
    selector = ",".join(bexpr.go_quote(part) for part in node.selector)
    return f"match([{selector}],{node.operator},{value})"


def outcome(expression: str) -> dict[str, str]:
    try:
        return {"ast": tree(bexpr.parse(expression))}
    except BexprError as error:
        return {"error": error.message}


# ----- recorded and live comparison with go-bexpr ------------------------------------------


def golden_cases() -> list[dict[str, str]]:
    return [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("case", golden_cases(), ids=lambda case: repr(case["parse"])[:60])
def test_parse_matches_recorded_go_bexpr(case: dict[str, str]) -> None:
    expected = {k: v for k, v in case.items() if k != "parse"}
    assert outcome(case["parse"]) == expected


@pytest.fixture(scope="module")
def go_bexpr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference program, built from ``bexpr_reference/`` (needs Go and its module proxy)."""
    if shutil.which("go") is None:
        pytest.skip("go is not installed: the live comparison with go-bexpr needs Go")
    return build_reference(tmp_path_factory.mktemp("bexpr") / "bexprreference")


def test_parse_matches_live_go_bexpr(go_bexpr: Path) -> None:
    seed = random.randrange(2**32)
    expressions = random_expressions(seed, 1500)
    answers = ask_go(go_bexpr, [{"parse": e} for e in expressions])
    mismatches = [
        (e, want, outcome(e))
        for e, want in zip(expressions, answers, strict=True)
        if outcome(e) != want
    ]
    assert not mismatches, f"seed {seed}: {mismatches[:5]}"


INTEGERS = [
    "0", "00", "07", "08", "0_7", "0x1F", "0X_1f", "0o17", "0b101", "0b", "0x", "1_000", "_1",
    "1__0", "1_", "+5", "-5", "--5", "-0x10", "9223372036854775807", "9223372036854775808",
    "-9223372036854775808", "-9223372036854775809", "99999999999999999999x", "1e3", "1.0", "",
    " 1", "१", "255", "256", "-1", "0x_ff", "0xg",
]  # fmt: skip


def test_integer_coercion_matches_live_go(go_bexpr: Path) -> None:
    """``strconv.ParseInt(s, 0, 64)`` and ``ParseUint(s, 0, 8)``: values and error texts."""
    answers = ask_go(
        go_bexpr,
        [{"parse_int": t} for t in INTEGERS] + [{"parse_uint8": t} for t in INTEGERS],
    )
    for (text, signed, bits), want in zip(
        [(t, True, 64) for t in INTEGERS] + [(t, False, 8) for t in INTEGERS], answers, strict=True
    ):
        try:
            got = {"value": str(go_parse_int(text, bits, signed))}
        except bexpr.CoerceError as error:
            got = {"error": str(error)}
        assert got == want, (text, signed, bits)


# ----- properties ---------------------------------------------------------------------------

IDENT = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,6}", fullmatch=True).filter(
    lambda s: s not in {"and", "or", "not", "in", "is", "contains", "matches"}
)
SELECTOR = st.lists(IDENT, min_size=1, max_size=3).map(tuple)
RAW = st.text(
    st.characters(blacklist_characters='"\\`\r', blacklist_categories=("Cs",)), max_size=8
)


def matches() -> st.SearchStrategy[Match]:
    valued = st.builds(
        Match, SELECTOR, st.sampled_from([bexpr.EQUAL, bexpr.NOT_EQUAL, bexpr.IN, bexpr.NOT_IN,
                                          bexpr.MATCHES, bexpr.NOT_MATCHES]), RAW,
    )  # fmt: skip
    empty = st.builds(
        Match, SELECTOR, st.sampled_from([bexpr.IS_EMPTY, bexpr.IS_NOT_EMPTY]), st.none()
    )
    return st.one_of(valued, empty)


EXPRESSIONS = st.recursive(
    matches(),
    lambda inner: st.one_of(
        st.builds(Not, inner.filter(lambda e: not isinstance(e, Not))),
        st.builds(Binary, st.sampled_from(["and", "or"]), inner, inner),
    ),
    max_leaves=6,
)

_SPELLING = {
    bexpr.EQUAL: "==",
    bexpr.NOT_EQUAL: "!=",
    bexpr.MATCHES: "matches",
    bexpr.NOT_MATCHES: "not matches",
    bexpr.IS_EMPTY: "is empty",
    bexpr.IS_NOT_EMPTY: "is not empty",
}


def write(node: bexpr.Expression) -> str:
    """Source text for a tree (fully parenthesised, values double-quoted)."""
    if isinstance(node, Not):
        return f"not ({write(node.operand)})"
    if isinstance(node, Binary):
        return f"({write(node.left)}) {node.operator} ({write(node.right)})"
    selector = node.selector[0] + "".join(f'["{part}"]' for part in node.selector[1:])
    if node.raw is None:
        return f"{selector} {_SPELLING[node.operator]}"
    value = '"' + node.raw.replace("\n", "\\n") + '"'
    if node.operator in (bexpr.IN, bexpr.NOT_IN):
        return f"{value} {'in' if node.operator == bexpr.IN else 'not in'} {selector}"
    return f"{selector} {_SPELLING[node.operator]} {value}"


@settings(max_examples=300, deadline=None)
@given(EXPRESSIONS)
def test_written_trees_parse_back(node: bexpr.Expression) -> None:
    assert bexpr.parse(write(node)) == node


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from('ab.[]()"`=!-01 \tnotandorinscmpey\\é'), max_size=25))
def test_parse_answers_a_tree_or_a_positioned_error(text: str) -> None:
    """Any text gives a tree or go-bexpr's "line:col (offset): ..." error, nothing else."""
    try:
        bexpr.parse(text)
    except BexprError as error:
        for line in error.message.split("\n"):
            assert re.match(r"\d+:\d+ \(\d+\): (rule \"\w+\": )?\S", line), error.message


# ----- validation ---------------------------------------------------------------------------

CHECK = struct("Check", Name=STRING, Status=STRING, Tags=Slice(STRING), Port=INT)
WEIGHTS = struct("Weights", Passing=INT)
THING = struct(
    "Thing",
    Name=STRING,
    Enabled=BOOL,
    Port=INT,
    Tags=Slice(STRING),
    Meta=Map(STRING),
    Config=Map(None),
    Addresses=Map(struct("Address", Address=STRING, Port=INT)),
    Checks=Slice(Ptr(CHECK)),
    Weights=Ptr(WEIGHTS),
)


def rejects(expression: str, element: Any = THING) -> str:
    with pytest.raises(BexprError) as raised:
        Evaluator(expression, element)
    return raised.value.message


def test_selectors_must_name_filterable_fields() -> None:
    assert rejects("Nope == 1") == 'Selector "Nope" is not valid'
    assert rejects("name == x") == 'Selector "name" is not valid'  # field names are exact
    assert rejects("Port.Value == 1") == 'Selector "Port.Value" is not valid'
    assert rejects("Checks.Nope == 1") == 'Selector "Checks.Nope" is not valid'
    assert rejects("Config.key == x") == 'Selector "Config.key" is not valid'
    assert rejects("Addresses.lan.Nope == 1") == 'Selector "Addresses.lan.Nope" is not valid'
    assert rejects("Tags.x == 1") == 'Selector "Tags.x" is not valid'


def test_operators_must_suit_the_field() -> None:
    assert rejects("Port contains 1") == 'Invalid match operator "In" for selector "Port"'
    assert rejects("Tags == x") == 'Invalid match operator "Equal" for selector "Tags"'
    assert rejects("Meta == x") == 'Invalid match operator "Equal" for selector "Meta"'
    assert rejects("Weights is empty") == 'Invalid match operator "Is Empty" for selector "Weights"'
    assert rejects("Enabled matches x") == 'Invalid match operator "Matches" for selector "Enabled"'
    assert rejects("Checks == x") == 'Invalid match operator "Equal" for selector "Checks"'
    for fine in ("Checks is empty", "Config is not empty", "k in Config", "x in Name"):
        Evaluator(fine, THING)


def test_values_are_coerced_to_the_field_type_once() -> None:
    assert rejects("Enabled == yes") == (
        'Failed to coerce value "yes" for selector "Enabled": '
        'strconv.ParseBool: parsing "yes": invalid syntax'
    )
    assert rejects("Port == 1.5") == (
        'Failed to coerce value "1.5" for selector "Port": '
        'strconv.ParseInt: parsing "1.5": invalid syntax'
    )
    assert rejects('Name matches "("') == (
        'Failed to compile regular expression "(": error parsing regexp: missing closing ): `(`'
    )
    assert "invalid or unsupported Perl syntax: `(?=`" in rejects("Name matches `(?=a)`")


def test_without_a_type_only_syntax_is_checked() -> None:
    """``CreateFilter(expr, nil, nil)``: any selector passes until the evaluator is bound."""
    evaluator = Evaluator("Nope == 1", None)
    with pytest.raises(BexprError, match='Selector "Nope" is not valid'):
        evaluator.bind(THING)


# ----- evaluation ---------------------------------------------------------------------------

ITEM: dict[str, Any] = {
    "Name": "web-1",
    "Enabled": True,
    "Port": 8080,
    "Tags": ["v1", "primary"],
    "Meta": {"env": "prod", "empty": ""},
    "Addresses": {"lan": {"Address": "10.0.0.1", "Port": 80}},
    "Checks": [{"Name": "a", "Status": "passing"}, {"Name": "b", "Status": "critical"}],
    "Weights": {"Passing": 1},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Name == web-1", False),  # parses as Name == web, then fails at "-": see below
        ('Name == "web-1"', True),
        ("Port == 8080 and Enabled == true", True),
        ('Port == "0x1F90"', True),
        ("Enabled == T", True),
        ("v1 in Tags", True),
        ("v in Tags", False),
        ("Tags contains primary", True),
        ('"eb" in Name', True),
        ("Name contains eb", True),
        ("env in Meta", True),
        ("Meta.env == prod", True),
        ('Meta.empty == ""', True),
        ("Meta.missing == x", False),
        ("Meta.missing != x", True),
        ("x in Meta.missing", False),
        ("x not in Meta.missing", True),
        ("Addresses.lan.Port == 80", True),
        ("Addresses.wan.Port == 80", False),
        ("Addresses.wan.Port != 80", True),
        ("Checks.Status == critical", True),  # any element
        ("Checks.Status != critical", True),  # check a is not critical
        ("not Checks.Status == critical", False),
        ("Checks.Tags is empty", True),  # a missing key is Go's zero value
        ("Checks.Port == 0", True),
        ("Checks is not empty", True),
        ("Config is empty", True),
        ("Weights.Passing == 1", True),
        ("Name matches `^web-[0-9]+$`", True),
        ("Name not matches `b-`", False),
        ("Name matches `b-1\\z`", True),
        ("not (Port == 1 or Port == 2) and not not Enabled == true", True),
    ],
)
def test_evaluation(expression: str, expected: bool) -> None:
    if expression == "Name == web-1":
        assert "no match found" in rejects(expression)
        return
    assert Evaluator(expression, THING).evaluate(ITEM) is expected


def test_a_nil_pointer_on_the_way_is_reported() -> None:
    """go-bexpr dereferences nil pointers (Go panics); the evaluator says where."""
    with pytest.raises(NilPointer) as raised:
        Evaluator("Weights.Passing == 1", THING).evaluate({**ITEM, "Weights": None})
    assert raised.value.selector == "Weights"
    assert Evaluator("Port == 8080", THING).evaluate({**ITEM, "Weights": None})
