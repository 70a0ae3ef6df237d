"""Decode request JSON the way Go's ``encoding/json`` does for Consul's structs.

Field names match case-insensitively (an exact match wins), only the first JSON value of the
body is read (trailing bytes are ignored, as ``json.Decoder.Decode`` does), JSON ``null``
resets lists and maps but leaves scalars alone, and a strict schema rejects unknown fields with
``json: unknown field "X"``.  Errors carry Go's wording, so handlers can answer
``Request decode failed: <error>`` exactly as Consul does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..durations import DurationError, parse_duration
from .errors import go_quote

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1


def _reject_constant(name: str) -> Any:
    raise DecodeError(
        f"invalid character '{name[0] if name[0] != '-' else name[1]}' "
        "looking for beginning of value"
    )


def _go_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise DecodeError(f"json: cannot unmarshal number {text} into Go value of type float64")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_go_float)


def go_duration_from_number(value: float) -> int:
    """``time.Duration(f)`` for a JSON number: truncates; out of int64 range gives the
    minimum int64, as Go's float-to-int conversion does on amd64."""
    if value != value or not INT64_MIN <= value <= INT64_MAX:
        return INT64_MIN
    return int(value)


class DecodeError(ValueError):
    """The body cannot be decoded; the message is what Go's decoder would say.

    ``truncated`` tells that the JSON was fine so far but ended too soon (more bytes could
    still make it valid), as opposed to a definite syntax or type error.
    """

    def __init__(self, message: str, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def parse_body(body: bytes) -> Any:
    """Parse the first JSON value in ``body``; raise :class:`DecodeError` with Go's text."""
    text = body.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise DecodeError("EOF", truncated=True)
    try:
        value, _ = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as error:
        if error.pos >= len(text):
            raise DecodeError("unexpected EOF", truncated=True) from None
        if error.msg.startswith("Unterminated string"):
            raise DecodeError("unexpected EOF", truncated=True) from None
        char = text[error.pos]
        if error.msg.startswith("Expecting value"):
            raise DecodeError(
                f"invalid character '{char}' looking for beginning of value"
            ) from None
        if error.msg.startswith("Expecting property name"):
            raise DecodeError(
                f"invalid character '{char}' looking for beginning of object key string"
            ) from None
        raise DecodeError(
            f"invalid character '{char}' {error.msg[0].lower()}{error.msg[1:]}"
        ) from None
    return value


@dataclass
class Field:
    """One struct field: its Go name, kind and (for objects) nested schema.

    Kinds: ``str``, ``int``, ``uint``, ``bool``, ``strs`` (list of strings), ``strmap``
    (string to string), ``header`` (string to list of strings), ``duration`` (a Go duration
    string or a number of nanoseconds; anything else leaves it zero), ``obj`` (nested schema),
    ``objs`` (list of nested schema), ``objmap`` (string to nested schema), ``any`` (kept
    as decoded).
    """

    name: str
    kind: str
    schema: Schema | None = None
    aliases: tuple[str, ...] = ()


@dataclass
class Schema:
    """A Go struct: its type name (for error texts), fields, and strictness."""

    type_name: str
    fields: list[Field]
    strict: bool = True
    _by_exact: dict[str, Field] = field(default_factory=dict, init=False, repr=False)
    _by_folded: dict[str, Field] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for f in self.fields:
            for name in (f.name, *f.aliases):
                self._by_exact[name] = f
                self._by_folded.setdefault(name.lower(), f)

    def lookup(self, key: str) -> Field | None:
        """The field a JSON key binds to (exact match first, then case-insensitive)."""
        return self._by_exact.get(key) or self._by_folded.get(key.lower())


def _type_error(value: Any, schema: Schema, fld: Field, go_type: str) -> DecodeError:
    return DecodeError(
        f"json: cannot unmarshal {_json_type(value)} into Go struct field "
        f"{schema.type_name}.{fld.name} of type {go_type}"
    )


def _convert(value: Any, schema: Schema, fld: Field) -> Any:
    kind = fld.kind
    if kind == "any":
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise _type_error(value, schema, fld, "string")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise _type_error(value, schema, fld, "bool")
        return value
    if kind in ("int", "uint"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(value, schema, fld, kind)
        if isinstance(value, float) and not value.is_integer():
            raise DecodeError(
                f"json: cannot unmarshal number {value} into Go struct field "
                f"{schema.type_name}.{fld.name} of type {kind}"
            )
        low, high = (0, UINT64_MAX) if kind == "uint" else (INT64_MIN, INT64_MAX)
        if not low <= value <= high:
            raise DecodeError(
                f"json: cannot unmarshal number {value} into Go struct field "
                f"{schema.type_name}.{fld.name} of type {'uint64' if kind == 'uint' else 'int'}"
            )
        return int(value)
    if kind == "duration":
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except DurationError as error:
                raise DecodeError(str(error)) from None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return go_duration_from_number(float(value))
        return 0
    if kind == "strs":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _type_error(value, schema, fld, "[]string")
        return list(value)
    if kind == "strmap":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise _type_error(value, schema, fld, "map[string]string")
        return dict(value)
    if kind == "header":
        if not isinstance(value, dict) or not all(
            isinstance(v, list) and all(isinstance(i, str) for i in v) for v in value.values()
        ):
            raise _type_error(value, schema, fld, "map[string][]string")
        return {k: list(v) for k, v in value.items()}
    if kind == "obj":
        assert fld.schema is not None
        return decode_struct(value, fld.schema)
    if kind == "objs":
        assert fld.schema is not None
        if not isinstance(value, list):
            raise _type_error(value, schema, fld, f"[]{fld.schema.type_name}")
        return [None if v is None else decode_struct(v, fld.schema) for v in value]
    if kind == "objmap":
        assert fld.schema is not None
        if not isinstance(value, dict):
            raise _type_error(value, schema, fld, f"map[string]structs.{fld.schema.type_name}")
        for item in value.values():
            if not isinstance(item, dict):
                raise _type_error(item, schema, fld, f"structs.{fld.schema.type_name}")
        return {k: decode_struct(v, fld.schema) for k, v in value.items()}
    raise AssertionError(f"unknown field kind {kind}")


_NULLABLE = ("strs", "strmap", "header", "objs", "obj", "objmap", "any")


def decode_struct(data: Any, schema: Schema) -> dict[str, Any]:
    """Decode a JSON object into ``{Go field name: value}`` following ``schema``.

    Only fields present in the JSON appear in the result; ``null`` gives ``None`` for lists,
    maps and nested objects and is skipped for scalars.
    """
    if not isinstance(data, dict):
        raise DecodeError(
            f"json: cannot unmarshal {_json_type(data)} into Go value of type {schema.type_name}"
        )
    out: dict[str, Any] = {}
    for key, value in data.items():
        fld = schema.lookup(key)
        if fld is None:
            if schema.strict:
                raise DecodeError(f"json: unknown field {go_quote(key)}")
            continue
        if value is None:
            if fld.kind in _NULLABLE:
                out[fld.name] = None
            continue
        out[fld.name] = _convert(value, schema, fld)
    return out
