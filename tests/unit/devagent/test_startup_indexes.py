"""The dev agent's start-up raft entries and the index entries each catalog write moves."""

from __future__ import annotations

import pytest

from elect_helpers.devagent.catalog import HealthCheck, Service
from elect_helpers.devagent.startup import LEADER_ENTRIES
from elect_helpers.devagent.state import DevState
from elect_helpers.devagent.store import Store


def test_start_up_spends_the_leader_entries_then_reconcile_then_node_sync(
    state: DevState,
) -> None:
    reconcile = len(LEADER_ENTRIES) + 1
    node = state.catalog.node_named("devnode")
    assert node is not None
    assert (node.create_index, node.modify_index) == (reconcile, reconcile + 1)
    assert node.tagged_addresses["lan"] == "127.0.0.1"
    assert state.store.index == reconcile + 1
    assert state.catalog.nodes().index == reconcile + 1
    assert state.catalog.services_tags().index == reconcile
    assert state.catalog.checks_in_state("any").index == reconcile
    assert state.catalog.service_health("consul").index == reconcile + 1
    assert state.kv.get("k").index == 0
    assert state.store.table_index("autopilot-config") == 4


def test_index_entries_can_be_bumped_dropped_and_logged_without_tables() -> None:
    store = Store()
    with store.write() as txn:
        txn.log_entry()
    with store.write() as txn:
        txn.bump("service.web")
    with store.write() as txn:
        txn.bump("service.db")
        txn.drop("service.web")
    assert store.index == 3
    assert store.index_entry("service.web") is None
    assert store.index_entry("service.db") == 3


def register(state: DevState, service: Service, *checks: HealthCheck) -> int:
    with state.store.write() as txn:
        state.catalog.ensure_service(txn, "devnode", service)
        for check in checks:
            state.catalog.ensure_check(txn, check)
    return state.store.index


@pytest.mark.parametrize("with_check", [False, True])
def test_deleting_the_last_instance_moves_the_extinction_entry(
    state: DevState, with_check: bool
) -> None:
    checks = [HealthCheck(node="devnode", check_id="c", name="c", service_id="web")]
    register(state, Service(id="web", service="web"), *(checks if with_check else []))
    with state.store.write() as txn:
        state.catalog.delete_service(txn, "devnode", "web")
    gone = state.store.index
    assert state.store.index_entry("service.web") is None
    assert state.catalog.service_instances("web").index == gone
    assert state.catalog.service_health("never-there").index == gone
    assert state.catalog.checks_in_state("any").index == gone  # deleteServiceTxn always


def test_a_second_instance_keeps_the_service_entry(state: DevState) -> None:
    register(state, Service(id="web1", service="web"))
    second = register(state, Service(id="web2", service="web"))
    with state.store.write() as txn:
        state.catalog.delete_service(txn, "devnode", "web1")
    assert state.catalog.service_instances("web").index == state.store.index > second
    assert state.store.index_entry("service_last_extinction") is None


def test_unchanged_writes_move_nothing(state: DevState) -> None:
    index = register(state, Service(id="web", service="web"))
    register(state, Service(id="web", service="web"))
    assert state.store.index == index
