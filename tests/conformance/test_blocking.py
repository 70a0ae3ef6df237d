"""Blocking queries: checkable facts 55-57, 82, 83 and section 5 on every blocking endpoint
(KV, session info/list/node, health/service, catalog/services), plus many concurrent waits.

A blocking query that returns before its wait is over must report a newer index: that is
the rule on any agent, shared or not.  Where the suite owns the data (its own keys) it also
insists that nothing woke the query at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .conftest import Registrations, Sessions
from .support import Api, b64, index_of

JITTER = 1 / 16  # structs.JitterFraction: the wait may grow by up to 6.25%
OVERHEAD = 0.75  # generous allowance for a busy machine


class Background:
    """Runs one request on a thread so a test can act while it is waiting."""

    def __init__(self, call: Callable[[], requests.Response]) -> None:
        self._call = call
        self.response: requests.Response | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.response = self._call()
        except BaseException as error:  # re-raised by result()
            self.error = error

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()

    def result(self, timeout: float) -> requests.Response:
        """Wait for the request to finish and return its response (or raise its error)."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"blocking query still waiting after {timeout}s"
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


start = Background


def timed_get(api: Api, path: str) -> tuple[requests.Response, float]:
    began = time.monotonic()
    response = api.get(path, timeout=60)
    return response, time.monotonic() - began


def assert_timed_out_or_changed(
    response: requests.Response, elapsed: float, wait: float, index: int
) -> None:
    """A blocking query either ran its whole wait (with jitter) or saw a newer index."""
    assert response.status_code == 200, response.text
    new_index = index_of(response)
    if new_index <= index:
        assert elapsed >= wait * 0.98, f"returned after {elapsed:.3f}s with an unchanged index"
    assert elapsed <= wait * (1 + JITTER) + OVERHEAD, f"took {elapsed:.3f}s for wait {wait}s"


# --- KV ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_fact55_wait_expires_with_same_index(api: Api, prefix: str) -> None:
    """Fact 55 [agent/blockingquery/blockingquery.go :: Query; agent/consul/rpc.go ::
    RPCQueryTimeout (JitterFraction 16)]: index=I&wait=1s with no writes returns 200 after
    >= 1s and <= ~1.0625s (+overhead) with X-Consul-Index == I."""
    api.kv_put(f"{prefix}a", b"v")
    index = index_of(api.get(f"/v1/kv/{prefix}a"))
    response, elapsed = timed_get(api, f"/v1/kv/{prefix}a?index={index}&wait=1s")
    assert response.status_code == 200
    assert index_of(response) == index
    assert 1.0 * 0.98 <= elapsed <= 1.0 * (1 + JITTER) + OVERHEAD
    assert response.json()[0]["Value"] == b64("v")


def test_fact56_write_wakes_blocking_get(api: Api, prefix: str) -> None:
    """Fact 56 [blockingquery.Query]: a PUT of a new value wakes index=I&wait=30s well
    before 30s, with X-Consul-Index > I and the new value."""
    api.kv_put(f"{prefix}a", b"old")
    index = index_of(api.get(f"/v1/kv/{prefix}a"))
    waiter = start(lambda: api.get(f"/v1/kv/{prefix}a?index={index}&wait=30s", timeout=60))
    time.sleep(0.2)
    assert not waiter.done, "returned without a change"
    api.kv_put(f"{prefix}a", b"new")
    response = waiter.result(timeout=10)
    assert response.status_code == 200
    assert index_of(response) > index
    assert response.json()[0]["Value"] == b64("new")


def test_blocking_get_of_missing_key_wakes_on_create(api: Api, prefix: str) -> None:
    """Section 5.3 [KVS.Get index for a missing key = kvs/tombstones table max]: a blocking
    GET of a missing key returns 404 at first, then wakes with 200 when the key is created."""
    first = api.get(f"/v1/kv/{prefix}later")
    assert first.status_code == 404
    index = index_of(first)
    waiter = start(lambda: api.get(f"/v1/kv/{prefix}later?index={index}&wait=30s", timeout=60))
    api.kv_put(f"{prefix}later", b"here")
    response = waiter.result(timeout=10)
    if response.status_code == 404:  # woken by some other key on a shared agent: ask again
        response = api.get(f"/v1/kv/{prefix}later?index={index}&wait=30s", timeout=60)
    assert response.status_code == 200
    assert index_of(response) > index
    assert response.json()[0]["Value"] == b64("here")


def test_blocking_recurse_wakes_on_delete(api: Api, prefix: str) -> None:
    """Section 5.3 [kvsListTxn counts tombstones]: a blocking ?recurse wakes when a key under
    the prefix is deleted, with a higher index."""
    api.kv_put(f"{prefix}d/a", b"v")
    api.kv_put(f"{prefix}d/b", b"v")
    index = index_of(api.get(f"/v1/kv/{prefix}d/?recurse"))
    waiter = start(lambda: api.get(f"/v1/kv/{prefix}d/?recurse&index={index}&wait=30s"))
    api.delete(f"/v1/kv/{prefix}d/b")
    response = waiter.result(timeout=10)
    assert index_of(response) > index
    assert [e["Key"] for e in response.json()] == [f"{prefix}d/a"]


def test_index_zero_or_no_index_does_not_block(api: Api, prefix: str) -> None:
    """Section 5.1 [blockingquery.Query: minQueryIndex == 0 runs once]: wait without index,
    or with index=0, returns at once."""
    api.kv_put(f"{prefix}a", b"v")
    for query in ("?wait=5s", "?index=0&wait=5s"):
        response, elapsed = timed_get(api, f"/v1/kv/{prefix}a{query}")
        assert response.status_code == 200, query
        assert elapsed < 2.0, query


def test_lower_index_returns_immediately(api: Api, prefix: str) -> None:
    """Section 5.3: an index below the entry's returns at once with the current index."""
    api.kv_put(f"{prefix}a", b"v")
    index = index_of(api.get(f"/v1/kv/{prefix}a"))
    response, elapsed = timed_get(api, f"/v1/kv/{prefix}a?index={index - 1}&wait=10s")
    assert index_of(response) == index
    assert elapsed < 2.0


def test_fact57_bad_wait_and_index(api: Api, prefix: str) -> None:
    """Fact 57 [agent/http.go :: parseWait]: wait=abc -> 400 'Invalid wait time'; index=abc
    -> 400 'Invalid index'; also a wait without unit and a negative index."""
    api.kv_put(f"{prefix}a", b"v")
    cases = {
        "?index=5&wait=abc": "Invalid wait time",
        "?index=5&wait=10": "Invalid wait time",
        "?index=abc": "Invalid index",
        "?index=-1": "Invalid index",
    }
    for query, text in cases.items():
        response = api.get(f"/v1/kv/{prefix}a{query}")
        assert response.status_code == 400, query
        assert response.text.strip() == text, query


def test_bad_index_on_kv_put_and_delete_is_400(api: Api, prefix: str) -> None:
    """Section 1.4 (code reading) [agent/kvs_endpoint.go :: KVSEndpoint parses before the
    method switch]: a malformed index/wait gives 400 even on PUT and DELETE, and nothing is
    written."""
    response = api.put(f"/v1/kv/{prefix}a?index=abc", b"v")
    assert response.status_code == 400
    assert response.text.strip() == "Invalid index"
    assert api.kv_entry(f"{prefix}a") is None
    api.kv_put(f"{prefix}b", b"v")
    response = api.delete(f"/v1/kv/{prefix}b?wait=abc")
    assert response.status_code == 400
    assert response.text.strip() == "Invalid wait time"
    assert api.kv_entry(f"{prefix}b") is not None


@pytest.mark.slow
def test_fact82_zero_wait_means_default_not_zero(api: Api, prefix: str) -> None:
    """Fact 82 [agent/consul/rpc.go :: RPCQueryTimeout (queryTimeout <= 0 -> 300s)]: wait=0s
    blocks (for the 300s default); it has not returned after 1.5s, and a write wakes it."""
    api.kv_put(f"{prefix}a", b"v")
    index = index_of(api.get(f"/v1/kv/{prefix}a"))
    waiter = start(lambda: api.get(f"/v1/kv/{prefix}a?index={index}&wait=0s", timeout=400))
    time.sleep(1.5)
    assert not waiter.done, "wait=0s returned without a change"
    api.kv_put(f"{prefix}a", b"wake")
    response = waiter.result(timeout=10)
    assert index_of(response) > index
    assert response.json()[0]["Value"] == b64("wake")


@pytest.mark.slow
def test_fact83_future_index_waits_and_reports_lower(api: Api, prefix: str) -> None:
    """Fact 83 [agent/blockingquery/blockingquery.go :: Query]: index=<current+1000>&wait=1s
    returns after about 1s with an X-Consul-Index lower than the one requested."""
    api.kv_put(f"{prefix}a", b"v")
    index = index_of(api.get(f"/v1/kv/{prefix}a"))
    requested = index + 1000
    response, elapsed = timed_get(api, f"/v1/kv/{prefix}a?index={requested}&wait=1s")
    assert response.status_code == 200
    assert index_of(response) < requested
    assert 0.98 <= elapsed <= 1.0 * (1 + JITTER) + OVERHEAD


# --- sessions ---------------------------------------------------------------------------


@pytest.mark.slow
def test_session_info_blocks_until_timeout(api: Api, sessions: Sessions) -> None:
    """Section 3.4/5 [SessionGet supports blocking]: info/<S>?index=I&wait=0.5s without a
    change returns after the wait with the current index (or earlier with a newer one)."""
    session_id = sessions.create()
    index = index_of(api.get(f"/v1/session/info/{session_id}"))
    response, elapsed = timed_get(api, f"/v1/session/info/{session_id}?index={index}&wait=500ms")
    assert_timed_out_or_changed(response, elapsed, 0.5, index)
    assert response.json()[0]["ID"] == session_id


def test_session_info_wakes_on_destroy(api: Api, sessions: Sessions) -> None:
    """Section 3.4/5 [SessionGet]: destroying the session wakes a blocking info with a
    higher index and an empty list."""
    session_id = sessions.create()
    index = index_of(api.get(f"/v1/session/info/{session_id}"))
    waiter = start(lambda: api.get(f"/v1/session/info/{session_id}?index={index}&wait=30s"))
    api.put(f"/v1/session/destroy/{session_id}")
    response = waiter.result(timeout=10)
    assert index_of(response) > index
    assert response.json() == []


def test_session_list_wakes_on_create(api: Api, sessions: Sessions) -> None:
    """Section 3.4/5 [SessionList]: creating a session wakes a blocking list, which then
    contains it."""
    index = index_of(api.get("/v1/session/list"))
    waiter = start(lambda: api.get(f"/v1/session/list?index={index}&wait=30s"))
    session_id = sessions.create({"Name": "wakes-list"})
    response = waiter.result(timeout=10)
    assert index_of(response) > index
    if session_id not in [s["ID"] for s in response.json()]:  # shared agent: woken earlier
        response = api.get("/v1/session/list")
    assert session_id in [s["ID"] for s in response.json()]


def test_session_node_wakes_on_create(api: Api, sessions: Sessions, node: str) -> None:
    """Section 3.4/5 [SessionsForNode]: creating a session on NODE wakes a blocking
    node/<NODE> query."""
    index = index_of(api.get(f"/v1/session/node/{node}"))
    waiter = start(lambda: api.get(f"/v1/session/node/{node}?index={index}&wait=30s"))
    session_id = sessions.create()
    response = waiter.result(timeout=10)
    assert index_of(response) > index
    if session_id not in [s["ID"] for s in response.json()]:
        response = api.get(f"/v1/session/node/{node}")
    assert session_id in [s["ID"] for s in response.json()]


@pytest.mark.slow
def test_session_list_and_node_block_until_timeout(api: Api, node: str) -> None:
    """Section 5.2 [blocking timeout returns the current data and index]: list and node
    queries without changes return after their wait (run side by side)."""
    paths = ["/v1/session/list", f"/v1/session/node/{node}"]
    indexes = [index_of(api.get(p)) for p in paths]
    with ThreadPoolExecutor(len(paths)) as pool:
        results = list(
            pool.map(lambda p, i: timed_get(api, f"{p}?index={i}&wait=500ms"), paths, indexes)
        )
    for (response, elapsed), index in zip(results, indexes, strict=True):
        assert_timed_out_or_changed(response, elapsed, 0.5, index)


# --- health and catalog -----------------------------------------------------------------


def test_health_service_wakes_on_check_change(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """Section 5.3/7 [healthServiceNodes supports blocking]: passing the service's check
    wakes a blocking /v1/health/service/<svc> with a higher index and the new status."""
    service = f"web-{uid}"
    registrations.service({"Name": service, "Check": {"TTL": "30s"}})
    index = index_of(api.get(f"/v1/health/service/{service}"))
    waiter = start(lambda: api.get(f"/v1/health/service/{service}?index={index}&wait=30s"))
    time.sleep(0.2)
    api.put(f"/v1/agent/check/pass/service:{service}")
    response = waiter.result(timeout=10)
    assert index_of(response) > index

    def service_status(entries: list[dict]) -> str:
        return {c["CheckID"]: c["Status"] for c in entries[0]["Checks"]}[f"service:{service}"]

    if service_status(response.json()) != "passing":  # an earlier wake-up on a shared agent
        response = api.get(f"/v1/health/service/{service}")
    assert service_status(response.json()) == "passing"


def test_health_service_wakes_on_register(api: Api, uid: str, registrations: Registrations) -> None:
    """Section 5.3: a blocking query on a not-yet-registered service ([]) wakes when it is
    registered."""
    service = f"web-{uid}"
    index = index_of(api.get(f"/v1/health/service/{service}"))
    waiter = start(lambda: api.get(f"/v1/health/service/{service}?index={index}&wait=30s"))
    time.sleep(0.2)
    registrations.service({"Name": service})
    response = waiter.result(timeout=10)
    assert index_of(response) > index
    if response.json() == []:
        response = api.get(f"/v1/health/service/{service}")
    assert [e["Service"]["ID"] for e in response.json()] == [service]


@pytest.mark.slow
def test_health_service_blocks_until_timeout(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """Section 5.2/5.4: without changes a blocking health query returns after its wait with
    the same data.  With the streaming backend the index may differ from the RPC index
    (section 12), so only 'not newer' is required when it ran the full wait."""
    service = f"web-{uid}"
    registrations.service({"Name": service, "Check": {"TTL": "30s", "Status": "passing"}})
    plain = api.get(f"/v1/health/service/{service}")
    index = index_of(plain)
    response, elapsed = timed_get(api, f"/v1/health/service/{service}?index={index}&wait=500ms")
    assert_timed_out_or_changed(response, elapsed, 0.5, index)
    assert [e["Service"]["ID"] for e in response.json()] == [service]


def test_catalog_services_wakes_on_register(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """Section 5.3/7 [CatalogServices supports blocking]: registering a service wakes a
    blocking /v1/catalog/services, whose answer then lists it."""
    service = f"web-{uid}"
    index = index_of(api.get("/v1/catalog/services"))
    waiter = start(lambda: api.get(f"/v1/catalog/services?index={index}&wait=30s"))
    time.sleep(0.2)
    registrations.service({"Name": service, "Tags": ["t1"]})
    response = waiter.result(timeout=10)
    assert index_of(response) > index
    if service not in response.json():
        response = api.get("/v1/catalog/services")
    assert response.json()[service] == ["t1"]


@pytest.mark.slow
def test_catalog_services_blocks_until_timeout(api: Api) -> None:
    """Section 5.2: a blocking /v1/catalog/services without changes returns after the wait
    with the current index."""
    index = index_of(api.get("/v1/catalog/services"))
    response, elapsed = timed_get(api, f"/v1/catalog/services?index={index}&wait=500ms")
    assert_timed_out_or_changed(response, elapsed, 0.5, index)
    assert "consul" in response.json()


def test_bad_wait_on_other_blocking_endpoints(api: Api, node: str) -> None:
    """Section 5.1 [agent/http.go :: parseWait runs in s.parse for every blocking read]:
    session, health and catalog reads reject a bad wait/index with 400 too."""
    for path in (
        "/v1/session/list",
        f"/v1/session/node/{node}",
        "/v1/health/service/consul",
        "/v1/catalog/services",
    ):
        response = api.get(f"{path}?index=abc")
        assert response.status_code == 400, path
        assert response.text.strip() == "Invalid index", path
        response = api.get(f"{path}?index=1&wait=soon")
        assert response.status_code == 400, path
        assert response.text.strip() == "Invalid wait time", path


# --- many waiters -----------------------------------------------------------------------


@pytest.mark.slow
def test_sixty_blocking_queries_do_not_starve_other_requests(
    api: Api, prefix: str, sessions: Sessions
) -> None:
    """Issue 2 ('many concurrent blocking queries must not starve other requests') and
    section 5.3: 60 blocking GETs on 3 keys are held while 30 ordinary requests are each
    answered quickly; then writing the keys wakes all 60 with higher indexes."""
    keys = [f"{prefix}w{i}" for i in range(3)]
    indexes = {}
    for key in keys:
        api.kv_put(key, b"before")
        indexes[key] = index_of(api.get(f"/v1/kv/{key}"))
    waiters = [
        start(lambda key=key: api.get(f"/v1/kv/{key}?index={indexes[key]}&wait=60s", timeout=120))
        for key in (keys[i % 3] for i in range(60))
    ]
    time.sleep(0.3)
    slowest = 0.0
    for i in range(10):
        for call in (
            lambda i=i: api.kv_put(f"{prefix}busy{i}", b"x"),
            lambda i=i: api.get(f"/v1/kv/{prefix}busy{i}"),
            lambda: api.get("/v1/status/leader"),
        ):
            began = time.monotonic()
            call()
            slowest = max(slowest, time.monotonic() - began)
    session_id = sessions.create()
    assert api.session_info(session_id) is not None
    assert slowest < 1.0, f"an ordinary request took {slowest:.2f}s while 60 queries waited"
    assert not any(w.done for w in waiters), "a blocking query returned without a change"
    for key in keys:
        api.kv_put(key, b"after")
    for waiter in waiters:
        response = waiter.result(timeout=15)
        assert response.status_code == 200
        assert response.json()[0]["Value"] == b64("after")
        assert index_of(response) > min(indexes.values())
