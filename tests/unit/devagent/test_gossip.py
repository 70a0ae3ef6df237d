"""The failure detector's model: memberlist's LAN timings and the member state machine."""

from __future__ import annotations

import pytest

from elect_helpers.devagent.gossip import (
    GossipConfig,
    Member,
    MemberTable,
    Status,
    suspicion_timeout_ns,
)

MS = 1_000_000
S = 1_000 * MS


def test_defaults_are_memberlists_lan_config() -> None:
    config = GossipConfig()
    assert (config.probe_interval_ns, config.probe_timeout_ns) == (1 * S, 500 * MS)
    assert (config.suspicion_mult, config.suspicion_max_timeout_mult) == (4, 6)
    assert config.push_pull_interval_ns == 30 * S
    assert (
        GossipConfig(probe_interval_ns=100 * MS, probe_timeout_ns=100 * MS).push_pull_interval_ns
        == 30 * S
    )


@pytest.mark.parametrize(
    ("members", "minimum"),
    [(1, 4 * S), (3, 4 * S), (10, 4 * S), (20, 5204 * MS), (100, 8 * S)],
)
def test_suspicion_minimum_scales_with_log10_of_the_cluster(members: int, minimum: int) -> None:
    config = GossipConfig()
    assert config.suspicion_min_ns(members) == minimum
    assert config.suspicion_max_ns(members) == 6 * minimum


def test_small_clusters_expect_no_confirmations_and_use_the_minimum() -> None:
    config = GossipConfig()
    assert config.expected_confirmations(3) == 0
    assert suspicion_timeout_ns(config, 3, 0) == 4 * S


def test_confirmations_shrink_the_timer_from_its_upper_bound_to_the_minimum() -> None:
    config = GossipConfig()
    assert config.expected_confirmations(5) == 2
    assert suspicion_timeout_ns(config, 5, 0) == 24 * S
    one = suspicion_timeout_ns(config, 5, 1)
    assert 4 * S < one < 24 * S
    assert one == 11_381 * MS  # 24 - log(2)/log(3) * 20, floored to ms
    assert suspicion_timeout_ns(config, 5, 2) == 4 * S
    assert suspicion_timeout_ns(config, 5, 9) == 4 * S


def test_scaled_timings_scale_the_bounds() -> None:
    config = GossipConfig(probe_interval_ns=100 * MS, probe_timeout_ns=50 * MS)
    assert config.detection_bounds_ns(3) == (500 * MS, 600 * MS)
    assert GossipConfig().detection_bounds_ns(3) == (5 * S, 6 * S)


def test_bad_timings_are_refused() -> None:
    with pytest.raises(ValueError, match="probe_timeout must not be longer"):
        GossipConfig(probe_interval_ns=100 * MS, probe_timeout_ns=200 * MS)
    with pytest.raises(ValueError, match="positive"):
        GossipConfig(probe_interval_ns=0)


def table_with(*names: str) -> MemberTable:
    table = MemberTable(GossipConfig())
    table.join(Member("server", "id-server", "127.0.0.1", 8301, server=True))
    for name in names:
        table.join(Member(name, f"id-{name}", "127.0.0.1", 1000))
    return table


def test_a_silent_member_is_suspect_then_failed_when_its_timer_fires() -> None:
    table = table_with("a")
    assert table.unanswered("a", 10 * S) == []
    member = table.get("a")
    assert member is not None and member.suspect and member.status is Status.ALIVE
    assert table.deadline_ns("a") == 14 * S
    assert table.tick("a", 14 * S - 1) == []
    changes = table.tick("a", 14 * S)
    assert [(c.member.name, c.status) for c in changes] == [("a", Status.FAILED)]
    assert table.tick("a", 20 * S) == []


def test_an_ack_refutes_a_suspicion_without_any_change() -> None:
    table = table_with("a")
    table.unanswered("a", 10 * S)
    assert table.acked("a", "id-a", 11 * S) == []
    assert table.deadline_ns("a") is None
    assert table.tick("a", 30 * S) == []


def test_an_ack_from_another_agent_on_the_same_port_refutes_nothing() -> None:
    table = table_with("a")
    table.unanswered("a", 10 * S)
    table.acked("a", "id-somebody-else", 11 * S)
    assert [c.status for c in table.tick("a", 14 * S)] == [Status.FAILED]


def test_confirmations_from_further_rounds_bring_the_deadline_down() -> None:
    table = table_with("a", "b", "c")  # n = 4: k = 2, timer starts at 24 s
    table.unanswered("a", 10 * S)
    assert table.deadline_ns("a") == 34 * S
    table.unanswered("a", 11 * S)
    assert table.deadline_ns("a") == 10 * S + 11_381 * MS
    table.unanswered("a", 12 * S)
    assert table.deadline_ns("a") == 14 * S


def test_a_failed_member_that_answers_is_alive_again() -> None:
    table = table_with("a")
    table.unanswered("a", 10 * S)
    table.tick("a", 14 * S)
    changes = table.acked("a", "id-a", 15 * S)
    assert [(c.member.name, c.status) for c in changes] == [("a", Status.ALIVE)]


def test_leaving_is_final_for_probes_and_rejoining_is_a_change() -> None:
    table = table_with("a")
    assert [c.status for c in table.leave("a")] == [Status.LEFT]
    assert table.leave("a") == []
    assert table.acked("a", "id-a", 1 * S) == []
    assert table.unanswered("a", 1 * S) == []
    assert [c.status for c in table.join(Member("a", "id-a", "127.0.0.1", 1))] == [Status.ALIVE]


def test_rejoining_alive_with_the_same_id_is_no_change_but_a_new_id_is() -> None:
    table = table_with("a")
    assert table.join(Member("a", "id-a", "127.0.0.1", 1000)) == []
    assert [c.status for c in table.join(Member("a", "id-new", "127.0.0.1", 1000))] == [
        Status.ALIVE
    ]


def test_the_version_moves_with_every_status_change() -> None:
    table = table_with("a")
    before = table.version
    table.unanswered("a", 10 * S)
    table.tick("a", 14 * S)
    assert table.version >= before + 2


def test_force_leave_moves_a_failed_member_to_left_and_leaves_an_alive_one() -> None:
    table = table_with("a", "b")
    table.unanswered("a", 10 * S)
    table.tick("a", 20 * S)
    assert [c.status for c in table.force_leave("a", prune=False)] == [Status.LEFT]
    assert table.force_leave("b", prune=False) == []
    assert table.force_leave("server", prune=True) == []
    assert table.force_leave("nobody", prune=True) == []
    table.force_leave("a", prune=True)
    assert table.get("a") is None
