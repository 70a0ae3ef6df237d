"""python-consul2 against the agent: the calls the tutorial makes, through the library itself
(consul-facts.md section 10).  python-consul2 asserts ttl >= 10 for session.create, so
sessions here use ttl=10 or none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import consul
import pytest

from .conftest import HealthTarget, Registrations, Sessions
from .support import wait_for


def test_kv_put_get_delete(client: consul.Consul, prefix: str) -> None:
    """Section 10.2 [py:consul/base.py :: KV.put/get/delete]: put returns True; get returns
    (index string, dict) with Value as bytes; a missing key gives (index, None); delete
    returns True."""
    assert client.kv.put(f"{prefix}a", b"bar") is True
    index, entry = client.kv.get(f"{prefix}a")
    assert isinstance(index, str)
    assert int(index) == entry["ModifyIndex"]
    assert entry["Value"] == b"bar"
    assert entry["Key"] == f"{prefix}a"
    assert client.kv.delete(f"{prefix}a") is True
    index, entry = client.kv.get(f"{prefix}a")
    assert entry is None
    assert int(index) >= 1


def test_kv_empty_value_recurse_and_keys(client: consul.Consul, prefix: str) -> None:
    """Section 10.2 / fact 6, 18 [py:tests/test_std.py :: test_kv_encoding, test_kv_keys_only]:
    an empty value comes back as None; recurse lists entries in key order; keys with a
    separator lists the next level."""
    client.kv.put(f"{prefix}e", None)
    assert client.kv.get(f"{prefix}e")[1]["Value"] is None
    for key in ("bar", "base/foo", "base/base/foo"):
        client.kv.put(f"{prefix}{key}", key)
    _, entries = client.kv.get(f"{prefix}ba", recurse=True)
    assert [e["Key"] for e in entries] == [
        f"{prefix}bar",
        f"{prefix}base/base/foo",
        f"{prefix}base/foo",
    ]
    _, keys = client.kv.get(f"{prefix}base/", keys=True, separator="/")
    assert keys == [f"{prefix}base/base/", f"{prefix}base/foo"]


def test_kv_cas_and_flags(client: consul.Consul, prefix: str) -> None:
    """Section 10.2 / facts 7, 8, 10: cas=0 creates only; cas=ModifyIndex updates; flags are
    stored."""
    assert client.kv.put(f"{prefix}c", b"1", cas=0) is True
    assert client.kv.put(f"{prefix}c", b"2", cas=0) is False
    _, entry = client.kv.get(f"{prefix}c")
    assert client.kv.put(f"{prefix}c", b"3", cas=entry["ModifyIndex"], flags=7) is True
    _, entry = client.kv.get(f"{prefix}c")
    assert entry["Value"] == b"3"
    assert entry["Flags"] == 7


def test_sessions_create_info_renew_destroy(
    client: consul.Consul, sessions: Sessions, node: str
) -> None:
    """Section 10.3 [py:consul/base.py :: Session.*]: create (lower-case JSON keys) -> id;
    info shows the given name, behavior, ttl and lock_delay; renew returns the session; list
    and node include it; destroy returns True and info is None afterwards; renewing it then
    raises consul.NotFound."""
    session_id = sessions.track(
        client.session.create(name="py-c2", behavior="delete", ttl=10, lock_delay=1)
    )
    _, info = client.session.info(session_id)
    assert info["Name"] == "py-c2"
    assert info["Behavior"] == "delete"
    assert info["TTL"] == "10s"
    assert info["LockDelay"] == 1000000000
    assert info["Node"] == node
    renewed = client.session.renew(session_id)
    assert renewed["ID"] == session_id
    assert renewed["TTL"] == "10s"
    _, listed = client.session.list()
    assert session_id in [s["ID"] for s in listed]
    _, on_node = client.session.node(node)
    assert session_id in [s["ID"] for s in on_node]
    assert client.session.destroy(session_id) is True
    assert client.session.info(session_id)[1] is None
    with pytest.raises(consul.NotFound):
        client.session.renew(session_id)


def test_session_errors_raise(client: consul.Consul, uid: str) -> None:
    """Section 10.1/10.3 [py:consul/base.py :: CB._status; fact 47]: a 500 from the agent
    (unknown node) raises ConsulException carrying the agent's text."""
    with pytest.raises(consul.ConsulException, match="Missing node registration"):
        client.session.create(node=f"no-such-node-{uid}")


def test_acquire_release(client: consul.Consul, prefix: str, sessions: Sessions) -> None:
    """Facts 25, 27, 29 through python-consul2 [py:tests/test_std.py ::
    test_kv_acquire_release]: acquire True; another session False; release True; the other
    session then acquires; an unknown session raises ConsulException (500)."""
    s1 = sessions.track(client.session.create())
    s2 = sessions.track(client.session.create())
    key = f"{prefix}lock"
    assert client.kv.put(key, b"one", acquire=s1) is True
    assert client.kv.put(key, b"two", acquire=s2) is False
    _, entry = client.kv.get(key)
    assert entry["Session"] == s1
    assert entry["LockIndex"] == 1
    assert client.kv.put(key, b"free", release=s1) is True
    _, entry = client.kv.get(key)
    assert "Session" not in entry
    assert client.kv.put(key, b"two", acquire=s2) is True
    assert client.kv.get(key)[1]["LockIndex"] == 2
    with pytest.raises(consul.ConsulException, match="invalid session"):
        client.kv.put(key, b"x", acquire="11111111-1111-1111-1111-111111111111")


def test_lock_released_when_session_destroyed(
    client: consul.Consul, prefix: str, sessions: Sessions
) -> None:
    """Section 3.6 through the client: destroying the holder (lock_delay=0) clears the lock;
    with behavior=delete the key disappears."""
    releasing = sessions.track(client.session.create(lock_delay=0))
    deleting = sessions.track(client.session.create(lock_delay=0, behavior="delete"))
    client.kv.put(f"{prefix}r", b"v", acquire=releasing)
    client.kv.put(f"{prefix}d", b"v", acquire=deleting)
    client.session.destroy(releasing)
    client.session.destroy(deleting)
    assert "Session" not in client.kv.get(f"{prefix}r")[1]
    assert client.kv.get(f"{prefix}d")[1] is None


def test_blocking_get_woken_by_put(
    client: consul.Consul, make_client: Callable[[], consul.Consul], prefix: str
) -> None:
    """Fact 56 through python-consul2 [py:consul/base.py :: KV.get index/wait]: kv.get(key,
    index=I) blocks until a put changes the key, then returns a higher index and the new
    value."""
    key = f"{prefix}watched"
    client.kv.put(key, b"old")
    index, _ = client.kv.get(key)
    result: dict = {}

    def watch() -> None:
        result["answer"] = make_client().kv.get(key, index=index, wait="30s")

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive(), "kv.get(index=...) returned without a change"
    client.kv.put(key, b"new")
    thread.join(10)
    assert not thread.is_alive()
    new_index, entry = result["answer"]
    assert int(new_index) > int(index)
    assert entry["Value"] == b"new"


def test_service_with_http_and_ttl_checks(
    client: consul.Consul,
    uid: str,
    registrations: Registrations,
    health_target: HealthTarget,
) -> None:
    """Sections 6 and 10.4 [py:consul/base.py :: Agent.Service.register, Agent.Check.ttl_pass,
    Health.service, Catalog.services]: a service with an HTTP check against a local endpoint
    and one with a TTL check; both start critical (not in passing health), the HTTP one
    turns passing on its own, the TTL one after ttl_pass; both then appear in
    health.service(passing=True) and catalog.services."""
    web, worker = f"web-{uid}", f"worker-{uid}"
    registrations.track_service(web)
    registrations.track_service(worker)
    check = consul.Check.http(health_target.url("/ok"), interval="1s", timeout="1s")
    assert client.agent.service.register(web, port=8080, tags=["http"], check=check) is True
    assert client.agent.service.register(worker, check=consul.Check.ttl("10s")) is True
    assert client.health.service(worker, passing=True)[1] == []
    assert client.agent.checks()[f"service:{worker}"]["Status"] == "critical"
    assert client.agent.check.ttl_pass(f"service:{worker}", "working") is True
    assert client.agent.checks()[f"service:{worker}"]["Output"] == "working"

    def passing(name: str) -> list:
        return client.health.service(name, passing=True)[1]

    entries = wait_for(lambda: passing(web), timeout=6, what="the HTTP check to pass")
    assert entries[0]["Service"]["Port"] == 8080
    assert {c["CheckID"] for c in entries[0]["Checks"]} == {"serfHealth", f"service:{web}"}
    assert len(passing(worker)) == 1
    _, services = client.catalog.services()
    assert services[web] == ["http"]
    assert services[worker] == []
    assert web in client.agent.services()


def test_check_register_and_ttl_updates(
    client: consul.Consul, uid: str, registrations: Registrations
) -> None:
    """Section 10.4 [Agent.Check.register/ttl_warn/ttl_fail/deregister]: a standalone TTL
    check moves through warning and critical with notes as Output; unknown ids give False
    (404 -> CB.bool)."""
    check_id = f"c-{uid}"
    registrations.track_check(check_id)
    assert client.agent.check.register(check_id, check=consul.Check.ttl("10s")) is True
    assert client.agent.check.ttl_warn(check_id, "meh") is True
    assert client.agent.checks()[check_id]["Status"] == "warning"
    assert client.agent.check.ttl_fail(check_id, "bad") is True
    assert client.agent.checks()[check_id]["Output"] == "bad"
    assert client.agent.check.deregister(check_id) is True
    assert check_id not in client.agent.checks()
    assert client.agent.check.ttl_pass(f"nope-{uid}") is False
    assert client.agent.service.deregister(f"nope-{uid}") is False


def test_status_and_agent_self(client: consul.Consul, node: str) -> None:
    """Facts 77-79 through python-consul2: status.leader() == "127.0.0.1:8300", peers
    contains it, and agent.self() names the node."""
    assert client.status.leader() == "127.0.0.1:8300"
    assert "127.0.0.1:8300" in client.status.peers()
    assert client.agent.self()["Config"]["NodeName"] == node
