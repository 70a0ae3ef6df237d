"""KV store: checkable facts 1-19, 21, 22 (consul-facts.md section 2).

Keys live under a unique per-test prefix, so "key a" in a fact is ``<prefix>a`` here.
"""

from __future__ import annotations

from .support import Api, b64, index_of

DIR_ENTRY_KEYS = {"LockIndex", "Key", "Flags", "Value", "CreateIndex", "ModifyIndex"}


def test_fact01_missing_key_is_404_with_empty_body_and_index(api: Api, prefix: str) -> None:
    """Fact 1 [agent/kvs_endpoint.go :: KVSGet; agent/consul/kvs_endpoint.go :: KVS.Get;
    agent/http.go :: setIndex]: GET of a missing key -> 404, empty body, X-Consul-Index >= 1."""
    response = api.get(f"/v1/kv/{prefix}missing")
    assert response.status_code == 404
    assert response.content == b""
    assert index_of(response) >= 1


def test_fact02_put_returns_json_true_without_index(api: Api, prefix: str) -> None:
    """Fact 2 [agent/kvs_endpoint.go :: KVSPut; agent/http.go :: wrap]: PUT -> 200,
    application/json, body true, and no X-Consul-Index (writes don't call setMeta)."""
    response = api.put(f"/v1/kv/{prefix}a", b"bar")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() is True
    assert "X-Consul-Index" not in response.headers


def test_fact03_entry_shape_without_session(api: Api, prefix: str) -> None:
    """Fact 3 [agent/structs/structs.go :: DirEntry]: the entry has exactly LockIndex, Key,
    Flags, Value, CreateIndex, ModifyIndex (Session omitted when unlocked)."""
    api.kv_put(f"{prefix}a", b"bar")
    response = api.get(f"/v1/kv/{prefix}a")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert len(body) == 1
    entry = body[0]
    assert set(entry) == DIR_ENTRY_KEYS
    assert entry["Key"] == f"{prefix}a"
    assert entry["Value"] == "YmFy"
    assert entry["Flags"] == 0
    assert entry["LockIndex"] == 0
    assert entry["CreateIndex"] == entry["ModifyIndex"] >= 1


def test_fact04_index_header_is_entry_modify_index(api: Api, prefix: str) -> None:
    """Fact 4 [agent/consul/kvs_endpoint.go :: KVS.Get]: X-Consul-Index == ModifyIndex."""
    api.kv_put(f"{prefix}a", b"one")
    api.kv_put(f"{prefix}other", b"x")  # moves the store's index past a's
    response = api.get(f"/v1/kv/{prefix}a")
    assert index_of(response) == response.json()[0]["ModifyIndex"]


def test_fact05_raw_value_and_headers(api: Api, prefix: str) -> None:
    """Fact 5 [agent/kvs_endpoint.go :: KVSGet]: ?raw returns the bytes as text/plain with
    nosniff and a sandbox CSP."""
    api.kv_put(f"{prefix}a", b"bar")
    response = api.get(f"/v1/kv/{prefix}a?raw")
    assert response.status_code == 200
    assert response.content == b"bar"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox"


def test_fact05_raw_missing_key_is_404(api: Api, prefix: str) -> None:
    """Section 2.2 [agent/kvs_endpoint.go :: KVSGet]: ?raw on a missing key still gives 404."""
    assert api.get(f"/v1/kv/{prefix}nothing?raw").status_code == 404


def test_fact06_empty_body_stores_null_value(api: Api, prefix: str) -> None:
    """Fact 6 [agent/kvs_endpoint.go :: KVSPut; py:tests/test_std.py :: test_kv_encoding]:
    an empty PUT body stores a nil value, which reads back as JSON null."""
    assert api.kv_put(f"{prefix}e", b"") is True
    entry = api.kv_entry(f"{prefix}e")
    assert entry is not None
    assert "Value" in entry
    assert entry["Value"] is None


def test_fact07_flags_rewritten_on_every_put(api: Api, prefix: str) -> None:
    """Fact 7 [agent/kvs_endpoint.go :: KVSPut]: flags=42 is stored; a later PUT without
    flags resets them to 0."""
    api.kv_put(f"{prefix}f", b"v", "?flags=42")
    assert api.kv_entry(f"{prefix}f")["Flags"] == 42
    api.kv_put(f"{prefix}f", b"v")
    assert api.kv_entry(f"{prefix}f")["Flags"] == 0


def test_fact08_cas_zero_only_creates(api: Api, prefix: str) -> None:
    """Fact 8 [agent/consul/state/kvs.go :: kvsSetCASTxn]: cas=0 writes only a new key."""
    assert api.kv_put(f"{prefix}c", b"1", "?cas=0") is True
    assert api.kv_put(f"{prefix}c", b"2", "?cas=0") is False
    assert api.kv_entry(f"{prefix}c")["Value"] == b64("1")


def test_fact09_cas_on_missing_key_fails(api: Api, prefix: str) -> None:
    """Fact 9 [kvsSetCASTxn]: cas=N>0 on a missing key -> false and the key stays missing."""
    assert api.kv_put(f"{prefix}nokey", b"v", "?cas=5") is False
    assert api.kv_entry(f"{prefix}nokey") is None


def test_fact10_cas_needs_current_modify_index(api: Api, prefix: str) -> None:
    """Fact 10 [kvsSetCASTxn; py:tests/test_std.py :: test_kv_put_cas]: cas=M-1 -> false,
    cas=M -> true."""
    api.kv_put(f"{prefix}a", b"1")
    modify = api.kv_entry(f"{prefix}a")["ModifyIndex"]
    assert api.kv_put(f"{prefix}a", b"2", f"?cas={modify - 1}") is False
    assert api.kv_entry(f"{prefix}a")["Value"] == b64("1")
    assert api.kv_put(f"{prefix}a", b"2", f"?cas={modify}") is True
    entry = api.kv_entry(f"{prefix}a")
    assert entry["Value"] == b64("2")
    assert entry["ModifyIndex"] > modify


def test_fact11_identical_put_keeps_modify_index(api: Api, prefix: str) -> None:
    """Fact 11 [agent/consul/state/kvs.go :: kvsSetTxn (DirEntry.Equal)]: writing the same
    value and flags twice returns true both times and leaves ModifyIndex unchanged."""
    assert api.kv_put(f"{prefix}a", b"same", "?flags=3") is True
    first = api.kv_entry(f"{prefix}a")["ModifyIndex"]
    assert api.kv_put(f"{prefix}a", b"same", "?flags=3") is True
    assert api.kv_entry(f"{prefix}a")["ModifyIndex"] == first


def test_plain_put_keeps_create_index(api: Api, prefix: str) -> None:
    """Section 2.3 [kvsSetTxn]: an update keeps CreateIndex and moves ModifyIndex."""
    api.kv_put(f"{prefix}a", b"1")
    before = api.kv_entry(f"{prefix}a")
    api.kv_put(f"{prefix}a", b"2")
    after = api.kv_entry(f"{prefix}a")
    assert after["CreateIndex"] == before["CreateIndex"]
    assert after["ModifyIndex"] > before["ModifyIndex"]


def test_fact12_delete_missing_key_is_true(api: Api, prefix: str) -> None:
    """Fact 12 [agent/kvs_endpoint.go :: KVSDelete; kvsDeleteTxn]: DELETE of a missing key
    -> 200 true."""
    response = api.delete(f"/v1/kv/{prefix}does-not-exist")
    assert response.status_code == 200
    assert response.json() is True


def test_fact13_delete_cas(api: Api, prefix: str) -> None:
    """Fact 13 [kvsDeleteCASTxn; py:tests/test_std.py :: test_kv_delete_cas]: DELETE
    ?cas=M-1 -> false and the key stays; ?cas=M -> true and the key is gone."""
    api.kv_put(f"{prefix}d", b"v")
    modify = api.kv_entry(f"{prefix}d")["ModifyIndex"]
    response = api.delete(f"/v1/kv/{prefix}d?cas={modify - 1}")
    assert response.status_code == 200
    assert response.json() is False
    assert api.kv_entry(f"{prefix}d") is not None
    response = api.delete(f"/v1/kv/{prefix}d?cas={modify}")
    assert response.json() is True
    assert api.kv_entry(f"{prefix}d") is None


def test_delete_cas_on_missing_key_is_true(api: Api, prefix: str) -> None:
    """Section 2.5 [agent/consul/state/kvs.go :: kvsDeleteCASTxn returns entry == nil]
    (code reading): a cas delete of a missing key answers true."""
    assert api.delete(f"/v1/kv/{prefix}never?cas=7").json() is True


def test_delete_recurse_removes_prefix_only(api: Api, prefix: str) -> None:
    """Section 2.5 [kvs_ce.go :: kvsDeleteTreeTxn]: ?recurse deletes every key under the
    prefix (a byte-prefix match) and nothing else."""
    for key in ("dir/a", "dir/b/c", "dir2", "other"):
        api.kv_put(f"{prefix}{key}", b"v")
    response = api.delete(f"/v1/kv/{prefix}dir/?recurse")
    assert response.json() is True
    keys = api.get(f"/v1/kv/{prefix}?keys").json()
    assert keys == [f"{prefix}dir2", f"{prefix}other"]


def test_fact14_put_cas_with_acquire_conflicts(api: Api, prefix: str) -> None:
    """Fact 14 [agent/kvs_endpoint.go :: conflictingFlags]: cas with acquire -> 400
    'Conflicting flags: ...'."""
    session = "11111111-1111-1111-1111-111111111111"
    response = api.put(f"/v1/kv/{prefix}x?cas=0&acquire={session}", b"v")
    assert response.status_code == 400
    assert response.text.startswith("Conflicting flags:")
    assert api.kv_entry(f"{prefix}x") is None


def test_fact14_acquire_with_release_conflicts(api: Api, prefix: str) -> None:
    """Section 2.3 [conflictingFlags]: acquire and release together -> 400."""
    response = api.put(f"/v1/kv/{prefix}x?acquire=a&release=b", b"v")
    assert response.status_code == 400
    assert response.text.startswith("Conflicting flags:")


def test_fact15_delete_recurse_with_cas_conflicts(api: Api, prefix: str) -> None:
    """Fact 15 [conflictingFlags]: DELETE ?recurse&cas=1 -> 400 'Conflicting flags:'."""
    api.kv_put(f"{prefix}x", b"v")
    response = api.delete(f"/v1/kv/{prefix}x?recurse&cas=1")
    assert response.status_code == 400
    assert response.text.startswith("Conflicting flags:")
    assert api.kv_entry(f"{prefix}x") is not None


def test_fact16_empty_key_is_missing_key_name(api: Api) -> None:
    """Fact 16 [agent/kvs_endpoint.go :: KVSGet/KVSPut/KVSDelete]: GET, PUT and DELETE of
    /v1/kv/ without recurse -> 400 'Missing key name'."""
    for method in ("GET", "PUT", "DELETE"):
        response = api.request(method, "/v1/kv/", b"v" if method == "PUT" else None)
        assert response.status_code == 400, method
        assert response.text.strip() == "Missing key name", method


def test_fact17_missing_prefix_keys_and_recurse_are_404(api: Api, prefix: str) -> None:
    """Fact 17 (the non-root half) [agent/kvs_endpoint.go :: KVSGetKeys, KVSGet]: ?keys and
    ?recurse on a prefix with no keys -> 404.  The empty-store root case is in
    test_fresh_agent.py."""
    assert api.get(f"/v1/kv/{prefix}nope/?keys").status_code == 404
    assert api.get(f"/v1/kv/{prefix}nope/?recurse").status_code == 404


def test_fact18_keys_with_separator(api: Api, prefix: str) -> None:
    """Fact 18 [agent/consul/kvs_endpoint.go :: KVS.ListKeys; py:tests/test_std.py ::
    test_kv_keys_only]: keys bar, base/foo, base/base/foo; ?keys&separator=/ under base/ ->
    [base/base/, base/foo]."""
    for key in ("bar", "base/foo", "base/base/foo"):
        api.kv_put(f"{prefix}{key}", b"v")
    response = api.get(f"/v1/kv/{prefix}base/?keys&separator=/")
    assert response.status_code == 200
    assert response.json() == [f"{prefix}base/base/", f"{prefix}base/foo"]


def test_keys_without_separator_lists_all_sorted(api: Api, prefix: str) -> None:
    """Section 2.2 [KVS.ListKeys]: ?keys returns every key under the prefix, in byte order."""
    for key in ("b", "a/x", "a"):
        api.kv_put(f"{prefix}{key}", b"v")
    response = api.get(f"/v1/kv/{prefix}?keys")
    assert response.json() == [f"{prefix}a", f"{prefix}a/x", f"{prefix}b"]


def test_misspelt_seperator_is_accepted(api: Api, prefix: str) -> None:
    """Section 2.2 [agent/kvs_endpoint.go :: KVSGetKeys]: ``seperator`` works like
    ``separator``, and ``separator`` wins when both are given."""
    for key in ("base/foo", "base/base/foo"):
        api.kv_put(f"{prefix}{key}", b"v")
    expected = [f"{prefix}base/base/", f"{prefix}base/foo"]
    assert api.get(f"/v1/kv/{prefix}base/?keys&seperator=/").json() == expected
    assert api.get(f"/v1/kv/{prefix}base/?keys&separator=/&seperator=x").json() == expected


def test_fact19_recurse_is_sorted_and_a_presence_flag(api: Api, prefix: str) -> None:
    """Fact 19 [agent/kvs_endpoint.go :: KVSGet; kvs_ce.go :: kvsListEntriesTxn]: recurse
    returns keys in byte order (foo matches foo1..3); recurse=false also recurses."""
    for key in ("foo3", "foo1", "foo2"):
        api.kv_put(f"{prefix}{key}", key.encode())
    expected = [f"{prefix}foo1", f"{prefix}foo2", f"{prefix}foo3"]
    for query in ("?recurse", "?recurse=false"):
        response = api.get(f"/v1/kv/{prefix}foo{query}")
        assert response.status_code == 200, query
        assert [e["Key"] for e in response.json()] == expected, query


def test_recurse_index_is_max_modify_index(api: Api, prefix: str) -> None:
    """Section 2.2 [agent/consul/state/kvs.go :: kvsListTxn]: the recurse X-Consul-Index is
    the highest ModifyIndex among the returned entries (no other writes under the prefix)."""
    for key in ("r1", "r2"):
        api.kv_put(f"{prefix}{key}", b"v")
    api.kv_put(f"{prefix}r1", b"changed")
    response = api.get(f"/v1/kv/{prefix}r?recurse")
    assert index_of(response) == max(e["ModifyIndex"] for e in response.json())


def test_delete_leaves_a_tombstone_so_index_does_not_go_back(api: Api, prefix: str) -> None:
    """Section 2.5/5.3 [agent/consul/state/kvs.go :: kvsDeleteTxn tombstones; kvsListTxn]:
    after deleting the newest key under a prefix, the prefix's index does not move back."""
    api.kv_put(f"{prefix}t/a", b"v")
    api.kv_put(f"{prefix}t/b", b"v")
    before = index_of(api.get(f"/v1/kv/{prefix}t/?recurse"))
    api.delete(f"/v1/kv/{prefix}t/b")
    after = api.get(f"/v1/kv/{prefix}t/?recurse")
    assert [e["Key"] for e in after.json()] == [f"{prefix}t/a"]
    assert index_of(after) > before


def test_fact21_non_numeric_flags_is_500(api: Api, prefix: str) -> None:
    """Fact 21 [agent/kvs_endpoint.go :: KVSPut (raw strconv error); agent/http.go ::
    handleErr]: flags=abc -> 500 with Go's ParseUint error text."""
    response = api.put(f"/v1/kv/{prefix}a?flags=abc", b"v")
    assert response.status_code == 500
    assert response.text.strip() == 'strconv.ParseUint: parsing "abc": invalid syntax'
    assert api.kv_entry(f"{prefix}a") is None


def test_fact21_non_numeric_cas_is_500(api: Api, prefix: str) -> None:
    """Section 2.3 [KVSPut] (code reading): cas=abc -> 500 with the ParseUint error."""
    response = api.put(f"/v1/kv/{prefix}a?cas=abc", b"v")
    assert response.status_code == 500
    assert response.text.strip() == 'strconv.ParseUint: parsing "abc": invalid syntax'


def test_fact22_body_over_512kib_is_413(api: Api, prefix: str) -> None:
    """Fact 22 [agent/kvs_endpoint.go :: KVSPut; agent/config/default.go kv_max_value_size]:
    a 524289-byte body -> 413 'Request body(524289 bytes) too large, max size: 524288
    bytes. ...'; nothing is stored."""
    response = api.put(f"/v1/kv/{prefix}big", b"x" * 524289)
    assert response.status_code == 413
    assert response.text.startswith("Request body(524289 bytes) too large, max size: 524288 bytes.")
    assert api.kv_entry(f"{prefix}big") is None


def test_fact22_body_of_exactly_512kib_is_accepted(api: Api, prefix: str) -> None:
    """Section 2.3 [KVSPut checks Content-Length > kv_max_value_size]: exactly 524288 bytes
    is not too large."""
    value = bytes(range(256)) * 2048
    assert api.kv_put(f"{prefix}big", value) is True
    assert api.get(f"/v1/kv/{prefix}big?raw").content == value


def test_keys_are_case_sensitive_and_binary_values_round_trip(api: Api, prefix: str) -> None:
    """Section 2 [agent/consul/state/kvs.go :: indexFromIDValue; DirEntry Value []byte]:
    keys differing only in case are different keys; arbitrary bytes survive base64."""
    value = bytes(range(256))
    api.kv_put(f"{prefix}Key", value)
    api.kv_put(f"{prefix}key", b"lower")
    assert api.kv_entry(f"{prefix}Key")["Value"] == b64(value)
    assert api.kv_entry(f"{prefix}key")["Value"] == b64("lower")
