"""Go-style JSON decoding of request bodies."""

from __future__ import annotations

import pytest

from elect_helpers.devagent.api_session import session_from_body
from elect_helpers.devagent.decode import DecodeError, Field, Schema, decode_struct, parse_body
from elect_helpers.devagent.definitions import CHECK_TYPE, SERVICE_DEFINITION, build_service
from elect_helpers.devagent.errors import InvalidInput, go_quote

SCHEMA = Schema("T", [Field("Name", "str"), Field("Tags", "strs"), Field("Port", "int")])


def test_field_names_match_case_insensitively_exact_first() -> None:
    assert decode_struct({"name": "a", "PORT": 3}, SCHEMA) == {"Name": "a", "Port": 3}


def test_unknown_fields_are_rejected_by_strict_schemas() -> None:
    with pytest.raises(DecodeError, match=r'^json: unknown field "Bogus"$'):
        decode_struct({"Name": "x", "Bogus": 1}, SCHEMA)


def test_null_resets_lists_and_skips_scalars() -> None:
    assert decode_struct({"Name": None, "Tags": None}, SCHEMA) == {"Tags": None}


def test_type_errors_use_go_wording() -> None:
    with pytest.raises(DecodeError, match=r"cannot unmarshal string into Go struct field T.Port"):
        decode_struct({"Port": "80"}, SCHEMA)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "EOF"),
        (b"   ", "EOF"),
        (b"x", "invalid character 'x' looking for beginning of value"),
        (b"{", "unexpected EOF"),
    ],
)
def test_parse_errors(body: bytes, message: str) -> None:
    with pytest.raises(DecodeError) as caught:
        parse_body(body)
    assert str(caught.value) == message


def test_only_the_first_value_is_read() -> None:
    assert parse_body(b'{"a": 1} trailing') == {"a": 1}


def test_session_defaults_and_lock_delay_rules() -> None:
    default = session_from_body(b"", "n")
    assert (default.node, default.lock_delay, default.behavior) == ("n", 15 * 10**9, "release")
    assert (default.node_checks, default.checks, default.service_checks) == (
        ["serfHealth"],
        None,
        None,
    )
    assert session_from_body(b'{"LockDelay": 5}', "n").lock_delay == 5 * 10**9
    assert session_from_body(b'{"lockdelay": "1m"}', "n").lock_delay == 60 * 10**9
    assert session_from_body(b'{"LockDelay": 1000}', "n").lock_delay == 1000
    assert session_from_body(b'{"Checks": []}', "n").node_checks == []
    both = session_from_body(b'{"Checks": ["x", "serfHealth"]}', "n")
    assert (both.checks, both.node_checks) == (["x", "serfHealth"], ["serfHealth"])
    assert session_from_body(b'{"unknown": 1, "name": "n1"}', "n").name == "n1"
    with pytest.raises(InvalidInput, match=r"^Request decode failed:"):
        session_from_body(b"not json", "n")


def test_service_definition_defaults_and_check_ids() -> None:
    fields = decode_struct(
        {"name": "w2", "checks": [{"ttl": "10s"}, {"TTL": "20s", "name": "second"}]},
        SERVICE_DEFINITION,
    )
    service, checks = build_service(fields, "n")
    assert (service.id, service.weights) == ("w2", {"Passing": 1, "Warning": 1})
    assert [c.check_id for c, _ in checks] == ["service:w2:1", "service:w2:2"]
    assert [c.name for c, _ in checks] == ["Service 'w2' check", "second"]
    assert all(c.status == "critical" for c, _ in checks)
    with pytest.raises(InvalidInput, match=r"^Missing service name$"):
        build_service({"Port": 1}, "n")


def test_nan_and_overflowing_numbers_follow_go() -> None:
    with pytest.raises(DecodeError, match=r"^invalid character 'N'"):
        parse_body(b'{"LockDelay": NaN}')
    with pytest.raises(DecodeError, match=r"^json: cannot unmarshal number 1e400"):
        parse_body(b'{"LockDelay": 1e400}')
    huge_ttl = decode_struct(parse_body(b'{"TTL": 18446744073709551616}'), CHECK_TYPE)
    assert huge_ttl["TTL"] == -(2**63)
    with pytest.raises(DecodeError, match=r"of type int$"):
        decode_struct({"Port": 2**64}, SCHEMA)


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("plain", '"plain"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("tab\tnl\nbell\a", '"tab\\tnl\\nbell\\a"'),
        ("\x01\x7f", '"\\x01\\x7f"'),
        ("caf\u00e9 \u2603", '"caf\u00e9 \u2603"'),
        ("\u200b\u00a0", '"\\u200b\\u00a0"'),
    ],
)
def test_go_quote_matches_strconv_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


def test_unknown_field_names_are_go_quoted() -> None:
    with pytest.raises(DecodeError, match=r'^json: unknown field "a\\"b"$'):
        decode_struct({'a"b': 1}, SCHEMA)


@pytest.mark.parametrize("body", [b'{"Name": "abc', b'{"Name": ', b"   "])
def test_json_cut_short_is_truncated(body: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        parse_body(body)
    assert caught.value.truncated
    assert str(caught.value) in ("unexpected EOF", "EOF")


def test_a_syntax_error_is_not_truncation() -> None:
    with pytest.raises(DecodeError) as caught:
        parse_body(b'{"Name": x')
    assert not caught.value.truncated
