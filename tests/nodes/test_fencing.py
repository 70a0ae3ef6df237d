"""The fenced resource: token ordering in the store, and the HTTP server nodes write to."""

import json
import threading
import urllib.error
import urllib.request

import pytest

from elect_helpers.errors import ResourceError
from elect_helpers.fencing import FencedStore, ResourceServer, write_resource


def test_fenced_store_rejects_a_lower_token_and_accepts_equal_or_higher():
    store = FencedStore()
    assert store.write(5, "a", "n1").accepted
    assert store.write(5, "b", "n1").accepted  # the same leader writes again
    late = store.write(3, "stale", "n2")
    assert not late.accepted and late.stale and late.highest_before == 5
    assert store.write(9, "c", "n3").accepted
    assert store.value == "c"
    assert store.highest_token == 9
    assert [r.value for r in store.rejected()] == ["stale"]


def test_unfenced_store_accepts_a_stale_write_but_marks_it():
    store = FencedStore(fenced=False)
    store.write(7, "new", "n2")
    late = store.write(4, "old", "n1")
    assert late.accepted and late.stale
    assert store.value == "old"
    assert [r.writer for r in store.stale_accepted()] == ["n1"]


def test_store_refuses_a_token_that_is_not_an_int():
    with pytest.raises(TypeError, match="fencing token must be an int"):
        FencedStore().write("7", "x")  # type: ignore[arg-type]


def test_resource_server_fences_over_http_and_serves_history():
    with ResourceServer() as server:
        assert write_resource(server.fenced_url, 10, "n1", "v1").accepted
        outcome = write_resource(server.fenced_url, 2, "n2", "v2")
        assert not outcome.accepted and outcome.highest_before == 10
        assert write_resource(server.unfenced_url, 10, "n1").accepted
        assert write_resource(server.unfenced_url, 2, "n2").stale
        with urllib.request.urlopen(server.fenced_url) as response:
            history = json.loads(response.read())
        assert [(h["writer"], h["accepted"]) for h in history] == [("n1", True), ("n2", False)]
        assert len(server.unfenced.stale_accepted()) == 1


def test_bad_writes_and_unreachable_resource_raise_resource_error():
    with ResourceServer() as server:
        with pytest.raises(ResourceError, match=r"answered 404.*use /fenced"):
            write_resource(server.url + "/nowhere", 1, "n1")
        bad = urllib.request.Request(server.fenced_url, data=b'{"token": "x"}', method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(bad)
        assert info.value.code == 400
        url = server.fenced_url
    with pytest.raises(ResourceError, match="cannot write"):
        write_resource(url, 1, "n1", timeout=1)


def test_wait_for_returns_a_matching_write_from_another_thread_or_times_out():
    store = FencedStore()
    timer = threading.Timer(0.05, store.write, args=(3, "late", "n2"))
    timer.start()
    record = store.wait_for(lambda r: r.writer == "n2", timeout=5)
    assert record.value == "late"
    with pytest.raises(TimeoutError, match="no matching write"):
        store.wait_for(lambda r: r.writer == "nobody", timeout=0.05)
