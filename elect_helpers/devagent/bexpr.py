"""Consul's ``?filter`` language: go-bexpr v0.1.2, the version Consul 1.20 builds with.

Three parts, each following the Go library (``grammar.peg``, ``field_config.go``,
``validate.go``, ``evaluate.go``):

* **Parsing** runs the library's PEG grammar on a small interpreter with the semantics of the
  pigeon parser generator it was built with: ordered choice with backtracking, the farthest
  failure position and what was expected there, and errors raised by grammar actions.  So a
  bad expression gets Go's text, e.g. ``1:6 (5): no match found, expected: "!=", ...``.
* **Validation** checks an expression against a :class:`GoType` (a model of the Go struct the
  filter runs on): every selector must name an exported, filterable field (``Selector "X" is
  not valid``), the operator must suit the field's kind, and the value is coerced to the
  field's type once (``strconv`` rules and error texts).
* **Evaluation** walks JSON-rendered objects (what the endpoint would answer) along the Go
  field names, treating a missing JSON key as Go's zero value: slices match if any element
  does, a missing map key follows the library's rules, ``in`` on a string is a substring test.

Promised: the grammar, operator set, coercions and error texts of v0.1.2 for the types
modelled.  Only believed: ``matches`` uses Python's ``re`` (RE2 and Python agree on ordinary
patterns; RE2-only or Python-only syntax may be judged differently, see FIDELITY.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import go_quote


class BexprError(Exception):
    """An expression go-bexpr rejects; ``message`` is the library's error text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NilPointer(Exception):
    """Evaluation reached through a nil pointer, where the Go library panics.

    ``selector`` is the part of the selector that named the nil field.
    """

    def __init__(self, selector: str) -> None:
        super().__init__(selector)
        self.selector = selector


# ===== the syntax tree =======================================================================

EQUAL = "Equal"
NOT_EQUAL = "Not Equal"
IN = "In"
NOT_IN = "Not In"
IS_EMPTY = "Is Empty"
IS_NOT_EMPTY = "Is Not Empty"
MATCHES = "Matches"
NOT_MATCHES = "Not Matches"


@dataclass
class Match:
    """``selector <op> value`` (operators are named as go-bexpr's ``MatchOperator.String``)."""

    selector: tuple[str, ...]
    operator: str
    raw: str | None  # None for the emptiness tests


@dataclass
class Not:
    operand: Expression


@dataclass
class Binary:
    operator: str  # "and" / "or"
    left: Expression
    right: Expression


Expression = Match | Not | Binary


# ===== a pigeon-style PEG interpreter ========================================================


@dataclass
class _Parser:
    """Parse state, with pigeon's bookkeeping of the farthest failure and of errors."""

    text: str
    positions: list[tuple[int, int, int]]  # (line, col, byte offset) of each char index
    pos: int = 0
    max_fail: int = 0
    expected: list[str] = field(default_factory=list)
    inverted: bool = False
    errors: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)

    def fail_at(self, matched: bool, at: int, want: str) -> None:
        # Pigeon records a failed match, or (inside a negative lookahead) a match as "!want",
        # keeping only those at the farthest position reached.
        if matched != self.inverted or at < self.max_fail:
            return
        if at > self.max_fail:
            self.max_fail = at
            self.expected = []
        self.expected.append("!" + want if self.inverted else want)

    def add_error(self, message: str, at: int) -> None:
        line, col, offset = self.positions[at]
        prefix = f"{line}:{col} ({offset})"
        if self.rules:
            prefix += ": rule " + self.rules[-1]
        self.errors.append(f"{prefix}: {message}")

    def current(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""


def _positions(text: str) -> list[tuple[int, int, int]]:
    """Pigeon's positions: columns count runes from 1; a newline itself sits at column 0."""
    out = []
    line, col, offset = 1, 0, 0
    for index in range(len(text) + 1):
        if index > 0:
            offset += len(text[index - 1].encode("utf-8", "surrogatepass"))
        col += 1
        if index < len(text) and text[index] == "\n":
            line, col = line + 1, 0
        out.append((line, col, offset))
    return out


Result = tuple[bool, Any]
Rule = Callable[[_Parser], Result]


class _Expr:
    def __call__(self, p: _Parser) -> Result:
        raise NotImplementedError


@dataclass
class _Lit(_Expr):
    value: str

    def __call__(self, p: _Parser) -> Result:
        start = p.pos
        want = go_quote(self.value)
        if p.text.startswith(self.value, start):
            p.pos += len(self.value)
            p.fail_at(True, start, want)
            return True, self.value
        p.fail_at(False, start, want)
        return False, None


@dataclass
class _Class(_Expr):
    """A character class; ``shown`` is how the grammar spells it in "expected" lists."""

    shown: str
    test: Callable[[str], bool]

    def __call__(self, p: _Parser) -> Result:
        start = p.pos
        char = p.current()
        if char and self.test(char):
            p.pos += 1
            p.fail_at(True, start, self.shown)
            return True, char
        p.fail_at(False, start, self.shown)
        return False, None


class _AnyChar(_Expr):
    def __call__(self, p: _Parser) -> Result:
        start = p.pos
        if p.pos >= len(p.text):
            p.fail_at(False, start, ".")
            return False, None
        p.pos += 1
        p.fail_at(True, start, ".")
        return True, p.text[start]


class _Seq(_Expr):
    def __init__(self, *parts: _Expr | str) -> None:
        self.parts = [_ref(part) for part in parts]

    def __call__(self, p: _Parser) -> Result:
        start = p.pos
        values = []
        for part in self.parts:
            ok, value = part(p)
            if not ok:
                p.pos = start
                return False, None
            values.append(value)
        return True, values


class _Choice(_Expr):
    def __init__(self, *alternatives: _Expr | str) -> None:
        self.alternatives = [_ref(alt) for alt in alternatives]

    def __call__(self, p: _Parser) -> Result:
        for alternative in self.alternatives:
            ok, value = alternative(p)
            if ok:
                return True, value
        return False, None


@dataclass
class _Repeat(_Expr):
    inner: _Expr
    minimum: int

    def __call__(self, p: _Parser) -> Result:
        values = []
        while True:
            ok, value = self.inner(p)
            if not ok:
                break
            values.append(value)
        return len(values) >= self.minimum, values


@dataclass
class _Optional(_Expr):
    inner: _Expr

    def __call__(self, p: _Parser) -> Result:
        _, value = self.inner(p)
        return True, value


@dataclass
class _Lookahead(_Expr):
    inner: _Expr
    negative: bool

    def __call__(self, p: _Parser) -> Result:
        start = p.pos
        if self.negative:
            p.inverted = not p.inverted
        ok, _ = self.inner(p)
        if self.negative:
            p.inverted = not p.inverted
        p.pos = start
        return ok != self.negative, None


@dataclass
class _Raise(_Expr):
    """``&{ return false, errors.New(message) }``: always fails, recording the error."""

    message: str

    def __call__(self, p: _Parser) -> Result:
        p.add_error(self.message, p.pos)
        return False, None


@dataclass
class _Action(_Expr):
    """Run ``build(values, text)`` on a match; it returns (value, error text or None)."""

    inner: _Expr
    build: Callable[[Any, str], tuple[Any, str | None]]

    def __call__(self, p: _Parser) -> Result:
        start = p.pos
        ok, values = self.inner(p)
        if not ok:
            return False, None
        value, error = self.build(values, p.text[start : p.pos])
        if error is not None:
            p.add_error(error, start)
        return True, value


_RULES: dict[str, tuple[str, _Expr]] = {}


@dataclass
class _RuleRef(_Expr):
    name: str

    def __call__(self, p: _Parser) -> Result:
        shown, body = _RULES[self.name]
        p.rules.append(shown)
        try:
            return body(p)
        finally:
            p.rules.pop()


def _ref(part: _Expr | str) -> _Expr:
    return _RuleRef(part) if isinstance(part, str) else part


def _rule(name: str, body: _Expr, display: str = "") -> None:
    _RULES[name] = (go_quote(display) if display else name, body)


def _opt(part: _Expr | str) -> _Expr:
    return _Optional(_ref(part))


def _not(part: _Expr | str) -> _Expr:
    return _Lookahead(_ref(part), negative=True)


def _and(part: _Expr | str) -> _Expr:
    return _Lookahead(_ref(part), negative=False)


def _keep(index: int) -> Callable[[Any, str], tuple[Any, None]]:
    return lambda values, _text: (values[index], None)


def _op(words: str, operator: str) -> _Expr:
    """``_ "word" _ ... _`` answering ``operator`` (``contains`` is go-bexpr's ``In``)."""
    parts: list[_Expr | str] = []
    for word in words.split():
        parts += ["_", _Lit(word)]
    return _Action(_Seq(*parts, "_"), lambda _v, _t: (operator, None))


def _binary(operator: str) -> Callable[[Any, str], tuple[Any, None]]:
    return lambda v, _t: (Binary(operator, v[0], v[4]), None)


def _not_expression(values: Any, _text: str) -> tuple[Any, None]:
    operand = values[2]
    return (operand.operand if isinstance(operand, Not) else Not(operand)), None


def _unquote_literal(_values: Any, text: str) -> tuple[Any, str | None]:
    try:
        return go_unquote(text), None
    except ValueError:
        return "", "invalid syntax"


def _letters(char: str) -> bool:
    return char.isascii() and char.isalpha()


def _word(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")


_WS = " \t\r\n"

_rule(
    "Input",
    _Choice(
        _Action(_Seq(_opt("_"), _Lit("("), _opt("_"), "OrExpression", _opt("_"), _Lit(")"),
                     _opt("_"), "EOF"), _keep(3)),
        _Action(_Seq(_opt("_"), "OrExpression", _opt("_"), "EOF"), _keep(1)),
    ),
)  # fmt: skip
_rule(
    "OrExpression",
    _Choice(
        _Action(_Seq("AndExpression", "_", _Lit("or"), "_", "OrExpression"), _binary("or")),
        "AndExpression",
    ),
)
_rule(
    "AndExpression",
    _Choice(
        _Action(_Seq("NotExpression", "_", _Lit("and"), "_", "AndExpression"), _binary("and")),
        "NotExpression",
    ),
)
_rule(
    "NotExpression",
    _Choice(_Action(_Seq(_Lit("not"), "_", "NotExpression"), _not_expression),
            "ParenthesizedExpression"),
)  # fmt: skip
_rule(
    "ParenthesizedExpression",
    _Choice(
        _Action(_Seq(_Lit("("), _opt("_"), "OrExpression", _opt("_"), _Lit(")")), _keep(2)),
        "MatchExpression",
        _Seq(_Lit("("), _opt("_"), "OrExpression", _opt("_"), _not(_Lit(")")),
             _Raise("Unmatched parentheses")),
    ),
    "grouping",
)  # fmt: skip
_rule(
    "MatchExpression",
    _Choice("MatchSelectorOpValue", "MatchSelectorOp", "MatchValueOpSelector"),
    "match",
)
_rule(
    "MatchSelectorOpValue",
    _Action(
        _Seq("Selector",
             _Choice(_Action(_Seq(_opt("_"), _Lit("=="), _opt("_")), lambda _v, _t: (EQUAL, None)),
                     _Action(_Seq(_opt("_"), _Lit("!="), _opt("_")),
                             lambda _v, _t: (NOT_EQUAL, None)),
                     _op("contains", IN), _op("not contains", NOT_IN),
                     _op("matches", MATCHES), _op("not matches", NOT_MATCHES)),
             "Value"),
        lambda v, _t: (Match(v[0], v[1], v[2]), None),
    ),
    "match",
)  # fmt: skip
_rule(
    "MatchSelectorOp",
    _Action(
        _Seq("Selector",
             _Choice(_Action(_Seq("_", _Lit("is"), "_", _Lit("empty")),
                             lambda _v, _t: (IS_EMPTY, None)),
                     _Action(_Seq("_", _Lit("is"), "_", _Lit("not"), "_", _Lit("empty")),
                             lambda _v, _t: (IS_NOT_EMPTY, None)))),
        lambda v, _t: (Match(v[0], v[1], None), None),
    ),
    "match",
)  # fmt: skip
_IN_OPS = _Choice(_op("in", IN), _op("not in", NOT_IN))
_rule(
    "MatchValueOpSelector",
    _Choice(
        _Action(_Seq("Value", _IN_OPS, "Selector"), lambda v, _t: (Match(v[2], v[1], v[0]), None)),
        _Seq("Value", _IN_OPS, _not("Selector"), _Raise("Invalid selector")),
    ),
    "match",
)
_rule(
    "Selector",
    _Action(_Seq("Identifier", _Repeat(_ref("SelectorOrIndex"), 0)),
            lambda v, _t: ((v[0], *v[1]), None)),
    "selector",
)  # fmt: skip
_rule(
    "Identifier",
    _Action(
        _Seq(_Class("[a-zA-Z]", _letters), _Repeat(_Class("[a-zA-Z0-9_]", _word), 0)),
        lambda _v, text: (text, None),
    ),
)
_rule(
    "SelectorOrIndex",
    _Choice(_Action(_Seq(_Lit("."), "Identifier"), _keep(1)), "IndexExpression"),
)
_rule(
    "IndexExpression",
    _Choice(
        _Action(_Seq(_Lit("["), _opt("_"), "StringLiteral", _opt("_"), _Lit("]")), _keep(2)),
        _Seq(_Lit("["), _opt("_"), _not("StringLiteral"), _Raise("Invalid index")),
        _Seq(_Lit("["), _opt("_"), "StringLiteral", _opt("_"), _not(_Lit("]")),
             _Raise("Unclosed index expression")),
    ),
    "index",
)  # fmt: skip
_rule(
    "Value",
    _Choice(_Action(_ref("Selector"), lambda v, _t: (".".join(v), None)), "NumberLiteral",
            "StringLiteral"),
    "value",
)  # fmt: skip
_rule(
    "NumberLiteral",
    _Choice(
        _Action(_Seq(_opt(_Lit("-")), "IntegerOrFloat", _and("AfterNumbers")),
                lambda _v, text: (text, None)),
        _Seq(_opt(_Lit("-")), "IntegerOrFloat", _not("AfterNumbers"),
             _Raise("Invalid number literal")),
    ),
    "number",
)  # fmt: skip
_rule("AfterNumbers", _and(_Choice("_", "EOF", _Lit(")"))))
_DIGIT = _Class("[0-9]", lambda c: c in "0123456789")
_rule(
    "IntegerOrFloat",
    _Seq(
        _Choice(_Lit("0"), _Seq(_Class("[1-9]", lambda c: c in "123456789"), _Repeat(_DIGIT, 0))),
        _opt(_Seq(_Lit("."), _Repeat(_DIGIT, 1))),
    ),
)
_rule(
    "StringLiteral",
    _Choice(
        _Action(_Choice(_Seq(_Lit("`"), _Repeat(_ref("RawStringChar"), 0), _Lit("`")),
                        _Seq(_Lit('"'), _Repeat(_ref("DoubleStringChar"), 0), _Lit('"'))),
                _unquote_literal),
        _Seq(_Choice(_Seq(_Lit("`"), _Repeat(_ref("RawStringChar"), 0)),
                     _Seq(_Lit('"'), _Repeat(_ref("DoubleStringChar"), 0))),
             "EOF", _Raise("Unterminated string literal")),
    ),
    "string",
)  # fmt: skip
_rule("RawStringChar", _Seq(_not(_Lit("`")), _AnyChar()))
_rule("DoubleStringChar", _Seq(_not(_Lit('"')), _AnyChar()))
_rule("_", _Repeat(_Class("[ \\t\\r\\n]", lambda c: c in _WS), 1), "whitespace")
_rule("EOF", _not(_AnyChar()))


def parse(expression: str) -> Expression:
    """Parse like go-bexpr's ``Parse``; raises :class:`BexprError` with pigeon's text.

    As in pigeon, an error recorded by a grammar action (a bad string escape) fails the
    parse even when the rest of the expression matched.
    """
    p = _Parser(expression, _positions(expression))
    ok, tree = _RuleRef("Input")(p)
    if not ok and not p.errors:
        wanted = set(p.expected)
        eof = "!." in wanted
        wanted.discard("!.")
        listed = sorted(wanted) + (["EOF"] if eof else [])
        p.add_error("no match found, expected: " + _list_join(listed), p.max_fail)
    if p.errors:
        raise BexprError("\n".join(dict.fromkeys(p.errors)))
    assert isinstance(tree, Match | Not | Binary)
    return tree


def _list_join(items: list[str]) -> str:
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


def go_unquote(literal: str) -> str:
    """Go's ``strconv.Unquote`` for a back- or double-quoted literal; ``ValueError`` if bad."""
    if literal.startswith("`"):
        if len(literal) < 2 or not literal.endswith("`") or "`" in literal[1:-1]:
            raise ValueError(literal)
        return literal[1:-1].replace("\r", "")
    if len(literal) < 2 or literal[0] != '"' or literal[-1] != '"':
        raise ValueError(literal)
    body = literal[1:-1]
    out = bytearray()
    index = 0
    while index < len(body):
        char = body[index]
        if char in '"\n':
            raise ValueError(literal)
        if char != "\\":
            out += char.encode("utf-8", "surrogatepass")
            index += 1
            continue
        if index + 1 >= len(body):
            raise ValueError(literal)
        kind = body[index + 1]
        index += 2
        if kind in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[kind])
        elif kind == '"':
            out.append(34)
        elif kind in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[kind]
            digits = body[index : index + width]
            if len(digits) < width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError(literal)
            index += width
            code = int(digits, 16)
            if kind == "x":
                out.append(code)
            elif code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise ValueError(literal)
            else:
                out += chr(code).encode("utf-8")
        elif kind in "01234567":
            digits = kind + body[index : index + 2]
            if len(digits) < 3 or not all(c in "01234567" for c in digits):
                raise ValueError(literal)
            index += 2
            code = int(digits, 8)
            if code > 255:
                raise ValueError(literal)
            out.append(code)
        else:
            raise ValueError(literal)
    return out.decode("utf-8", "surrogateescape")


# ===== Go types and their field configurations ===============================================

# Primitive kinds and their coercion (strconv function, bit size).
_INT_BITS = {"int": 64, "int8": 8, "int16": 16, "int32": 32, "int64": 64}
_UINT_BITS = {"uint": 64, "uint8": 8, "uint16": 16, "uint32": 32, "uint64": 64}


@dataclass(frozen=True)
class Prim:
    """A Go primitive kind: ``string``, ``bool``, ``int``... or ``uint``... (no floats: no
    type Consul filters here has one)."""

    kind: str


@dataclass(frozen=True)
class Struct:
    """A Go struct: ``fields`` holds (Go field name, type, JSON key) of its filterable fields.

    Fields tagged ``bexpr:"-"`` or unexported are left out, as go-bexpr skips them.
    """

    name: str
    fields: tuple[tuple[str, GoType, str], ...]


@dataclass(frozen=True)
class Slice:
    elem: GoType


@dataclass(frozen=True)
class Map:
    """A ``map[string]elem``; ``elem`` None for a value type go-bexpr cannot select into."""

    elem: GoType | None


@dataclass(frozen=True)
class Ptr:
    elem: GoType


@dataclass(frozen=True)
class IPAddr:
    """``net.IP`` (a ``[]byte``), rendered in JSON as its text form."""


GoType = Prim | Struct | Slice | Map | Ptr | IPAddr

STRING = Prim("string")
BOOL = Prim("bool")
INT = Prim("int")


def struct(name: str, **fields: GoType) -> Struct:
    """A struct whose JSON keys are its Go field names (true of every type Consul filters)."""
    return Struct(name, tuple((go, typ, go) for go, typ in fields.items()))


@dataclass
class FieldConfig:
    """go-bexpr's ``FieldConfiguration``: operators, coercion and sub-fields of one field."""

    operations: tuple[str, ...] = ()
    coerce: Callable[[str], Any] | None = None
    sub: dict[str, FieldConfig] | None = None  # "" is the any-key entry of a map


_EQUALITY = (EQUAL, NOT_EQUAL)
_STRING_OPS = (EQUAL, NOT_EQUAL, IN, NOT_IN, MATCHES, NOT_MATCHES)
_EMPTINESS = (IS_EMPTY, IS_NOT_EMPTY)


def _deref(typ: GoType) -> GoType:
    while isinstance(typ, Ptr):
        typ = typ.elem
    return typ


def field_config(typ: GoType) -> FieldConfig | None:
    """The configuration go-bexpr generates for a field of type ``typ``."""
    typ = _deref(typ)
    if isinstance(typ, Prim):
        return FieldConfig(_STRING_OPS if typ.kind == "string" else _EQUALITY, _coercer(typ))
    if isinstance(typ, IPAddr):
        return FieldConfig((IN, NOT_IN, *_EMPTINESS), _coercer(Prim("uint8")))
    if isinstance(typ, Map):
        config = FieldConfig((*_EMPTINESS, IN, NOT_IN), _coercer(STRING))
        elem = field_config(typ.elem) if typ.elem is not None else None
        if elem is not None:
            config.sub = {"": elem}
        return config
    if isinstance(typ, Slice):
        if isinstance(typ.elem, Prim):
            return FieldConfig((IN, NOT_IN, *_EMPTINESS), _coercer(typ.elem))
        elem = field_config(typ.elem)
        return FieldConfig(_EMPTINESS, sub=elem.sub if elem is not None and elem.sub else None)
    return FieldConfig(sub={name: _must(field_config(t)) for name, t, _ in typ.fields})


def _must(config: FieldConfig | None) -> FieldConfig:
    assert config is not None
    return config


def _coercer(typ: Prim) -> Callable[[str], Any]:
    kind = typ.kind
    if kind == "string":
        return lambda raw: raw
    if kind == "bool":
        return _parse_bool
    if kind in _INT_BITS:
        return lambda raw: go_parse_int(raw, _INT_BITS[kind], signed=True)
    return lambda raw: go_parse_int(raw, _UINT_BITS[kind], signed=False)


class CoerceError(Exception):
    """A ``strconv`` failure; the message is Go's ``*NumError`` text."""


def _num_error(func: str, raw: str, reason: str) -> CoerceError:
    return CoerceError(f"strconv.{func}: parsing {go_quote(raw)}: {reason}")


def _parse_bool(raw: str) -> bool:
    if raw in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if raw in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise _num_error("ParseBool", raw, "invalid syntax")


def go_parse_int(raw: str, bits: int, signed: bool) -> int:
    """``strconv.ParseInt``/``ParseUint`` with base 0: ``0x``/``0o``/``0b``/``0`` prefixes,
    ``_`` between digits, and Go's order of checks (an overflow is reported as soon as seen).
    """
    func = "ParseInt" if signed else "ParseUint"
    text = raw
    negative = False
    if signed and text[:1] in ("+", "-"):
        negative = text[0] == "-"
        text = text[1:]
    if not text:
        raise _num_error(func, raw, "invalid syntax")
    base, digits = 10, text
    if text[0] == "0":
        prefix = text[1:2].lower()
        if len(text) >= 3 and prefix in ("b", "o", "x"):
            base, digits = {"b": 2, "o": 8, "x": 16}[prefix], text[2:]
        else:
            base, digits = 8, text[1:]
    limit = (2 ** (bits - 1)) if signed else 2**bits - 1
    value = 0
    underscores = False
    for char in digits:
        if char == "_":
            underscores = True
            continue
        digit = int(char, 36) if char.isascii() and char.isalnum() else 99
        if digit >= base:
            raise _num_error(func, raw, "invalid syntax")
        value = value * base + digit
        if value > 2**bits - 1:
            raise _num_error(func, raw, "value out of range")
    if underscores and not _underscores_ok(text):
        raise _num_error(func, raw, "invalid syntax")
    if signed and (value > limit or (value == limit and not negative)):
        raise _num_error(func, raw, "value out of range")
    return -value if negative else value


def _underscores_ok(text: str) -> bool:
    """Go's ``underscoreOK``: each ``_`` sits between digits (a base prefix counts as one)."""
    saw = "^"
    index = 0
    hexadecimal = False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        index, saw, hexadecimal = 2, "0", text[1].lower() == "x"
    for char in text[index:]:
        if (char.isascii() and char.isdigit()) or (hexadecimal and char.lower() in "abcdef"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


# ===== validation (validate.go) ==============================================================


@dataclass
class _Prepared:
    """A match with its coerced value (or compiled pattern), ready to evaluate."""

    match: Match
    value: Any = None


def _selector_text(parts: Sequence[str]) -> str:
    return go_quote(".".join(parts))


def _validate(tree: Expression, fields: dict[str, FieldConfig] | None) -> Iterator[_Prepared]:
    if isinstance(tree, Not):
        yield from _validate(tree.operand, fields)
        return
    if isinstance(tree, Binary):
        yield from _validate(tree.left, fields)
        yield from _validate(tree.right, fields)
        return
    prepared = _Prepared(tree, tree.raw)
    if not fields:
        yield prepared
        return
    configs: dict[str, FieldConfig] | None = fields
    last: FieldConfig | None = None
    for index, name in enumerate(tree.selector):
        config = (configs or {}).get(name) or (configs or {}).get("")
        if config is None:
            raise BexprError(f"Selector {_selector_text(tree.selector[: index + 1])} is not valid")
        last, configs = config, config.sub
    assert last is not None
    selector = _selector_text(tree.selector)
    if tree.operator not in last.operations:
        raise BexprError(
            f"Invalid match operator {go_quote(tree.operator)} for selector {selector}"
        )
    if tree.raw is not None:
        if last.coerce is not None:
            try:
                prepared.value = last.coerce(tree.raw)
            except CoerceError as error:
                raise BexprError(
                    f"Failed to coerce value {go_quote(tree.raw)} for selector {selector}: {error}"
                ) from None
        if tree.operator in (MATCHES, NOT_MATCHES):
            prepared.value = compile_go_regexp(prepared.value)
    yield prepared


_UNSUPPORTED_PERL = re.compile(r"\(\?(?:[=!]|<[=!]|P=|>)")
_BACKREFERENCE = re.compile(r"\\[1-9]")


def compile_go_regexp(pattern: str) -> re.Pattern[str]:
    """Compile ``pattern`` for ``matches``; errors in the style of Go's ``regexp.Compile``.

    Lookarounds and backreferences, which RE2 lacks, are refused as Go refuses them.
    """
    prefix = f"Failed to compile regular expression {go_quote(pattern)}: error parsing regexp: "
    perl = _UNSUPPORTED_PERL.search(pattern)
    if perl:
        raise BexprError(prefix + f"invalid or unsupported Perl syntax: `{perl.group(0)}`")
    backref = _BACKREFERENCE.search(pattern)
    if backref:
        raise BexprError(prefix + f"invalid escape sequence: `{backref.group(0)}`")
    try:
        return re.compile(pattern.replace(r"\z", r"\Z"))
    except re.error as error:
        raise BexprError(prefix + _go_regexp_reason(error, pattern)) from None


def _go_regexp_reason(error: re.error, pattern: str) -> str:
    message = str(error.msg)
    if "missing ), unterminated subpattern" in message:
        return f"missing closing ): `{pattern}`"
    if "unbalanced parenthesis" in message:
        return f"unexpected ): `{pattern}`"
    if "unterminated character set" in message:
        return f"missing closing ]: `{pattern[error.pos or 0 :]}`"
    if "nothing to repeat" in message or "multiple repeat" in message:
        position = error.pos or 0
        return f"missing argument to repetition operator: `{pattern[position : position + 1]}`"
    if "bad escape" in message:
        position = error.pos or 0
        return f"invalid escape sequence: `{pattern[position : position + 2]}`"
    return message


# ===== evaluation (evaluate.go) ==============================================================


class Evaluator:
    """A parsed, validated expression bound to one element type (go-bexpr's ``Evaluator``)."""

    def __init__(self, expression: str, element: GoType | None) -> None:
        """Parse, then validate against ``element`` (None: parse only, as with no data type)."""
        self.tree = parse(expression)
        self.element = element
        self._prepared: dict[int, _Prepared] = {}
        if element is not None:
            self.bind(element)

    def bind(self, element: GoType) -> None:
        """Validate against ``element`` (what go-bexpr does on a first ``Evaluate``)."""
        config = field_config(element)
        fields = config.sub if config is not None else None
        if not fields:
            raise BexprError(f"Data type {_type_name(element)} has no evaluatable fields")
        self._prepared = {id(p.match): p for p in _validate(self.tree, fields)}
        self.element = element

    def evaluate(self, datum: Any) -> bool:
        """Whether the JSON-rendered ``datum`` matches; :class:`NilPointer` where Go panics."""
        assert self.element is not None, "bind() an element type first"
        return self._evaluate(self.tree, datum)

    def _evaluate(self, tree: Expression, datum: Any) -> bool:
        if isinstance(tree, Not):
            return not self._evaluate(tree.operand, datum)
        if isinstance(tree, Binary):
            left = self._evaluate(tree.left, datum)
            if tree.operator == "and":
                return left and self._evaluate(tree.right, datum)
            return left or self._evaluate(tree.right, datum)
        prepared = self._prepared[id(tree)]
        assert self.element is not None
        return _match(prepared, 0, _deref(self.element), datum)


def _type_name(typ: GoType) -> str:
    return typ.name if isinstance(typ, Struct) else type(typ).__name__


def _match(prepared: _Prepared, depth: int, typ: GoType, value: Any) -> bool:
    match = prepared.match
    if depth >= len(match.selector):
        return _leaf(prepared, typ, value)
    if isinstance(typ, Struct):
        name = match.selector[depth]
        field_type, json_key = next((t, k) for go, t, k in typ.fields if go == name)
        inner = (value or {}).get(json_key, _zero(field_type))
        if isinstance(field_type, Ptr) and inner is None:
            raise NilPointer(".".join(match.selector[: depth + 1]))
        return _match(prepared, depth + 1, _deref(field_type), inner)
    if isinstance(typ, Slice):
        elem = _deref(typ.elem)
        return any(_match(prepared, depth, elem, item) for item in value or ())
    if isinstance(typ, Map):
        key = match.selector[depth]
        if value is None or key not in value:
            return match.operator in (NOT_EQUAL, IS_EMPTY, NOT_IN)
        assert typ.elem is not None
        return _match(prepared, depth + 1, _deref(typ.elem), value[key])
    raise BexprError(  # pragma: no cover - validation rules this out
        f"Value at selector {_selector_text(match.selector[:depth])} with type {typ} "
        "does not support nested field selection"
    )


def _leaf(prepared: _Prepared, typ: GoType, value: Any) -> bool:
    operator = prepared.match.operator
    if isinstance(typ, IPAddr):
        value = _ip_bytes(value)
    if operator in (EQUAL, NOT_EQUAL):
        return (value == prepared.value) == (operator == EQUAL)
    if operator in (IN, NOT_IN):
        return _contains(typ, value, prepared.value) == (operator == IN)
    if operator in (IS_EMPTY, IS_NOT_EMPTY):
        return (len(value or ()) == 0) == (operator == IS_EMPTY)
    pattern: re.Pattern[str] = prepared.value
    return (pattern.search(value or "") is not None) == (operator == MATCHES)


def _contains(typ: GoType, container: Any, wanted: Any) -> bool:
    if isinstance(typ, Map):
        return wanted in (container or {})
    if isinstance(typ, Slice | IPAddr):
        return any(item == wanted for item in container or ())
    return wanted in (container or "")


def _ip_bytes(text: Any) -> bytes:
    """``net.IP`` as Go holds an address parsed from text: IPv4 in its 16-byte form."""
    import ipaddress

    if not text:
        return b""
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv4Address):
        return b"\0" * 10 + b"\xff\xff" + address.packed
    return address.packed


def _zero(typ: GoType) -> Any:
    """Go's zero value of ``typ`` in JSON form (what an omitted key stands for)."""
    if isinstance(typ, Ptr):
        return None
    if isinstance(typ, Prim):
        return {"string": "", "bool": False}.get(typ.kind, 0)
    if isinstance(typ, Struct | Map):
        return {}
    if isinstance(typ, Slice):
        return []
    return ""


def filter_items(evaluator: Evaluator, items: Sequence[Any]) -> list[Any]:
    """The items (JSON-rendered elements) the expression keeps, in order."""
    return [item for item in items if evaluator.evaluate(item)]


def filter_values(evaluator: Evaluator, items: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of a map whose values the expression keeps."""
    return {key: value for key, value in items.items() if evaluator.evaluate(value)}
