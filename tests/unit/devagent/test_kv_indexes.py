"""KV writes, tombstones and the indexes blocking queries rely on."""

from __future__ import annotations

from elect_helpers.devagent.state import DevState


def get(state: DevState, key: str):  # type: ignore[no-untyped-def]
    with state.store.lock:
        return state.kv.get(key)


def listing(state: DevState, prefix: str):  # type: ignore[no-untyped-def]
    with state.store.lock:
        return state.kv.list(prefix)


def test_plain_set_keeps_create_index_and_skips_identical_writes(state: DevState) -> None:
    state.kv_set("a", b"1", 0)
    first = get(state, "a").value
    index_before = state.store.index
    state.kv_set("a", b"1", 0)
    assert get(state, "a").value.modify_index == first.modify_index
    assert state.store.index == index_before
    state.kv_set("a", b"2", 5)
    second = get(state, "a").value
    assert second.create_index == first.create_index
    assert second.modify_index > first.modify_index
    state.kv_set("a", b"2", 0)
    assert get(state, "a").value.flags == 0


def test_empty_value_is_none(state: DevState) -> None:
    state.kv_set("e", None, 0)
    assert get(state, "e").value.value is None


def test_cas_rules(state: DevState) -> None:
    assert state.kv_cas("c", b"x", 0, 0) is True
    assert state.kv_cas("c", b"y", 0, 0) is False
    assert state.kv_cas("missing", b"y", 0, 5) is False
    assert get(state, "missing").value is None
    current = get(state, "c").value.modify_index
    assert state.kv_cas("c", b"y", 0, current - 1) is False
    assert state.kv_cas("c", b"y", 0, current) is True


def test_delete_cas_rules(state: DevState) -> None:
    state.kv_set("d", b"x", 0)
    current = get(state, "d").value.modify_index
    assert state.kv_delete_cas("d", current - 1) is False
    assert state.kv_delete_cas("d", 0) is False
    assert state.kv_delete_cas("d", current) is True
    assert state.kv_delete_cas("d", 12345) is True


def test_missing_key_reports_the_table_max_index(state: DevState) -> None:
    state.kv_set("a", b"1", 0)
    state.kv_delete("a")
    result = get(state, "a")
    assert result.value is None
    assert result.index == state.store.index


def test_tombstones_keep_list_indexes_from_going_backwards(state: DevState) -> None:
    state.kv_set("p/a", b"1", 0)
    state.kv_set("p/b", b"1", 0)
    before = listing(state, "p/").index
    state.kv_delete("p/b")
    after = listing(state, "p/")
    assert [e.key for e in after.value] == ["p/a"]
    assert after.index > before
    state.kv_set("other", b"1", 0)
    assert listing(state, "p/").index == after.index


def test_delete_tree_leaves_one_tombstone_for_the_prefix(state: DevState) -> None:
    for key in ("t/a", "t/b", "u"):
        state.kv_set(key, b"1", 0)
    state.kv_delete_tree("t/")
    result = listing(state, "t/")
    assert result.value == []
    assert result.index == state.store.index
    assert [e.key for e in listing(state, "").value] == ["u"]


def test_deleting_a_missing_key_changes_no_index(state: DevState) -> None:
    state.kv_set("a", b"1", 0)
    index = state.store.index
    assert state.kv_delete("nope") is True
    assert state.store.index == index


def test_list_is_byte_ordered_prefix_match(state: DevState) -> None:
    for key in ("foo3", "foo1", "foo/bar", "foo2", "fo"):
        state.kv_set(key, b"", 0)
    assert [e.key for e in listing(state, "foo").value] == ["foo/bar", "foo1", "foo2", "foo3"]


def test_keys_with_separator(state: DevState) -> None:
    for key in ("bar", "base/foo", "base/base/foo", "base/base/x"):
        state.kv_set(key, b"", 0)
    with state.store.lock:
        assert state.kv.list_keys("base/", "/").value == ["base/base/", "base/foo"]
        assert state.kv.list_keys("", "/").value == ["bar", "base/"]
        assert state.kv.list_keys("nope/", "").value == []


def test_global_index_is_monotonic_across_tables(state: DevState) -> None:
    seen = [state.store.index]
    state.kv_set("a", b"1", 0)
    seen.append(state.store.index)
    state.kv_delete("a")
    seen.append(state.store.index)
    state.kv_set("a", b"1", 0)
    seen.append(state.store.index)
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
