"""Shapes of /v1/agent/self and /v1/agent/members as Consul 1.20 answers them.

Sources: agent/agent_endpoint.go (AgentSelf: Config, DebugConfig, Coord, Member, Stats, Meta,
xDS; AgentMembers), serf.Member's fields, agent/consul/server_serf.go :: setupSerfConfig (a
server's LAN tags).
"""

from __future__ import annotations

from .conftest import Registrations
from .support import Api

MEMBER_FIELDS = [
    "Name",
    "Addr",
    "Port",
    "Tags",
    "Status",
    "ProtocolMin",
    "ProtocolMax",
    "ProtocolCur",
    "DelegateMin",
    "DelegateMax",
    "DelegateCur",
]
SERVER_TAGS = {"role", "dc", "segment", "id", "vsn", "vsn_min", "vsn_max", "raft_vsn"}
SERVER_TAGS |= {"build", "port", "acls", "ft_fs", "ft_si", "wan_join_port", "grpc_port"}


def test_self_has_consuls_top_level_keys(api: Api) -> None:
    body = api.get("/v1/agent/self").json()
    assert set(body) == {"Config", "DebugConfig", "Coord", "Member", "Stats", "Meta", "xDS"}
    assert all(isinstance(v, dict) for v in body.values())


def test_members_entry_of_the_server(api: Api, node: str) -> None:
    """Every serf.Member field, in order; the server's tags are the full LAN set and the
    same as /v1/agent/self's Member; status 1 (alive)."""
    members = api.get("/v1/agent/members").json()
    (own,) = [m for m in members if m["Name"] == node]
    assert list(own) == MEMBER_FIELDS
    assert set(own["Tags"]) >= SERVER_TAGS
    assert (own["Tags"]["role"], own["Tags"]["acls"], own["Status"]) == ("consul", "0", 1)
    me = api.get("/v1/agent/self").json()["Member"]
    assert me["Tags"] == own["Tags"]
    assert (own["ProtocolMin"], own["ProtocolMax"]) == (1, 5)
    assert (own["DelegateMin"], own["DelegateMax"]) == (2, 5)


def test_service_tagged_addresses_are_service_address_objects(
    api: Api, uid: str, registrations: Registrations
) -> None:
    """structs.ServiceAddress decodes case-insensitively and encodes both fields."""
    body = {
        "Name": uid,
        "TaggedAddresses": {"lan": {"address": "10.0.0.1", "port": 80}, "wan": {"Address": "x"}},
    }
    assert registrations.service(body).status_code == 200
    service = api.get("/v1/agent/services").json()[uid]
    assert service["TaggedAddresses"] == {
        "lan": {"Address": "10.0.0.1", "Port": 80},
        "wan": {"Address": "x", "Port": 0},
    }
    assert service["Meta"] == {}
    assert service["Weights"] == {"Passing": 1, "Warning": 1}
