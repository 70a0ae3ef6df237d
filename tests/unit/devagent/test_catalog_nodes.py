"""The catalog holds several nodes: services and checks are per node, deleting a node
invalidates its sessions (``deleteNodeTxn``), and reads span every node."""

from __future__ import annotations

from elect_helpers.devagent.catalog import CRITICAL, PASSING, HealthCheck, Node, Service
from elect_helpers.devagent.state import DevState

from .support import new_session


def add_node(state: DevState, name: str) -> None:
    with state.store.write() as txn:
        state.catalog.register_node(
            txn, Node(id=f"id-{name}", name=name, address="127.0.0.1", datacenter="dc1")
        )
        state.catalog.ensure_check(
            txn,
            HealthCheck(
                node=name, check_id="serfHealth", name="Serf Health Status", status=PASSING
            ),
        )
        state.catalog.ensure_service(txn, name, Service(id="web", service="web"))
        state.catalog.ensure_check(
            txn,
            HealthCheck(
                node=name,
                check_id="service:web",
                name="web",
                status=PASSING,
                service_id="web",
                service_name="web",
            ),
        )


def sessions(state: DevState) -> list[str]:
    with state.store.lock:
        return [s.node for s in state.sessions.list().value]


def test_same_service_id_on_two_nodes_are_two_instances(state: DevState) -> None:
    add_node(state, "a")
    add_node(state, "b")
    with state.store.lock:
        health = state.catalog.service_health("web").value
        assert [(n.name, s.id) for n, s, _ in health] == [("a", "web"), ("b", "web")]
        for node, _, checks in health:
            assert {c.node for c in checks} == {node.name}
            assert [c.check_id for c in checks] == ["serfHealth", "service:web"]
        assert [c.node for c in state.catalog.node_checks("b").value] == ["b", "b"]
        assert [s.id for s in state.catalog.node_services("a").value[1]] == ["web"]
        assert len(state.catalog.service_checks("web").value) == 2


def test_a_critical_check_invalidates_only_sessions_on_its_node(state: DevState) -> None:
    add_node(state, "a")
    add_node(state, "b")
    new_session(state, node="a", node_checks=["serfHealth"])
    new_session(state, node="b", node_checks=["serfHealth"])
    with state.store.write() as txn:
        state.catalog.ensure_check(
            txn, HealthCheck(node="a", check_id="serfHealth", name="x", status=CRITICAL)
        )
    assert sessions(state) == ["b"]


def test_deregistering_a_node_drops_its_services_checks_and_every_session(
    state: DevState,
) -> None:
    add_node(state, "a")
    new_session(state, node="a", node_checks=[])  # bound to no check at all
    new_session(state, node=state.node_name)
    with state.store.write() as txn:
        assert state.catalog.deregister_node(txn, "A")
    with state.store.lock:
        assert state.catalog.node_named("a") is None
        assert state.catalog.checks_of("a") == [] and state.catalog.services_of("a") == []
    assert sessions(state) == [state.node_name]


def test_reregistering_an_unchanged_node_keeps_its_indexes(state: DevState) -> None:
    add_node(state, "a")
    with state.store.lock:
        before = state.catalog.node_named("a")
    add_node(state, "a")
    with state.store.lock:
        after = state.catalog.node_named("a")
    assert before is not None and after is not None
    assert (after.create_index, after.modify_index) == (before.create_index, before.modify_index)
